// The tenant's settings as the API answers them.
import type { Schemas } from '../schemas';
import type { ApprovalSettingsView, SendingSettings } from './commands';

export const presentSendingSettings = (s: SendingSettings): Schemas['SendingSettings'] => ({
  maxPerMinute: s.maxPerMinute, maxConcurrent: s.maxConcurrent, updatedAt: s.updatedAt ? s.updatedAt.toISOString() : null,
});

export const presentApprovalSettings = (s: ApprovalSettingsView): Schemas['ApprovalSettings'] => ({
  notifyOnRequest: s.notifyOnRequest, updatedAt: s.updatedAt ? s.updatedAt.toISOString() : null,
});
