// Notification template commands: create, edit (every save a version, status moves checked), delete, preview. Parts
// are parsed on the API's work pool before anything is saved; a preview renders there within the template budget.
import { randomUUID } from 'node:crypto';
import { IANAZone } from 'luxon';
import { UniqueConstraintError } from 'sequelize';
import {
  NotificationChannel, NotificationParts, NotificationTemplate, NotificationTemplateStatus, NotificationTemplateVersion,
} from '../../db/models/notifications';
import { recordAudit } from '../../lib/audit';
import { ApiError, permissionDenied, validationFailed } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { auditBy, Caller, CommandDeps, Precondition } from '../command';
import { TEMPLATE_LIMITS } from '../documents/templates';
import type { Schemas } from '../schemas';
import { templateWork, workPool } from '../work-pool';
import { isNotificationType, NOTIFICATION_TYPES, type NotificationType, type NotificationTypeName } from './defaults';
import { templateData } from './render';
import { CHANNEL_PARTS } from './templates';

const MOVES: Record<NotificationTemplateStatus, NotificationTemplateStatus[]> = { draft: ['active', 'archived'], active: ['draft', 'archived'], archived: ['draft'] };

/** The channel's parts (missing ones empty); a part of the other channel, or a missing required one, is refused. */
function partsFor(channel: NotificationChannel, parts: NotificationParts): NotificationParts {
  const allowed = CHANNEL_PARTS[channel] as readonly string[];
  const required = channel === 'email' ? ['subject', 'text'] : ['title', 'body'];
  const issues = [
    ...Object.keys(parts).filter((p) => !allowed.includes(p)).map((p) => ({ path: `/requestBody/parts/${p}`, message: `is not a part of an ${channel} notification (${allowed.join(', ')})` })),
    ...required.filter((p) => !(parts as Record<string, string | undefined>)[p]?.trim()).map((p) => ({ path: `/requestBody/parts/${p}`, message: 'is required' })),
  ];
  if (issues.length) throw validationFailed(issues);
  return Object.fromEntries(allowed.map((p) => [p, (parts as Record<string, string | undefined>)[p] ?? '']));
}

const checkParts = (channel: NotificationChannel, parts: NotificationParts) =>
  templateWork(() => workPool().run('checkNotificationParts', [channel, parts], TEMPLATE_LIMITS.budgetMs), (part) => `/requestBody/parts/${part}`);

const activeTaken = (err: unknown) => {
  if (err instanceof UniqueConstraintError) throw new ApiError(409, 'ALREADY_EXISTS', 'Another template of this type, channel and locale is active; archive it (or set it to draft) first');
  throw err;
};

/** Refuses a template of a type whose variables are credentials to a caller who may not do what they do (NotificationType.permission). */
function assertMayWrite(c: Caller, type: NotificationTypeName): void {
  const needed = (NOTIFICATION_TYPES[type] as NotificationType).permission;
  if (needed && !c.permissions.has(needed)) {
    throw permissionDenied(`Templates of ${type} carry one-click links that act as their recipient; writing one also needs the permission '${needed}'`, needed);
  }
}

export async function createNotificationTemplate(deps: CommandDeps, c: Caller, input: Schemas['NotificationTemplateInput']): Promise<NotificationTemplate> {
  if (!isNotificationType(input.type)) throw validationFailed([{ path: '/requestBody/type', message: `is not a notification type (${Object.keys(NOTIFICATION_TYPES).join(', ')})` }]);
  assertMayWrite(c, input.type);
  if (!(input.channel in NOTIFICATION_TYPES[input.type].defaults)) throw validationFailed([{ path: '/requestBody/channel', message: `${input.type} is not sent by ${input.channel}` }]);
  const parts = partsFor(input.channel, input.parts);
  await checkParts(input.channel, parts);
  const locale = input.locale;
  return deps.sequelize.transaction(async (transaction) => {
    const fields = { status: input.status ?? 'draft', parts };
    const created = await NotificationTemplate.create({ id: randomUUID(), tenantId: c.tenantId, type: input.type, channel: input.channel, locale, ...fields, version: 1 }, { transaction }).catch(activeTaken);
    await NotificationTemplateVersion.create({ templateId: created.id, version: 1, tenantId: c.tenantId, ...fields, createdBy: c.actor.id }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'notifications.template.created', entityType: 'notification_template', entityId: created.id, after: { type: input.type, channel: input.channel, locale, status: fields.status, version: 1 } }, transaction);
    return created;
  });
}

export async function updateNotificationTemplate(deps: CommandDeps, c: Caller, id: string, input: Schemas['NotificationTemplateUpdate'], precondition?: Precondition): Promise<NotificationTemplate> {
  const current = await findInTenant(NotificationTemplate, c.tenantId, id, 'Notification template');
  // Setting one aside (draft, archived) only brings back the built-in text: open to every manager.
  if (input.parts || input.status === 'active') assertMayWrite(c, current.type as NotificationTypeName);
  const parts = input.parts ? partsFor(current.channel, input.parts) : undefined;
  if (parts) await checkParts(current.channel, parts);
  return deps.sequelize.transaction(async (transaction) => {
    const t = await findInTenant(NotificationTemplate, c.tenantId, id, 'Notification template', { transaction, lock: transaction.LOCK.UPDATE });
    precondition?.(t.version);
    const status = input.status ?? t.status;
    if (status !== t.status && !MOVES[t.status].includes(status)) throw new ApiError(409, 'INVALID_STATE', `A ${t.status} template cannot become ${status} (it can become ${MOVES[t.status].join(' or ')})`);
    const before = { status: t.status, version: t.version };
    Object.assign(t, { status, parts: parts ?? t.parts, version: t.version + 1 });
    await t.save({ transaction }).catch(activeTaken);
    await NotificationTemplateVersion.create({ templateId: t.id, version: t.version, tenantId: c.tenantId, status, parts: t.parts, createdBy: c.actor.id }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'notifications.template.updated', entityType: 'notification_template', entityId: t.id, before, after: { status, version: t.version } }, transaction);
    return t;
  });
}

export async function deleteNotificationTemplate(deps: CommandDeps, c: Caller, id: string): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const t = await findInTenant(NotificationTemplate, c.tenantId, id, 'Notification template', { transaction, lock: transaction.LOCK.UPDATE });
    await t.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'notifications.template.deleted', entityType: 'notification_template', entityId: t.id, before: { type: t.type, channel: t.channel, locale: t.locale, version: t.version } }, transaction);
  });
}

/** The current version rendered with sample data on the work pool (within TEMPLATE_LIMITS.budgetMs); nothing is sent. */
export async function previewNotificationTemplate(c: Caller, id: string, input: Schemas['NotificationPreviewInput']): Promise<NotificationParts> {
  const t = await findInTenant(NotificationTemplate, c.tenantId, id, 'Notification template');
  if (input.timeZone !== undefined && !IANAZone.isValidZone(input.timeZone)) throw validationFailed([{ path: '/requestBody/timeZone', message: `"${input.timeZone}" is not an IANA time zone` }]);
  const type = t.type as NotificationTypeName;
  const { recipient, ...data } = { ...NOTIFICATION_TYPES[type].sample, ...(input.data ?? {}) } as Record<string, unknown> & { recipient?: { name?: string; email?: string } };
  const scope = templateData(type, { name: String(recipient?.name ?? ''), email: String(recipient?.email ?? ''), locale: t.locale, timeZone: input.timeZone ?? null }, data);
  return templateWork(() => workPool().run('renderNotificationParts', [t.channel, t.parts, scope, `${t.id}:${t.version}`], TEMPLATE_LIMITS.budgetMs));
}
