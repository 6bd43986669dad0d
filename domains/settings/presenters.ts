// The tenant's settings as the API answers them.
import type { Schemas } from '../schemas';
import type { ApprovalSettingsView, NotificationSettingsView, SendingSettings } from './commands';

export const presentSendingSettings = (s: SendingSettings): Schemas['SendingSettings'] => ({
  maxPerMinute: s.maxPerMinute, maxConcurrent: s.maxConcurrent, updatedAt: s.updatedAt ? s.updatedAt.toISOString() : null,
});

export const presentApprovalSettings = (s: ApprovalSettingsView): Schemas['ApprovalSettings'] => ({
  notifyOnRequest: s.notifyOnRequest, notRequired: s.notRequired, notifyRequesterOnDecision: s.notifyRequesterOnDecision, updatedAt: s.updatedAt ? s.updatedAt.toISOString() : null,
});

export const presentNotificationSettings = (s: NotificationSettingsView): Schemas['NotificationSettings'] => ({
  defaultLocale: s.defaultLocale, defaultTimeZone: s.defaultTimeZone, updatedAt: s.updatedAt ? s.updatedAt.toISOString() : null,
});
