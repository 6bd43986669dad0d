// A notification's text for one recipient: the tenant's active template for the recipient's locale (or the
// tenant's default), else for its language, else English, else the built-in default (domains/notifications/
// defaults.ts); instants shown in the recipient's time zone (or the tenant's default). A tenant template that fails to render (a limit hit) falls back to the built-in text, so a
// broken template never stops a notice.
import { DateTime, IANAZone } from 'luxon';
import type { NotificationChannel, NotificationParts } from '../../db/models/notifications';
import { NotificationTemplate } from '../../db/models/notifications';
import { NotificationSettings } from '../../db/models/settings';
import { DEFAULT_LOCALE, NOTIFICATION_TYPES, type NotificationTypeName } from './defaults';
import { TEMPLATE_LIMITS } from '../documents/templates';
import { WorkPoolBusyError } from '../../lib/work-pool';
import { workPool } from '../work-pool';
import { renderNotificationParts } from './templates';

export interface Recipient {
  name: string;
  email: string;
  locale?: string | null;
  timeZone?: string | null;
}

/** The locale and zone of a tenant's users who have chosen none (GET /v1/settings/notifications). */
export interface TenantDefaults {
  locale: string | null;
  timeZone: string | null;
}

/** The locales tried, in order: the recipient's (fr-CA), its language (fr), the tenant's default and its language, English. */
export function localeChain(locale: string | null | undefined, tenantDefault: string | null = null): string[] {
  const withLanguage = (l: string | null | undefined) => (l ? [l, l.split('-')[0]] : []);
  return [...new Set([...withLanguage(locale), ...withLanguage(tenantDefault), DEFAULT_LOCALE].map((l) => l.toLowerCase()))];
}

export async function tenantDefaults(tenantId: string): Promise<TenantDefaults> {
  const row = await NotificationSettings.findByPk(tenantId, { attributes: ['defaultLocale', 'defaultTimeZone'] });
  return { locale: row?.defaultLocale ?? null, timeZone: row?.defaultTimeZone ?? null };
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
  const [active, defaults] = await Promise.all([
    NotificationTemplate.findAll({ where: { tenantId, type, channel, status: 'active' }, attributes: ['id', 'locale', 'parts', 'version'] }),
    tenantDefaults(tenantId),
  ]);
  const byLocale = new Map(active.map((t) => [t.locale.toLowerCase(), t]));
  const builtIn = () => NOTIFICATION_TYPES[type].defaults[channel as keyof (typeof NOTIFICATION_TYPES)[typeof type]['defaults']] as NotificationParts;
  return {
    async render(recipient, data) {
      const scope = templateData(type, {
        // Fields one by one: a recipient may be a model instance, whose attributes a spread would not copy.
        name: recipient.name, email: recipient.email, locale: recipient.locale ?? defaults.locale, timeZone: recipient.timeZone ?? defaults.timeZone,
      }, data);
      // The built-in texts are English: a chain reaching English without a tenant template of its own stops there
      // (a user who chose `en` is not sent the tenant's default German).
      let template: NotificationTemplate | undefined;
      for (const l of localeChain(recipient.locale, defaults.locale)) {
        template = byLocale.get(l);
        if (template || l === DEFAULT_LOCALE) break;
      }
      if (template) {
        try {
          // A tenant's template on the work pool (its cost is the tenant's to set); the built-in texts are ours, rendered here.
          return await workPool().run('renderNotificationParts', [channel, template.parts, scope, `${template.id}:${template.version}`], TEMPLATE_LIMITS.budgetMs);
        } catch (err) {
          // No thread free in time says nothing about the template: the activity tries again later.
          if (err instanceof WorkPoolBusyError) throw err;
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
