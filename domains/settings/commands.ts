// The tenant's sending limits: read (the defaults until set) and set, with the audit event in the same transaction.
import { SendSettings } from '../../db/models/settings';
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
