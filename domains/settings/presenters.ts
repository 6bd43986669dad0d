// The tenant's settings as the API answers them.
import type { Schemas } from '../schemas';
import type { SendingSettings } from './commands';

export const presentSendingSettings = (s: SendingSettings): Schemas['SendingSettings'] => ({
  maxPerMinute: s.maxPerMinute, maxConcurrent: s.maxConcurrent, updatedAt: s.updatedAt ? s.updatedAt.toISOString() : null,
});
