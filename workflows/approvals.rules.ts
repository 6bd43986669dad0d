// The stage rules as pure functions: what a signature means for a stage (no I/O, no time). The API uses
// them too, to refuse at start a flow whose stages could never be decided.
import type { Signature, StageDef, StageState, TemplateDef } from './approvals.api';

export const AUTO_APPROVE_REASON = 'the requester holds an auto-approve role';
export const NOT_REQUIRED_REASON = 'approval of this object type is not required';

/** A requester holding one of the template's auto-approve roles has the flow approved at once. */
export function autoApproves(def: TemplateDef, requesterRoles: string[]): boolean {
  return requesterRoles.some((r) => def.autoApproveRoles.includes(r));
}

/** Approvers who may count: the requester never counts when self-approval is off. */
/** The stage's approvers who may decide it: not the requester, nor who wrote the object (`contributors`), unless self-approval is allowed. */
export function eligibleApprovers(stage: StageState, requesterId: string, allowSelfApproval: boolean, contributors: readonly string[] = []): string[] {
  return allowSelfApproval ? stage.approvers : stage.approvers.filter((u) => u !== requesterId && !contributors.includes(u));
}

/**
 * Approvals a stage needs. A quorum is that many distinct eligible approvers, never fewer: with fewer
 * eligible the stage cannot be approved (and the API refuses to start such a flow). Flows started before
 * this rule lowered the quorum to the eligible count (`clampQuorum`, so that 3 of 3 approvers, one of
 * them the requester, approved with 2 signatures); they keep that rule to the end.
 */
export function needed(def: StageDef, eligible: number, clampQuorum = false): number {
  if (def.rule === 'any') return Math.min(1, eligible);
  if (def.rule === 'quorum') return clampQuorum ? Math.min(def.quorum ?? 1, eligible) : def.quorum ?? 1;
  return eligible;
}

/** The fewest eligible approvers with whom the stage's rule can still be met. */
export function fewestEligible(def: StageDef): number {
  return def.rule === 'quorum' ? def.quorum ?? 1 : 1;
}

/** approved / rejected once decided, else active. A stage with nobody eligible cannot be approved. */
export function stageOutcome(def: StageDef, stage: StageState, eligible: string[], clampQuorum = false): 'approved' | 'rejected' | 'active' {
  const signers = new Map<string, Signature>();
  for (const s of stage.signatures) if (eligible.includes(s.userId)) signers.set(s.userId, s);
  const approvals = [...signers.values()].filter((s) => s.decision === 'approve').length;
  const rejections = [...signers.values()].filter((s) => s.decision === 'reject').length;
  const need = needed(def, eligible.length, clampQuorum);
  if (eligible.length === 0) return 'rejected';
  if (rejections > 0 && def.rejectPolicy === 'immediate') return 'rejected';
  if (approvals >= need) return 'approved';
  const stillOpen = eligible.length - approvals - rejections;
  if (approvals + stillOpen < need) return 'rejected';
  return 'active';
}

/** Eligible approvers who have not signed the stage yet (reminders go to them). */
export function pendingApprovers(stage: StageState, eligible: string[]): string[] {
  const signed = new Set(stage.signatures.map((s) => s.userId));
  return eligible.filter((u) => !signed.has(u));
}
