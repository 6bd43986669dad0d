// The stage rules as pure functions: what a signature means for a stage (no I/O, no time).
import type { Signature, StageDef, StageState } from './approvals.api';

/** Approvers who may count: the requester never counts when self-approval is off. */
export function eligibleApprovers(stage: StageState, requesterId: string, allowSelfApproval: boolean): string[] {
  return allowSelfApproval ? stage.approvers : stage.approvers.filter((u) => u !== requesterId);
}

export function needed(def: StageDef, eligible: number): number {
  if (def.rule === 'any') return Math.min(1, eligible);
  if (def.rule === 'quorum') return Math.min(def.quorum ?? 1, eligible);
  return eligible;
}

/** approved / rejected once decided, else active. A stage with nobody eligible cannot be approved. */
export function stageOutcome(def: StageDef, stage: StageState, eligible: string[]): 'approved' | 'rejected' | 'active' {
  const signers = new Map<string, Signature>();
  for (const s of stage.signatures) if (eligible.includes(s.userId)) signers.set(s.userId, s);
  const approvals = [...signers.values()].filter((s) => s.decision === 'approve').length;
  const rejections = [...signers.values()].filter((s) => s.decision === 'reject').length;
  const need = needed(def, eligible.length);
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
