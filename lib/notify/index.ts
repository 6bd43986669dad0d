// Notification channels, one import for the domains that notify people (approvals, reminders, campaigns).
export * from './email';
export * from './outbound';
export * from './webhook';
