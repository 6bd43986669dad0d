// Approvals: the shared definitions of the flow workflow (API, worker and workflow import these).
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { CANCELLED_WRITE_PATCH, STATUS_UPSERT_PATCH } from './patches';

export const APPROVALS_TASK_QUEUE = 'docket-approvals';
/**
 * Approval emails run on a queue of their own next to the flow's (`<flow queue>-notifications`), so a
 * flood of notifications never delays the writes that signs wait for.
 */
export const notificationQueueOf = (flowTaskQueue: string) => `${flowTaskQueue}-notifications`;
export const APPROVAL_NOTIFY_TASK_QUEUE = notificationQueueOf(APPROVALS_TASK_QUEUE);
export const APPROVALS_DOMAIN = 'approvals';

export interface ApproverSet {
  users: string[];
  roles: string[];
}

export interface StageDef {
  name: string;
  approvers: ApproverSet;
  /** all: every resolved approver; any: one of them; quorum: `quorum` distinct approvers. */
  rule: 'all' | 'any' | 'quorum';
  quorum?: number;
  /** immediate: one reject rejects the flow; when_impossible: only once the rule can no longer be met. */
  rejectPolicy: 'immediate' | 'when_impossible';
  dueHours?: number;
  remindBeforeHours?: number;
  onDue?: { action: 'escalate' | 'reject' | 'expire'; escalateTo?: ApproverSet };
}

export interface TemplateDef {
  stages: StageDef[];
  allowSelfApproval: boolean;
  autoApproveRoles: string[];
  maxPendingDays?: number;
}

export type FlowStatus = 'pending' | 'approved' | 'rejected' | 'cancelled' | 'expired';
/** A stage still open when its flow ends (expired, cancelled, rejected at due) ends with the flow. */
export type StageStatus = 'waiting' | 'active' | 'approved' | 'rejected' | 'expired' | 'cancelled';

export interface Signature {
  userId: string;
  decision: 'approve' | 'reject';
  comment?: string;
  at: string;
  via: 'api' | 'email';
}

export interface StageState {
  name: string;
  status: StageStatus;
  /** Approvers resolved (users + members of roles) when the flow started, plus escalations. */
  approvers: string[];
  signatures: Signature[];
  openedAt?: string;
  dueAt?: string;
  escalated?: boolean;
}

export interface FlowState {
  flowId: string;
  status: FlowStatus;
  currentStage: number;
  stages: StageState[];
  outcome?: { reason: string; by?: string; at: string };
  /** When the flow expires if still pending (its template's maxPendingDays from the start), or null for never. */
  expiresAt?: string | null;
  /** Incremented by every accepted change; the read model keeps the newest. */
  version: number;
}

export interface HistoryEvent {
  seq: number;
  type: 'created' | 'auto_approved' | 'not_required' | 'stage_opened' | 'signed' | 'signature_removed' | 'decided_by_admin' | 'reminder_sent' | 'escalated'
    | 'stage_approved' | 'stage_rejected' | 'approved' | 'rejected' | 'cancelled' | 'expired';
  stage?: number;
  actorId?: string;
  decision?: 'approve' | 'reject';
  comment?: string;
  at: string;
}

/** The approval flow's patches, each explained where workflows/approvals.ts uses it. */
export const APPROVAL_PATCH = {
  quorumNotClamped: 'approvals-quorum-not-clamped',
  closeStageAtEnd: 'approvals-close-stage-at-end',
  notifyRequestWatchers: 'approvals-notify-request-watchers',
  objectIdAttribute: 'approvals-object-id-attribute',
  notifyReopenedStage: 'approvals-notify-reopened-stage',
  /**
   * A flow continues as new only with every accepted command written (and so answered): before, one accepted while the
   * last write or a reopened stage's emails were in flight waited for a write that came after every handler had
   * answered, and the flow hung.
   */
  continueAfterWrites: 'approvals-continue-after-writes',
} as const;
/** Named in the input the API starts a flow with, so a new flow takes their paths without patched() (workflows/patches.ts). */
export const APPROVAL_PATCHES = [...Object.values(APPROVAL_PATCH), STATUS_UPSERT_PATCH, CANCELLED_WRITE_PATCH];

export interface ApprovalFlowInput {
  flowId: string;
  tenantId: string;
  objectType: string;
  objectId: string;
  title: string;
  requester: { id: string; roles: string[] };
  /** Null when the object type needs no approval (the tenant's settings): then `notRequired` is true. */
  template: { id: string; version: number } | null;
  definition: TemplateDef;
  /** The tenant does not require approval of this object type: the flow is approved at once, recorded as such. */
  notRequired?: boolean;
  /**
   * Who wrote the object besides the requester (a purchase order's author and editors): unless the template allows
   * self-approval, none of them may approve it, as the requester may not. Flows started before carry none.
   */
  contributors?: string[];
  /**
   * Each stage's approvers, resolved when the flow starts (a snapshot of role membership). Passing
   * them in keeps stage opening synchronous, so an Update never meets a stage still being opened.
   */
  approvers: string[][];
  /** Set by continue-as-new: the state and counters carried into the new run (and the rules it started with). */
  /** `remindedStage` / `dueHandledStage`: the stage whose reminder was sent and whose due time was handled (-1: none). */
  resume?: { state: FlowState; seq: number; startedAt: string; clampQuorum?: boolean; remindedStage?: number; dueHandledStage?: number };
  /** The patches the starting code had (APPROVAL_PATCHES): their new paths are taken without patched(). */
  patches?: string[];
}

export interface SignCommand {
  userId: string;
  roles: string[];
  decision: 'approve' | 'reject';
  comment?: string;
  via: 'api' | 'email';
  /** The stage the signer was asked to sign (an emailed link's): refused once the flow has moved on. */
  stage?: number;
}

export interface CancelCommand {
  userId: string;
  isAdmin: boolean;
  reason?: string;
}

export interface RemoveSignatureCommand {
  adminId: string;
  userId: string;
  stage: number;
  reason?: string;
}

/** An admin decides the flow for everyone (its own permission, approvals.flow.decide): with a reason, always. */
export interface AdminDecideCommand {
  adminId: string;
  decision: 'approve' | 'reject';
  reason: string;
}

export const signUpdate = defineUpdate<FlowState, [SignCommand]>('sign');
export const adminDecideUpdate = defineUpdate<FlowState, [AdminDecideCommand]>('adminDecide');
export const cancelUpdate = defineUpdate<FlowState, [CancelCommand]>('cancel');
export const removeSignatureUpdate = defineUpdate<FlowState, [RemoveSignatureCommand]>('removeSignature');
export const flowStateQuery = defineQuery<FlowState>('state');

/** Refusals of the update validators: the ApplicationFailure type → HTTP status the API answers. */
export const APPROVAL_REFUSALS = {
  NOT_AN_APPROVER: 403,
  SELF_APPROVAL_FORBIDDEN: 403,
  NOT_ALLOWED_TO_CANCEL: 403,
  ALREADY_SIGNED: 409,
  FLOW_CLOSED: 409,
  STAGE_CHANGED: 409,
  REASON_REQUIRED: 422,
  SIGNATURE_NOT_FOUND: 404,
} as const;
export type ApprovalRefusal = keyof typeof APPROVAL_REFUSALS;
