// One approval flow: stages in order, signatures by Update (refused synchronously by validators),
// reminders, escalation and expiry on durable timers; every change is persisted by an activity.
import {
  allHandlersFinished, ApplicationFailure, condition, continueAsNew, log, proxyActivities, proxyLocalActivities,
  setHandler, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { ApprovalActivities } from '../activities/approvals';
import {
  APPROVAL_PATCH, ApprovalFlowInput, ApprovalRefusal, cancelUpdate, flowStateQuery, FlowState, FlowStatus, HistoryEvent, notificationQueueOf,
  adminDecideUpdate, removeSignatureUpdate, signUpdate, StageState,
} from './approvals.api';
import { AUTO_APPROVE_REASON, autoApproves, NOT_REQUIRED_REASON, eligibleApprovers, pendingApprovers, stageOutcome } from './approvals.rules';
import { OBJECT_ID } from './search-attributes';
import { CANCELLED_IN_TEMPORAL, writeEndIfCancelled } from './failures';
import { hasPatch } from './patches';
import { setWorkflowStatus } from './status';
import { OUTAGE_RETRY } from './retry';

// A recipient the mail server refuses for good (5xx) is not retried; anything else is.
// No attempt limits: an outage is retried until it is over; the activities give up on other errors
// themselves (activities/index.ts).
const acts = proxyActivities<ApprovalActivities>({
  startToCloseTimeout: '1 minute',
  retry: { ...OUTAGE_RETRY, nonRetryableErrorTypes: ['EmailRejectedError'] },
});
// The read-model write is a local activity: it runs inside the workflow task that applied the command,
// so a sign answers after one round trip to the server instead of an activity task's three.
const local = proxyLocalActivities<ApprovalActivities>({
  startToCloseTimeout: '30 seconds',
  retry: OUTAGE_RETRY,
});
const notifier = () => proxyActivities<ApprovalActivities>({
  taskQueue: notificationQueueOf(workflowInfo().taskQueue),
  startToCloseTimeout: '5 minutes', // a stage may have dozens of approvers, one email each
  // It heartbeats after every email; one send is bounded by the SMTP timeouts (10 + 10 + 30 s), so a
  // minute of silence means the attempt is gone (e.g. its task was lost), and it is retried then.
  heartbeatTimeout: '1 minute',
  retry: { ...OUTAGE_RETRY, nonRetryableErrorTypes: ['EmailRejectedError'] },
});

const HOUR = 3_600_000;
const refuse = (type: ApprovalRefusal, message: string) => ApplicationFailure.nonRetryable(message, type);
const nowIso = () => new Date().toISOString();

export async function approvalFlowWorkflow(input: ApprovalFlowInput): Promise<FlowState> {
  const def = input.definition;
  const notify = notifier();
  const has = (patch: string) => hasPatch(input.patches, patch);
  const startedAt = input.resume?.startedAt ?? nowIso();
  const state: FlowState = input.resume?.state ?? {
    flowId: input.flowId, status: 'pending', currentStage: 0, version: 0,
    stages: def.stages.map((s) => ({ name: s.name, status: 'waiting', approvers: [], signatures: [] })),
  };
  // Shown to users as the flow's deadline; flows started before it was kept get it on their next write. A field of
  // the state the activities receive, no command: histories replay unchanged.
  state.expiresAt ??= def.maxPendingDays ? new Date(Date.parse(startedAt) + def.maxPendingDays * 24 * HOUR).toISOString() : null;
  let seq = input.resume?.seq ?? 0;
  /** A stage an admin's signature removal reopened, whose approvers the main loop mails again (once it is written). */
  let reopened: { stage: number; round: number } | undefined;
  // Flows started before quorums were kept whole keep the old rule to their end (patched: their
  // histories replay as they ran); decided once per flow and carried across continue-as-new.
  const clampQuorum = input.resume ? input.resume.clampQuorum ?? false : !has(APPROVAL_PATCH.quorumNotClamped);
  let unsaved: HistoryEvent[] = [];
  // Bumped by every accepted update; the main loop answers by settling (persisting) that version.
  let settled = state.version;

  const event = (e: Omit<HistoryEvent, 'seq' | 'at'>) => { unsaved.push({ ...e, seq: ++seq, at: nowIso() }); };
  const stage = (): StageState => state.stages[state.currentStage];
  const eligible = (s: StageState) => eligibleApprovers(s, input.requester.id, def.allowSelfApproval, input.contributors);

  async function persist(): Promise<void> {
    // The version written is the one now: an Update that lands while the write is in flight stays
    // unsettled until the next round has applied and written it.
    const writing = state.version;
    const events = unsaved;
    unsaved = [];
    const current = state.status === 'pending' ? stage() : undefined;
    try {
      await local.persistFlow({
        tenantId: input.tenantId, flowId: input.flowId, state,
        pendingApprovers: current ? pendingApprovers(current, eligible(current)) : [], events,
      });
    } catch (err) {
      // Not written (e.g. cancelled from Temporal mid-write): the events go with the next write (they are keyed).
      unsaved = [...events, ...unsaved];
      throw err;
    }
    settled = writing;
  }

  function finish(status: Exclude<FlowStatus, 'pending'>, reason: string, by?: string): void {
    const open = stage();
    // The stage left open by an end that is not a signature (expiry, due-reject, cancel) ends with the flow.
    if (status !== 'approved' && open?.status === 'active' && has(APPROVAL_PATCH.closeStageAtEnd)) {
      open.status = status === 'expired' || status === 'cancelled' ? status : 'rejected';
    }
    state.status = status;
    state.outcome = { reason, by, at: nowIso() };
    state.version++;
    event({ type: status, actorId: by, comment: reason });
  }

  function openStage(index: number): void {
    const s = state.stages[index];
    const sd = def.stages[index];
    s.status = 'active';
    s.signatures = [];
    s.openedAt = nowIso();
    s.dueAt = sd.dueHours ? new Date(Date.now() + sd.dueHours * HOUR).toISOString() : undefined;
    s.approvers = [...(input.approvers[index] ?? [])];
    state.currentStage = index;
    state.version++;
    event({ type: 'stage_opened', stage: index });
  }

  /** Applies the current stage's outcome until the flow waits for people again or ends. */
  async function advance(): Promise<void> {
    while (state.status === 'pending') {
      const s = stage();
      const outcome = stageOutcome(def.stages[state.currentStage], s, eligible(s), clampQuorum);
      if (outcome === 'active') return;
      s.status = outcome;
      state.version++;
      event({ type: outcome === 'approved' ? 'stage_approved' : 'stage_rejected', stage: state.currentStage });
      if (outcome === 'rejected') finish('rejected', 'a stage was rejected');
      else if (state.currentStage + 1 >= state.stages.length) finish('approved', 'every stage approved');
      else {
        openStage(state.currentStage + 1);
        await persist(); // the next stage is visible before its emails are sent
        await notify.notifyApprovers({ tenantId: input.tenantId, flowId: input.flowId, title: input.title, stage: state.currentStage, userIds: pendingApprovers(stage(), eligible(stage())), kind: 'request' });
      }
    }
  }

  // Updates that arrived with the start are delivered as soon as their handler is set, so the first
  // stage is opened (synchronously) before the handlers exist: validators never see a half-made flow.
  if (!input.resume) {
    event({ type: 'created', actorId: input.requester.id });
    // Only flows started with the flag (new inputs) take this branch: older histories replay unchanged.
    if (input.notRequired) {
      event({ type: 'not_required', actorId: input.requester.id });
      finish('approved', NOT_REQUIRED_REASON, input.requester.id);
    } else if (autoApproves(def, input.requester.roles)) {
      event({ type: 'auto_approved', actorId: input.requester.id });
      finish('approved', AUTO_APPROVE_REASON, input.requester.id);
    } else {
      openStage(0);
    }
  }

  setHandler(flowStateQuery, () => state);

  setHandler(signUpdate, async (cmd) => {
    const s = stage();
    const existing = s.signatures.find((x) => x.userId === cmd.userId);
    s.signatures = existing ? s.signatures : [...s.signatures, { userId: cmd.userId, decision: cmd.decision, comment: cmd.comment, at: nowIso(), via: cmd.via }];
    state.version++;
    event({ type: 'signed', stage: state.currentStage, actorId: cmd.userId, decision: cmd.decision, comment: cmd.comment });
    const mine = state.version;
    await condition(() => settled >= mine);
    return state;
  }, {
    validator: (cmd) => {
      if (state.status !== 'pending') throw refuse('FLOW_CLOSED', `The flow is ${state.status}`);
      const s = stage();
      if (s.status !== 'active') throw refuse('FLOW_CLOSED', `Stage "${s.name}" is ${s.status}`);
      // A link mailed for an earlier stage must not sign the stage open now (its approvers may overlap).
      if (cmd.stage !== undefined && cmd.stage !== state.currentStage) throw refuse('STAGE_CHANGED', `The flow has moved on to stage "${s.name}"`);
      if (cmd.userId === input.requester.id && !def.allowSelfApproval && s.approvers.includes(cmd.userId)) {
        throw refuse('SELF_APPROVAL_FORBIDDEN', 'The requester may not approve their own request');
      }
      if (input.contributors?.includes(cmd.userId) && !def.allowSelfApproval && s.approvers.includes(cmd.userId)) {
        throw refuse('SELF_APPROVAL_FORBIDDEN', 'Who wrote what is being decided may not approve it');
      }
      if (!s.approvers.includes(cmd.userId)) throw refuse('NOT_AN_APPROVER', `Not an approver of stage "${s.name}"`);
      if (s.signatures.some((x) => x.userId === cmd.userId)) throw refuse('ALREADY_SIGNED', `Already signed stage "${s.name}"`);
      if (cmd.decision === 'reject' && !cmd.comment?.trim()) throw refuse('REASON_REQUIRED', 'A rejection needs a reason');
    },
  });

  setHandler(cancelUpdate, async (cmd) => {
    finish('cancelled', cmd.reason ?? 'cancelled', cmd.userId);
    const mine = state.version;
    await condition(() => settled >= mine);
    return state;
  }, {
    validator: (cmd) => {
      if (state.status !== 'pending') throw refuse('FLOW_CLOSED', `The flow is ${state.status}`);
      if (cmd.userId !== input.requester.id && !cmd.isAdmin) throw refuse('NOT_ALLOWED_TO_CANCEL', 'Only the requester or an approvals admin may cancel');
    },
  });

  setHandler(adminDecideUpdate, async (cmd) => {
    // The open stage ends as decided; the stages after it stay as they were (never opened).
    const open = stage();
    if (open.status === 'active') open.status = cmd.decision === 'approve' ? 'approved' : 'rejected';
    event({ type: 'decided_by_admin', stage: state.currentStage, actorId: cmd.adminId, decision: cmd.decision, comment: cmd.reason });
    finish(cmd.decision === 'approve' ? 'approved' : 'rejected', cmd.reason, cmd.adminId);
    const mine = state.version;
    await condition(() => settled >= mine);
    return state;
  }, {
    validator: (cmd) => {
      if (state.status !== 'pending') throw refuse('FLOW_CLOSED', `The flow is ${state.status}`);
      if (!cmd.reason.trim()) throw refuse('REASON_REQUIRED', 'An admin decision needs a reason');
    },
  });

  setHandler(removeSignatureUpdate, async (cmd) => {
    const s = state.stages[cmd.stage];
    s.signatures = s.signatures.filter((x) => x.userId !== cmd.userId);
    event({ type: 'signature_removed', stage: cmd.stage, actorId: cmd.adminId, comment: cmd.reason });
    if (cmd.stage < state.currentStage && stageOutcome(def.stages[cmd.stage], s, eligible(s), clampQuorum) !== 'approved') {
      reopened = { stage: cmd.stage, round: seq };
      // The earlier stage is no longer satisfied: it reopens, and the stages after it start over.
      for (let i = cmd.stage + 1; i <= state.currentStage; i++) Object.assign(state.stages[i], { status: 'waiting', signatures: [] });
      s.status = 'active';
      state.currentStage = cmd.stage;
    }
    state.version++;
    const mine = state.version;
    await condition(() => settled >= mine);
    return state;
  }, {
    validator: (cmd) => {
      if (state.status !== 'pending') throw refuse('FLOW_CLOSED', `The flow is ${state.status}`);
      const s = state.stages[cmd.stage];
      if (!s || cmd.stage > state.currentStage || !s.signatures.some((x) => x.userId === cmd.userId)) {
        throw refuse('SIGNATURE_NOT_FOUND', `No signature of ${cmd.userId} on stage ${cmd.stage}`);
      }
    },
  });

  try {
    if (!input.resume) {
      // Updates delivered with the start are applied (a stage may even be decided at once), then the
      // flow is written, so it is visible before any email goes out; a write only ever settles
      // changes that advance() has evaluated.
      await advance();
      await persist();
      if (state.status === 'pending' && state.currentStage === 0) {
        await notify.notifyApprovers({ tenantId: input.tenantId, flowId: input.flowId, title: input.title, stage: 0, userIds: pendingApprovers(stage(), eligible(stage())), kind: 'request' });
      }
      // The tenant's watchers of new requests (settings); histories from before this replay without it (patched).
      // (A flow whose approval is not required is no request: nobody is told of it.)
      if (has(APPROVAL_PATCH.notifyRequestWatchers) && !input.notRequired) {
        await notify.notifyRequestWatchers({
          tenantId: input.tenantId, flowId: input.flowId, title: input.title, requesterId: input.requester.id,
          approverIds: input.approvers[0] ?? [], autoApproved: state.outcome?.reason === AUTO_APPROVE_REASON,
        });
      }
    }

    const expiresAt = def.maxPendingDays ? Date.parse(startedAt) + def.maxPendingDays * 24 * HOUR : Infinity;
    // Carried across continue-as-new, so a stage is not reminded or escalated again in the next run.
    let remindedStage = input.resume?.remindedStage ?? -1;
    let dueHandledStage = input.resume?.dueHandledStage ?? -1;

    while (state.status === 'pending') {
      if (workflowInfo().continueAsNewSuggested) {
        if (has(APPROVAL_PATCH.continueAfterWrites)) {
          // A handler answers once its change is written: with a change unwritten, this round writes it first.
          if (state.version === settled) await condition(() => allHandlersFinished() || state.version !== settled);
          if (state.version === settled) {
            await continueAsNew<typeof approvalFlowWorkflow>({ ...input, resume: { state, seq, startedAt, clampQuorum, remindedStage, dueHandledStage } });
          }
        } else {
          await condition(allHandlersFinished);
          await continueAsNew<typeof approvalFlowWorkflow>({ ...input, resume: { state, seq, startedAt, clampQuorum } });
        }
      }
      setWorkflowStatus('pending', input.patches);
      // Flows are started with ObjectId (the object's own id, as operators know it); one started before
      // that attribute existed gets it here (patched: older histories replay without it).
      if (workflowInfo().typedSearchAttributes.get(OBJECT_ID) === undefined && has(APPROVAL_PATCH.objectIdAttribute)) {
        upsertSearchAttributes([{ key: OBJECT_ID, value: input.objectId }]);
      }
      const s = stage();
      const sd = def.stages[state.currentStage];
      const dueAt = s.dueAt ? Date.parse(s.dueAt) : Infinity;
      const remindAt = sd.remindBeforeHours !== undefined && dueAt !== Infinity ? dueAt - sd.remindBeforeHours * HOUR : Infinity;
      const next = Math.min(remindedStage === state.currentStage ? Infinity : remindAt, dueHandledStage === state.currentStage ? Infinity : dueAt, expiresAt);
      const changed = next === Infinity
        ? await condition(() => state.version !== settled).then(() => true)
        : await condition(() => state.version !== settled, Math.max(1, next - Date.now()));
      if (!changed) {
        const now = Date.now();
        if (now >= expiresAt) finish('expired', `pending longer than ${def.maxPendingDays} days`);
        else if (now >= dueAt && dueHandledStage !== state.currentStage) {
          dueHandledStage = state.currentStage;
          const action = sd.onDue?.action;
          if (action === 'reject') finish('rejected', `stage "${s.name}" was not decided in time`);
          else if (action === 'expire') finish('expired', `stage "${s.name}" was not decided in time`);
          else if (action === 'escalate' && sd.onDue?.escalateTo) {
            const extra = await acts.resolveApprovers({ tenantId: input.tenantId, ...sd.onDue.escalateTo });
            const added = extra.filter((u) => !s.approvers.includes(u));
            s.approvers = [...s.approvers, ...added];
            s.escalated = true;
            state.version++;
            event({ type: 'escalated', stage: state.currentStage });
            await notify.notifyApprovers({ tenantId: input.tenantId, flowId: input.flowId, title: input.title, stage: state.currentStage, userIds: added, kind: 'escalation' });
          }
        } else if (now >= remindAt && remindedStage !== state.currentStage) {
          remindedStage = state.currentStage;
          const to = pendingApprovers(s, eligible(s));
          event({ type: 'reminder_sent', stage: state.currentStage });
          state.version++;
          await notify.notifyApprovers({ tenantId: input.tenantId, flowId: input.flowId, title: input.title, stage: state.currentStage, userIds: to, kind: 'reminder' });
        }
      }
      await advance();
      await persist();
      // Histories from before approvers of a reopened stage were mailed replay without this (patched).
      if (reopened) {
        const { stage: at, round } = reopened;
        reopened = undefined;
        if (state.status === 'pending' && state.currentStage === at && has(APPROVAL_PATCH.notifyReopenedStage)) {
          await notify.notifyApprovers({ tenantId: input.tenantId, flowId: input.flowId, title: input.title, stage: at, userIds: pendingApprovers(stage(), eligible(stage())), kind: 'reopened', round });
        }
      }
    }

    // A change accepted while the last write was in flight (e.g. a cancel) is written before the end.
    if (state.version !== settled) await persist();
    setWorkflowStatus(state.status, input.patches);
    await acts.flowFinished({ tenantId: input.tenantId, flowId: input.flowId, objectType: input.objectType, objectId: input.objectId, status: state.status });
    // Let a last update's caller receive its answer before the workflow completes.
    await condition(allHandlersFinished);
    return state;
  } catch (err) {
    // Cancelled from Temporal itself (the UI, the CLI; Docket's API cancels by Update): the flow ends cancelled in
    // Postgres too, and its object follows, rather than staying pending with approvers asked for ever.
    return writeEndIfCancelled(err, input.patches, async () => {
      if (state.status === 'pending') finish('cancelled', CANCELLED_IN_TEMPORAL);
      if (state.version !== settled || unsaved.length) await persist();
      setWorkflowStatus(state.status, input.patches);
      // The run ends cancelled whatever this answers: a failure here is logged, not what the run ends with.
      await acts.flowFinished({ tenantId: input.tenantId, flowId: input.flowId, objectType: input.objectType, objectId: input.objectId, status: state.status })
        .catch((e: unknown) => log.warn('the flow cancelled in Temporal could not tell its object', { error: (e as Error).message }));
    });
  }
}
