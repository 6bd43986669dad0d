// A notification's text for one recipient: the tenant's active template for the recipient's locale, else for its
// language, else English, else the built-in default (domains/notifications/defaults.ts); instants shown in the
// recipient's time zone. A tenant template that fails to render (a limit hit) falls back to the built-in text, so a
// broken template never stops a notice.
import { DateTime, IANAZone } from 'luxon';
import type { NotificationChannel, NotificationParts } from '../../db/models/notifications';
import { NotificationTemplate } from '../../db/models/notifications';
import { DEFAULT_LOCALE, NOTIFICATION_TYPES, type NotificationTypeName } from './defaults';
import { renderNotificationParts } from './templates';

export interface Recipient {
  name: string;
  email: string;
  locale?: string | null;
  timeZone?: string | null;
}

/** The locales tried, in order: the recipient's (fr-CA), its language (fr), the default (en). */
export function localeChain(locale: string | null | undefined): string[] {
  const chain = locale ? [locale, locale.split('-')[0]] : [];
  return [...new Set([...chain, DEFAULT_LOCALE])];
}

/** An instant as the recipient reads it: "2026-12-01 19:30 (Asia/Tokyo)"; UTC without (or with an unknown) zone. */
export function localTime(value: unknown, timeZone: string | null | undefined): unknown {
  const at = value instanceof Date ? DateTime.fromJSDate(value) : typeof value === 'string' ? DateTime.fromISO(value) : null;
  if (!at?.isValid) return value;
  const zone = timeZone && IANAZone.isValidZone(timeZone) ? timeZone : 'UTC';
  return `${at.setZone(zone).toFormat('yyyy-MM-dd HH:mm')} (${zone})`;
}

/** The variables a template sees: `data`, the recipient, and the type's instants as local times. */
export function templateData(type: NotificationTypeName, recipient: Recipient, data: Record<string, unknown>): Record<string, unknown> {
  const scope: Record<string, unknown> = { ...data, recipient: { name: recipient.name, email: recipient.email, locale: recipient.locale ?? DEFAULT_LOCALE, timeZone: recipient.timeZone ?? 'UTC' } };
  for (const key of NOTIFICATION_TYPES[type].dates as readonly string[]) if (key in scope) scope[key] = localTime(scope[key], recipient.timeZone);
  return scope;
}

export interface Renderer {
  render(recipient: Recipient, data: Record<string, unknown>): Promise<NotificationParts>;
}

/**
 * Loads the tenant's active templates of one type and channel once (a stage of 60 approvers is one query), and
 * renders for each recipient.
 */
export async function notificationRenderer(tenantId: string, type: NotificationTypeName, channel: NotificationChannel, warn?: (message: string, meta: Record<string, unknown>) => void): Promise<Renderer> {
  const active = await NotificationTemplate.findAll({ where: { tenantId, type, channel, status: 'active' }, attributes: ['id', 'locale', 'parts', 'version'] });
  const byLocale = new Map(active.map((t) => [t.locale.toLowerCase(), t]));
  const builtIn = () => NOTIFICATION_TYPES[type].defaults[channel as keyof (typeof NOTIFICATION_TYPES)[typeof type]['defaults']] as NotificationParts;
  return {
    async render(recipient, data) {
      const scope = templateData(type, recipient, data);
      const template = localeChain(recipient.locale).map((l) => byLocale.get(l.toLowerCase())).find(Boolean);
      if (template) {
        try {
          return await renderNotificationParts(channel, template.parts, scope, `${template.id}:${template.version}`);
        } catch (err) {
          warn?.('notification template failed to render; the built-in text is sent', { tenantId, templateId: template.id, version: template.version, error: (err as Error).message });
        }
      }
      return renderNotificationParts(channel, builtIn(), scope, `builtin:${type}:${channel}`);
    },
  };
}

/** One recipient's text (see notificationRenderer). */
export async function renderNotification(tenantId: string, type: NotificationTypeName, channel: NotificationChannel, recipient: Recipient, data: Record<string, unknown>, warn?: (message: string, meta: Record<string, unknown>) => void): Promise<NotificationParts> {
  return (await notificationRenderer(tenantId, type, channel, warn)).render(recipient, data);
}
