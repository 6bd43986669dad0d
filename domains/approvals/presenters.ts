// Approval templates, flows (whole and as list rows) and their history → API JSON.
import type { Attributes } from 'sequelize';
import type { ApprovalEvent, ApprovalFlow } from '../../db/models/approvals';
import type { TemplateDef } from '../../workflows/approvals.api';
import type { Schemas } from '../schemas';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/** A list row as Postgres returned it (paginateRows): the flow's attributes and the computed columns, by name. */
type FlowRow = Attributes<ApprovalFlow> & Record<string, unknown>;

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
  createdAt: f.createdAt.toISOString(), completedAt: iso(f.completedAt), expiresAt: f.state.expiresAt ?? null,
});

/** A list row: selected with `FLOW_SUMMARY_ATTRIBUTES` (no state or approver arrays read from Postgres) as a plain row. */
export const presentApprovalFlowSummary = (f: FlowRow): Schemas['ApprovalFlowSummary'] => ({
  id: f.id, objectType: f.objectType, objectId: f.objectId, title: f.title, status: f.status, currentStage: f.currentStage,
  currentStageName: (f.currentStageName as string | null) ?? null, stageDueAt: f.stageDueAt ? new Date(f.stageDueAt as string).toISOString() : null,
  pendingCount: Number(f.pendingCount), templateId: f.templateId, templateVersion: f.templateVersion,
  requesterId: f.requesterId, workflowId: f.workflowId, createdAt: f.createdAt.toISOString(), completedAt: iso(f.completedAt),
  expiresAt: f.expiresAt ? new Date(f.expiresAt as string).toISOString() : null,
});

export const presentApprovalEvent = (e: ApprovalEvent): Schemas['ApprovalHistoryEvent'] => ({
  seq: e.seq, type: e.type, stage: e.stage, actorId: e.actorId, decision: e.decision, comment: e.comment, at: e.at.toISOString(),
});
