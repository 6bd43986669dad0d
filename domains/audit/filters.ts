// Audit log filters: the one translation to SQL, shared by the list endpoint and the export.
import { Op, WhereOptions } from 'sequelize';
import type { AuditEvent } from '../../db/models/audit';
import type { AuditFilters } from '../../workflows/audit.api';

/** The one translation of audit filters to SQL, shared by the list endpoint and the export. */
export function auditWhere(tenantId: string, f: AuditFilters): WhereOptions<AuditEvent> {
  const where: Record<string | symbol, unknown> = { tenantId };
  if (f.actorId) where.actorId = f.actorId;
  if (f.action) where.action = f.action;
  if (f.entityType) where.entityType = f.entityType;
  if (f.entityId) where.entityId = f.entityId;
  if (f.from || f.to) {
    where.createdAt = { ...(f.from ? { [Op.gte]: new Date(f.from) } : {}), ...(f.to ? { [Op.lt]: new Date(f.to) } : {}) };
  }
  return where as WhereOptions<AuditEvent>;
}
