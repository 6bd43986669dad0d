// Audit events and exports → API JSON.
import type { AuditEvent, AuditExport } from '../../db/models/audit';
import { presentExport } from '../export-jobs';
import type { Schemas } from '../schemas';

export const presentAuditEvent = (e: AuditEvent): Schemas['AuditEvent'] => ({
  id: String(e.id), actorType: e.actorType, actorId: e.actorId, action: e.action, entityType: e.entityType, entityId: e.entityId,
  before: (e.before ?? null) as Record<string, unknown> | null, after: (e.after ?? null) as Record<string, unknown> | null, requestId: e.requestId, workflowId: e.workflowId, createdAt: e.createdAt.toISOString(),
});

export const presentAuditExport = (x: AuditExport): Schemas['AuditExport'] => presentExport(x, `/v1/audit-exports/${x.id}/download`);
