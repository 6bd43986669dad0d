// The tenant's settings — sending limits, approvals (who hears of new requests, what needs no approval) and
// notification defaults: read (the defaults until set) and set, with the audit event in the same transaction.
import { ApprovalSettings, NotificationSettings, SendSettings } from '../../db/models/settings';
import { checkTimeZone } from '../identity/commands';
import type { Schemas } from '../schemas';
import { ApiError, permissionDenied } from '../../lib/problems';
import { checkPeopleSet } from '../identity/people';
import { recordAudit } from '../../lib/audit';
import { DEFAULT_SEND_SETTINGS } from '../../lib/send-limiter';
import { auditBy, Caller, CommandDeps } from '../command';
import { APPROVAL_AUTHORITY_PERMISSION } from '../approvals/authority';

export interface SendingSettings {
  maxPerMinute: number;
  maxConcurrent: number;
  updatedAt: Date | null;
}

export async function sendingSettings(tenantId: string): Promise<SendingSettings> {
  const row = await SendSettings.findByPk(tenantId);
  return row ? { maxPerMinute: row.maxPerMinute, maxConcurrent: row.maxConcurrent, updatedAt: row.updatedAt } : { ...DEFAULT_SEND_SETTINGS, updatedAt: null };
}

/** Sets both limits (the contract bounds them); campaigns follow from their next grant (lib/send-limiter.ts). */
export async function updateSendingSettings(deps: CommandDeps, c: Caller, body: { maxPerMinute: number; maxConcurrent: number }): Promise<SendingSettings> {
  return deps.sequelize.transaction(async (transaction) => {
    const row = await SendSettings.findByPk(c.tenantId, { transaction, lock: transaction.LOCK.UPDATE });
    const before = row ? { maxPerMinute: row.maxPerMinute, maxConcurrent: row.maxConcurrent } : { ...DEFAULT_SEND_SETTINGS };
    const [saved] = await SendSettings.upsert({ tenantId: c.tenantId, maxPerMinute: body.maxPerMinute, maxConcurrent: body.maxConcurrent, updatedBy: c.actor.id, updatedAt: new Date() }, { transaction, returning: true });
    await recordAudit({ ...auditBy(c), action: 'settings.sending.updated', entityType: 'tenant_settings', entityId: c.tenantId, before, after: { maxPerMinute: saved.maxPerMinute, maxConcurrent: saved.maxConcurrent } }, transaction);
    return { maxPerMinute: saved.maxPerMinute, maxConcurrent: saved.maxConcurrent, updatedAt: saved.updatedAt };
  });
}

export interface ApprovalSettingsView {
  notifyOnRequest: { roles: string[] };
  notRequired: { objectTypes: string[] };
  notifyRequesterOnDecision: boolean;
  updatedAt: Date | null;
}

const approvalView = (row: ApprovalSettings | null) => ({
  notifyOnRequest: { roles: row?.notifyOnRequestRoles ?? [] }, notRequired: { objectTypes: row?.notRequiredObjectTypes ?? [] },
  notifyRequesterOnDecision: row?.notifyRequesterOnDecision ?? true,
});

export async function approvalSettings(tenantId: string): Promise<ApprovalSettingsView> {
  const row = await ApprovalSettings.findByPk(tenantId);
  return { ...approvalView(row), updatedAt: row?.updatedAt ?? null };
}

/**
 * Sets the roles told of every new request (each must be one of the tenant's: 422 UNKNOWN_ROLE naming it), the
 * object types whose approval is not required, and whether requesters are told of decisions; a part left out keeps
 * its value.
 */
export async function updateApprovalSettings(deps: CommandDeps, c: Caller, body: Schemas['ApprovalSettingsInput']): Promise<ApprovalSettingsView> {
  const roles = body.notifyOnRequest && [...new Set(body.notifyOnRequest.roles)];
  if (roles) {
    const path = '/requestBody/notifyOnRequest';
    const unknown = (await checkPeopleSet(c.tenantId, { users: [], roles }, path)).issues.filter((i) => i.path !== path);
    if (unknown.length) throw new ApiError(422, 'UNKNOWN_ROLE', unknown.map((i) => i.message).join('; '), { errors: unknown });
  }
  const objectTypes = body.notRequired && [...new Set(body.notRequired.objectTypes)].sort();
  return deps.sequelize.transaction(async (transaction) => {
    const row = await ApprovalSettings.findByPk(c.tenantId, { transaction, lock: transaction.LOCK.UPDATE });
    const before = approvalView(row);
    // An object type whose approval is not required has every flow approved at its start, whoever asks: exempting
    // one decides who approves (nobody), as a template does (domains/approvals/authority.ts).
    refuseAdding(c, before.notRequired.objectTypes, objectTypes, APPROVAL_AUTHORITY_PERMISSION, (t) => `Exempting ${t} from approval decides who approves it`);
    // A watcher role's members are emailed every new flow's title and requester: naming one reads the flows.
    refuseAdding(c, before.notifyOnRequest.roles, roles, 'approvals.flow.read', (r) => `Naming ${r} to hear of every new approval request shows them every flow`);
    const [saved] = await ApprovalSettings.upsert({
      tenantId: c.tenantId, notifyOnRequestRoles: roles ?? before.notifyOnRequest.roles, notRequiredObjectTypes: objectTypes ?? before.notRequired.objectTypes,
      notifyRequesterOnDecision: body.notifyRequesterOnDecision ?? before.notifyRequesterOnDecision, updatedBy: c.actor.id, updatedAt: new Date(),
    }, { transaction, returning: true });
    const after = approvalView(saved);
    await recordAudit({ ...auditBy(c), action: 'settings.approvals.updated', entityType: 'tenant_settings', entityId: c.tenantId, before, after }, transaction);
    return { ...after, updatedAt: saved.updatedAt };
  });
}

/**
 * 403 PERMISSION_DENIED unless the caller holds `permission`, when `given` adds anything to `stored`: what adding
 * decides needs more than settings.manage. Taking entries away needs nothing more.
 */
function refuseAdding(c: Caller, stored: string[], given: string[] | undefined, permission: string, what: (added: string) => string): void {
  const added = (given ?? []).filter((t) => !stored.includes(t));
  if (!added.length || c.permissions.has(permission)) return;
  throw permissionDenied(`${what(added.map((t) => `"${t}"`).join(', '))}, and needs the permission '${permission}'`, permission);
}

export interface NotificationSettingsView {
  defaultLocale: string | null;
  defaultTimeZone: string | null;
  updatedAt: Date | null;
}

export async function notificationSettings(tenantId: string): Promise<NotificationSettingsView> {
  const row = await NotificationSettings.findByPk(tenantId);
  return { defaultLocale: row?.defaultLocale ?? null, defaultTimeZone: row?.defaultTimeZone ?? null, updatedAt: row?.updatedAt ?? null };
}

/** Sets the locale and time zone of users who have not chosen their own (an unknown zone: 400 VALIDATION_FAILED). */
export async function updateNotificationSettings(deps: CommandDeps, c: Caller, body: Schemas['NotificationSettingsInput']): Promise<NotificationSettingsView> {
  checkTimeZone(body.defaultTimeZone, '/requestBody/defaultTimeZone');
  return deps.sequelize.transaction(async (transaction) => {
    const row = await NotificationSettings.findByPk(c.tenantId, { transaction, lock: transaction.LOCK.UPDATE });
    const before = { defaultLocale: row?.defaultLocale ?? null, defaultTimeZone: row?.defaultTimeZone ?? null };
    const after = { defaultLocale: body.defaultLocale ?? null, defaultTimeZone: body.defaultTimeZone ?? null };
    const [saved] = await NotificationSettings.upsert({ tenantId: c.tenantId, ...after, updatedBy: c.actor.id, updatedAt: new Date() }, { transaction, returning: true });
    await recordAudit({ ...auditBy(c), action: 'settings.notifications.updated', entityType: 'tenant_settings', entityId: c.tenantId, before, after }, transaction);
    return { ...after, updatedAt: saved.updatedAt };
  });
}
