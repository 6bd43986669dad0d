// Audit events and exports → API JSON.
import type { AuditEvent, AuditExport } from '../../db/models/audit';
import type { Schemas } from '../schemas';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const presentAuditEvent = (e: AuditEvent): Schemas['AuditEvent'] => ({
  id: String(e.id), actorType: e.actorType, actorId: e.actorId, action: e.action, entityType: e.entityType, entityId: e.entityId,
  before: (e.before ?? null) as Record<string, unknown> | null, after: (e.after ?? null) as Record<string, unknown> | null, requestId: e.requestId, workflowId: e.workflowId, createdAt: e.createdAt.toISOString(),
});

export const presentAuditExport = (x: AuditExport): Schemas['AuditExport'] => {
  const progress = x.status === 'ready' ? 1 : x.totalRows ? Math.min(1, x.rowsWritten / x.totalRows) : 0;
  return {
    id: x.id, status: x.status, filters: x.filters, totalRows: x.totalRows, rowsWritten: x.rowsWritten,
    progress: Math.round(progress * 1000) / 1000, fileId: x.fileId,
    downloadUrl: x.status === 'ready' ? `/v1/audit-exports/${x.id}/download` : null,
    error: x.error, workflowId: x.workflowId, createdAt: x.createdAt.toISOString(), completedAt: iso(x.completedAt),
  };
};
