// Models → API JSON, in one place, so a field is named the same in every route. The return types are
// generated from openapi.yaml, so a presenter that drifts from the contract does not compile.
import { ApiKey, ApprovalEvent, ApprovalFlow, AuditEvent, AuditExport, PurchaseOrder, Role, StoredFile, Tenant, User } from '../db';
import type { TemplateDef } from '../workflows/approvals.api';
import { Schemas } from './schemas';
import type { Row } from './conventions';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const presentTenant = (t: Tenant): Schemas['Tenant'] => ({ id: t.id, name: t.name, slug: t.slug, createdAt: t.createdAt.toISOString() });

export const presentUser = (u: User): Schemas['User'] => ({
  id: u.id, email: u.email, name: u.name, active: u.active,
  roles: (u.roles ?? []).map((r) => r.key).sort(),
  createdAt: u.createdAt.toISOString(), updatedAt: u.updatedAt.toISOString(),
});

export const presentRole = (r: Role): Schemas['Role'] => ({
  key: r.key, title: r.title, permissions: r.permissions, createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString(),
});

export const presentApiKey = (k: ApiKey): Schemas['ApiKey'] => ({
  id: k.id, name: k.name, prefix: `dk_${k.prefix}`, userId: k.userId, scopes: k.scopes,
  expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt), lastUsedAt: iso(k.lastUsedAt), createdAt: k.createdAt.toISOString(),
});

export const presentAuditEvent = (e: AuditEvent): Schemas['AuditEvent'] => ({
  id: String(e.id), actorType: e.actorType, actorId: e.actorId, action: e.action, entityType: e.entityType, entityId: e.entityId,
  before: (e.before ?? null) as Record<string, unknown> | null, after: (e.after ?? null) as Record<string, unknown> | null, requestId: e.requestId, workflowId: e.workflowId, createdAt: e.createdAt.toISOString(),
});

export const presentFile = (f: StoredFile): Schemas['File'] => ({
  id: f.id, filename: f.filename, contentType: f.contentType, size: f.size, sha256: f.sha256, createdBy: f.createdBy,
  createdAt: f.createdAt.toISOString(), downloadUrl: `/v1/files/${f.id}/content`,
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

export const presentApprovalTemplate = (t: { id: string; name: string; objectType: string; condition: string | null; priority: number; definition: TemplateDef; version: number; createdAt: Date; updatedAt?: Date }): Schemas['ApprovalTemplate'] => ({
  id: t.id, name: t.name, objectType: t.objectType, condition: t.condition, priority: t.priority,
  stages: t.definition.stages, allowSelfApproval: t.definition.allowSelfApproval, autoApproveRoles: t.definition.autoApproveRoles,
  maxPendingDays: t.definition.maxPendingDays ?? null, version: t.version,
  createdAt: t.createdAt.toISOString(), updatedAt: (t.updatedAt ?? t.createdAt).toISOString(),
});

export const presentApprovalFlow = (f: ApprovalFlow): Schemas['ApprovalFlow'] => ({
  id: f.id, objectType: f.objectType, objectId: f.objectId, title: f.title, status: f.status, currentStage: f.currentStage,
  stages: f.state.stages, outcome: f.state.outcome ?? null, templateId: f.templateId, templateVersion: f.templateVersion,
  requesterId: f.requesterId, pendingApprovers: f.pendingApprovers, workflowId: f.workflowId,
  createdAt: f.createdAt.toISOString(), completedAt: iso(f.completedAt),
});

/** A list row: selected with `FLOW_SUMMARY_ATTRIBUTES` (no state or approver arrays read from Postgres) as a plain row. */
export const presentApprovalFlowSummary = (f: Row<ApprovalFlow>): Schemas['ApprovalFlowSummary'] => ({
  id: f.id, objectType: f.objectType, objectId: f.objectId, title: f.title, status: f.status, currentStage: f.currentStage,
  currentStageName: (f.currentStageName as string | null) ?? null, stageDueAt: f.stageDueAt ? new Date(f.stageDueAt as string).toISOString() : null,
  pendingCount: Number(f.pendingCount), templateId: f.templateId, templateVersion: f.templateVersion,
  requesterId: f.requesterId, workflowId: f.workflowId, createdAt: f.createdAt.toISOString(), completedAt: iso(f.completedAt),
});

export const presentApprovalEvent = (e: ApprovalEvent): Schemas['ApprovalHistoryEvent'] => ({
  seq: e.seq, type: e.type, stage: e.stage, actorId: e.actorId, decision: e.decision, comment: e.comment, at: e.at.toISOString(),
});

export const presentPurchaseOrder = (o: PurchaseOrder): Schemas['PurchaseOrder'] => ({
  id: o.id, number: o.number, supplier: o.supplier, currency: o.currency, lines: o.lines, total: o.total, state: o.state,
  requesterId: o.requesterId, approvalFlowId: o.approvalFlowId ?? null, createdAt: o.createdAt.toISOString(), updatedAt: o.updatedAt.toISOString(),
});
