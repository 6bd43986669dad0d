// The tenant's settings — sending limits, and who hears of new approval requests: read (the defaults until set) and
// set, with the audit event in the same transaction.
import { ApprovalSettings, SendSettings } from '../../db/models/settings';
import { ApiError } from '../../lib/problems';
import { checkPeopleSet } from '../identity/people';
import { recordAudit } from '../../lib/audit';
import { DEFAULT_SEND_SETTINGS } from '../../lib/send-limiter';
import { auditBy, Caller, CommandDeps } from '../command';

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
  updatedAt: Date | null;
}

export async function approvalSettings(tenantId: string): Promise<ApprovalSettingsView> {
  const row = await ApprovalSettings.findByPk(tenantId);
  return { notifyOnRequest: { roles: row?.notifyOnRequestRoles ?? [] }, updatedAt: row?.updatedAt ?? null };
}

/** Sets the roles told of every new request; each must be one of the tenant's roles (422 UNKNOWN_ROLE naming it). */
export async function updateApprovalSettings(deps: CommandDeps, c: Caller, body: { notifyOnRequest: { roles: string[] } }): Promise<ApprovalSettingsView> {
  const roles = [...new Set(body.notifyOnRequest.roles)];
  const path = '/requestBody/notifyOnRequest';
  const unknown = (await checkPeopleSet(c.tenantId, { users: [], roles }, path)).issues.filter((i) => i.path !== path);
  if (unknown.length) throw new ApiError(422, 'UNKNOWN_ROLE', unknown.map((i) => i.message).join('; '), { errors: unknown });
  return deps.sequelize.transaction(async (transaction) => {
    const row = await ApprovalSettings.findByPk(c.tenantId, { transaction, lock: transaction.LOCK.UPDATE });
    const before = { notifyOnRequest: { roles: row?.notifyOnRequestRoles ?? [] } };
    const [saved] = await ApprovalSettings.upsert({ tenantId: c.tenantId, notifyOnRequestRoles: roles, updatedBy: c.actor.id, updatedAt: new Date() }, { transaction, returning: true });
    await recordAudit({ ...auditBy(c), action: 'settings.approvals.updated', entityType: 'tenant_settings', entityId: c.tenantId, before, after: { notifyOnRequest: { roles } } }, transaction);
    return { notifyOnRequest: { roles: saved.notifyOnRequestRoles }, updatedAt: saved.updatedAt };
  });
}
