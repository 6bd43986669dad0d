// Notification types and templates → API JSON.
import type { NotificationTemplate, NotificationTemplateVersion } from '../../db/models/notifications';
import type { Schemas } from '../schemas';
import { NOTIFICATION_TYPES, type NotificationType } from './defaults';

export const presentNotificationTypes = (): Schemas['NotificationType'][] => Object.entries(NOTIFICATION_TYPES).map(([type, t]) => ({
  type, description: t.description, channels: Object.keys(t.defaults) as Schemas['NotificationChannel'][], variables: t.variables, sample: t.sample, defaults: t.defaults,
  ...((t as NotificationType).permission ? { permission: (t as NotificationType).permission } : {}),
}));

export const presentNotificationTemplate = (t: NotificationTemplate, v?: NotificationTemplateVersion): Schemas['NotificationTemplate'] => ({
  id: t.id, type: t.type, channel: t.channel, locale: t.locale, status: v?.status ?? t.status, parts: v?.parts ?? t.parts, version: v?.version ?? t.version,
  createdAt: t.createdAt.toISOString(), updatedAt: (v?.createdAt ?? t.updatedAt).toISOString(),
});
