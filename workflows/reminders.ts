// One reminder: durable timers for each occurrence's triggers (offsets before it, repeats after it,
// snoozes), commands by Update (refused synchronously by validators), deliveries by activity.
import {
  allHandlersFinished, ApplicationFailure, condition, continueAsNew, proxyActivities, proxyLocalActivities, setHandler, workflowInfo,
} from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/workflow';
import type { ReminderActivities } from '../activities/reminders';
import type { AuditAction } from '../lib/audit-actions';
import {
  acknowledgeUpdate, cancelReminderUpdate, CONTINUE_AFTER_WRITES_PATCH, DeliveryRef, FINAL_DELIVERY_ERRORS, FINAL_WRITE_DELIVERS_PATCH, LOCAL_WRITES_PATCH, pauseUpdate, ReminderAudit, ReminderCommand, ReminderInput, ReminderRefusal,
  ReminderState, reminderStateQuery, rescheduleUpdate, resumeUpdate, snoozeUpdate,
} from './reminders.api';
import { deliveryTargets, nextTrigger, occurrenceSpan, snoozedTriggers, Trigger } from './reminders.rules';
import { hasPatch } from './patches';
import { setWorkflowStatus } from './status';
import { SYSTEM, writeEndIfCancelled } from './failures';
import { OUTAGE_RETRY } from './retry';

// No attempt limits: an outage is retried until it is over; the activities give up on other errors
// themselves (activities/index.ts: a delivery after 8 attempts, a write after 10).
const acts = proxyActivities<ReminderActivities>({ startToCloseTimeout: '1 minute', retry: OUTAGE_RETRY });
// A delivery retries with backoff (1 s, 2 s, 4 s … at most 5 min apart, 8 attempts for errors that are not
// outages of Docket's own database); a refusal that a retry cannot change is final at once. Each delivery is its own activity, so one failing endpoint
// never holds up another recipient or another reminder.
const DELIVERY_RETRY: RetryPolicy = {
  initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes',
  nonRetryableErrorTypes: FINAL_DELIVERY_ERRORS,
};
const deliveries = proxyActivities<ReminderActivities>({ startToCloseTimeout: '30 seconds', retry: DELIVERY_RETRY });
// Expanding a recurrence is pure and quick: a local activity keeps it out of the workflow bundle.
const local = proxyLocalActivities<ReminderActivities>({ startToCloseTimeout: '10 seconds' });
// Postgres writes (the read model, in-app deliveries) run as local activities: inside the workflow task
// that decided them, so creating or firing a reminder costs the Temporal server one workflow task rather
// than a workflow task, an activity task and another workflow task per write. Email and webhook
// deliveries stay activity tasks: they wait on other systems, up to 30 s an attempt.
const localPersist = proxyLocalActivities<ReminderActivities>({ startToCloseTimeout: '1 minute', retry: OUTAGE_RETRY });
const localDeliveries = proxyLocalActivities<ReminderActivities>({ startToCloseTimeout: '30 seconds', retry: DELIVERY_RETRY });
/** Deliveries started per run before continue-as-new, so history stays bounded. */
const DELIVERIES_PER_RUN = 500;

const refuse = (type: ReminderRefusal, message: string) => ApplicationFailure.nonRetryable(message, type);
const nowIso = () => new Date().toISOString();
const closed = (s: ReminderState) => s.status === 'completed' || s.status === 'cancelled';

export async function reminderWorkflow(input: ReminderInput): Promise<ReminderState> {
  const state: ReminderState = input.resume?.state ?? {
    status: 'active', schedule: input.schedule, occurrence: null, lastOccurrence: null, handled: [], snoozedUntil: null,
    notBefore: input.createdAt, nextTriggerAt: null, occurrenceCount: 0, acknowledgedAt: null, version: 0,
  };
  const has = (patch: string) => hasPatch(input.patches, patch);
  // The API wrote the row with version -1: the first round persists, unless it arrives at what the API wrote (alreadyWritten).
  let settled = input.resume ? state.version : -1;
  // Bumped by reschedule: an occurrence computed for the old schedule is dropped.
  let epoch = 0;
  let started = 0;
  const inflight = new Set<Promise<void>>();
  const targets = deliveryTargets(input.channels, input.recipients);

  // Commands accepted but not yet persisted: their audit events are written with the state they produced.
  const audits: ReminderAudit[] = [];
  // Triggers fired and not yet persisted: their reminder.fired events are written with the state that records them.
  const fired: { occurrence: string; trigger: string }[] = [];
  // The last firing's in-app deliveries, when they go with the final state write (FINAL_WRITE_DELIVERS_PATCH).
  const withFinalWrite: DeliveryRef[] = [];

  const change = () => { state.version++; };
  /** Applies a command's change and keeps its audit event for the next write. */
  const command = (action: AuditAction, cmd: ReminderCommand | undefined, apply: () => void, detail?: unknown) => {
    const before = { status: state.status, schedule: state.schedule, occurrence: state.occurrence, snoozedUntil: state.snoozedUntil, acknowledgedAt: state.acknowledgedAt, nextTriggerAt: state.nextTriggerAt };
    apply();
    if (cmd?.by) audits.push({ action, by: cmd.by, version: state.version, before, ...(detail === undefined ? {} : { command: detail }) });
  };
  /** Whether the first round's state is what the API wrote with the row (input.written), with nothing to record. */
  const alreadyWritten = () => !input.resume && input.written !== undefined && state.status === 'active' && !audits.length && !fired.length
    && state.occurrence === input.written.occurrence && state.nextTriggerAt === input.written.nextTriggerAt;
  const settle = async () => { const mine = state.version; await condition(() => settled >= mine); return state; };
  const assertOpen = () => { if (closed(state)) throw refuse('REMINDER_CLOSED', `The reminder is ${state.status}`); };
  const assertFuture = (iso: string, what: string) => { if (Date.parse(iso) <= Date.now()) throw refuse('TIME_IN_PAST', `${what} ${iso} is in the past`); };

  /**
   * Writes the state; with `deliverInApp`, delivers those first in the same local activity. What that cannot deliver
   * at once is answered back, and then nothing was written: the caller sends those the general way and writes again.
   */
  async function persist(deliverInApp: DeliveryRef[] = []): Promise<DeliveryRef[]> {
    const writing = state.version;
    const auditing = audits.length;
    const firing = fired.length;
    const undelivered = await (has(LOCAL_WRITES_PATCH) ? localPersist : acts).persistReminder({
      tenantId: input.tenantId, reminderId: input.reminderId, state, ...(auditing ? { audits: audits.slice(0, auditing) } : {}),
      ...(firing ? { fired: fired.slice(0, firing) } : {}), ...(deliverInApp.length ? { deliverInApp } : {}),
    });
    // Histories from before FINAL_WRITE_DELIVERS_PATCH recorded no answer.
    if (undelivered?.length) return undelivered;
    audits.splice(0, auditing);
    fired.splice(0, firing);
    settled = Math.max(settled, writing);
    return [];
  }

  function closeOccurrence(): void {
    state.lastOccurrence = state.occurrence;
    state.occurrence = null;
    state.handled = [];
    state.snoozedUntil = null;
    state.occurrenceCount++;
    change();
  }

  /** Makes sure an active reminder has a current occurrence with a trigger left, or completes it. */
  async function advance(): Promise<void> {
    while (state.status === 'active') {
      if (!state.occurrence) {
        const mine = epoch;
        let next: string | null;
        if (state.schedule.dueAt !== undefined) {
          next = state.lastOccurrence ? null : state.schedule.dueAt;
        } else {
          // Occurrences whose last trigger is before notBefore cannot fire: skip them in one step.
          const floor = Date.parse(state.notBefore) - occurrenceSpan(input.plan) - 1;
          const after = new Date(Math.max(state.lastOccurrence ? Date.parse(state.lastOccurrence) : -Infinity, floor)).toISOString();
          next = await local.nextOccurrence({ recurrence: state.schedule.recurrence, after });
          if (mine !== epoch || state.status !== 'active') continue; // rescheduled or paused meanwhile
        }
        if (!next) {
          state.status = 'completed';
          change();
          return;
        }
        // handled and snoozedUntil were reset when the last occurrence closed; a snooze that landed while
        // the next occurrence was being computed applies to it.
        state.occurrence = next;
        change();
      }
      if (nextTrigger(state, input.plan)) return;
      closeOccurrence();
    }
  }

  function deliver(ref: DeliveryRef): void {
    started++;
    const p = (ref.channel === 'in_app' && has(LOCAL_WRITES_PATCH) ? localDeliveries : deliveries).deliverReminder(ref)
      .catch((err) => acts.recordDeliveryFailure({ ...ref, error: ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message }))
      .then(() => { inflight.delete(p); }, () => { inflight.delete(p); });
    inflight.add(p);
  }

  function fire(t: Trigger): void {
    const occurrence = state.occurrence!;
    state.handled.push(t.key);
    if (t.key.startsWith('snooze:')) state.snoozedUntil = null;
    change();
    fired.push({ occurrence, trigger: t.key });
    const refs = targets.map((target): DeliveryRef => ({ tenantId: input.tenantId, reminderId: input.reminderId, occurrence, trigger: t.key, ...target }));
    // A one-off reminder's last trigger completes it: when it only delivers in-app, the deliveries can go with the
    // final state write (after the loop). With email or webhooks the in-app ones go at once, not after those.
    const last = state.schedule.dueAt !== undefined && !nextTrigger(state, input.plan);
    if (last && refs.every((r) => r.channel === 'in_app') && has(FINAL_WRITE_DELIVERS_PATCH)) withFinalWrite.push(...refs);
    else refs.forEach(deliver);
  }

  setHandler(reminderStateQuery, () => state);

  setHandler(rescheduleUpdate, async (cmd) => {
    command('reminders.reminder.rescheduled', cmd, () => {
      state.schedule = cmd.schedule;
      state.occurrence = null;
      state.lastOccurrence = null;
      state.handled = [];
      state.snoozedUntil = null;
      state.notBefore = nowIso();
      epoch++;
      change();
    }, cmd.schedule);
    return settle();
  }, {
    validator: (cmd) => {
      assertOpen();
      if (cmd.schedule.dueAt !== undefined) assertFuture(cmd.schedule.dueAt, 'dueAt');
    },
  });

  setHandler(snoozeUpdate, async (cmd) => {
    command('reminders.reminder.snoozed', cmd, () => {
      state.handled.push(...snoozedTriggers(state, input.plan, cmd.until));
      state.snoozedUntil = cmd.until;
      change();
    }, { until: cmd.until });
    return settle();
  }, {
    validator: (cmd) => {
      assertOpen();
      if (state.status === 'paused') throw refuse('REMINDER_PAUSED', 'Resume the reminder before snoozing it');
      assertFuture(cmd.until, 'until');
    },
  });

  // Commands without arguments may arrive with none at all (cmd undefined): an API from before sent none.
  setHandler(acknowledgeUpdate, async (cmd: ReminderCommand | undefined) => {
    command('reminders.reminder.acknowledged', cmd, () => {
      state.acknowledgedAt = nowIso();
      if (state.occurrence) closeOccurrence();
      else change();
    });
    return settle();
  }, { validator: (_cmd: ReminderCommand | undefined) => assertOpen() });

  setHandler(pauseUpdate, async (cmd: ReminderCommand | undefined) => {
    command('reminders.reminder.paused', cmd, () => {
      state.status = 'paused';
      change();
    });
    return settle();
  }, {
    validator: (_cmd: ReminderCommand | undefined) => {
      assertOpen();
      if (state.status === 'paused') throw refuse('REMINDER_PAUSED', 'The reminder is paused already');
    },
  });

  setHandler(resumeUpdate, async (cmd: ReminderCommand | undefined) => {
    // Triggers missed while paused are skipped, not sent late in a burst.
    command('reminders.reminder.resumed', cmd, () => {
      state.status = 'active';
      state.notBefore = nowIso();
      change();
    });
    return settle();
  }, {
    validator: (_cmd: ReminderCommand | undefined) => {
      assertOpen();
      if (state.status !== 'paused') throw refuse('REMINDER_NOT_PAUSED', 'The reminder is not paused');
    },
  });

  setHandler(cancelReminderUpdate, async (cmd: ReminderCommand | undefined) => {
    command('reminders.reminder.cancelled', cmd, () => {
      state.status = 'cancelled';
      change();
    });
    return settle();
  }, { validator: (_cmd: ReminderCommand | undefined) => assertOpen() });

  try {
    while (!closed(state)) {
      // A last firing waiting for the final write is not carried into a new run: the reminder completes in this one.
      if ((started >= (input.deliveriesPerRun ?? DELIVERIES_PER_RUN) || workflowInfo().continueAsNewSuggested)
        && !(withFinalWrite.length && has(CONTINUE_AFTER_WRITES_PATCH))) {
        await Promise.all(inflight);
        if (has(CONTINUE_AFTER_WRITES_PATCH)) {
          // A handler answers once its change is written: with a change unwritten (a command accepted while the
          // deliveries finished), this round applies and writes it first (its next trigger, or its end), and the
          // run continues as new at the next. Waiting for the handlers first would wait for ever.
          if (state.version === settled) await condition(() => allHandlersFinished() || state.version !== settled);
          if (state.version === settled) await continueAsNew<typeof reminderWorkflow>({ ...input, resume: { state } });
        } else {
          await condition(allHandlersFinished);
          if (state.version !== settled) await persist();
          await continueAsNew<typeof reminderWorkflow>({ ...input, resume: { state } });
        }
      }
      await advance();
      if (closed(state)) break;
      // A command kept the reminder open after its last trigger fired after all: those deliveries go now.
      withFinalWrite.splice(0).forEach(deliver);
      const trigger = state.status === 'active' ? nextTrigger(state, input.plan) : null;
      const nextAt = trigger ? new Date(trigger.at).toISOString() : null;
      if (state.nextTriggerAt !== nextAt) {
        state.nextTriggerAt = nextAt;
        change();
      }
      if (state.version !== settled && settled === -1 && alreadyWritten()) {
        // The row already says this (and the workflow was started with status active): the first workflow task
        // sets its timer without a local activity, a marker and a search-attribute upsert — a reminder's cost on
        // the worker and the server, again in every replay of its history.
        settled = state.version;
      }
      if (state.version !== settled) {
        setWorkflowStatus(state.status, input.patches);
        await persist();
        continue; // an Update may have landed during the write
      }
      const changed = trigger
        ? await condition(() => state.version !== settled, Math.max(1, trigger.at - Date.now()))
        : await condition(() => state.version !== settled).then(() => true);
      if (!changed && trigger) fire(trigger);
    }

    state.nextTriggerAt = null;
    change();
    // Deliveries already started finish (a cancel does not take back a reminder being sent).
    await Promise.all(inflight);
    // The last firing's in-app deliveries go with the final write; what it could not deliver at once goes the general
    // way (which finds out why: not visible yet, recipient gone, sent by an earlier attempt), and the state after it.
    if (withFinalWrite.length) (await persist(withFinalWrite.splice(0))).forEach(deliver);
    await Promise.all(inflight);
    if (state.version !== settled) await persist();
    setWorkflowStatus(state.status, input.patches);
    await condition(allHandlersFinished);
    return state;
  } catch (err) {
    // Cancelled from Temporal itself (the UI, the CLI; Docket's API cancels by Update): the reminder's row says so too,
    // audited as the system, so it is not left `active` with a next trigger that never comes.
    return writeEndIfCancelled(err, input.patches, async () => {
      if (!closed(state)) command('reminders.reminder.cancelled', { by: SYSTEM }, () => { state.status = 'cancelled'; change(); });
      state.nextTriggerAt = null;
      change();
      // The last firing's in-app deliveries go with this write; what it cannot deliver at once is not sent.
      await persist(withFinalWrite.splice(0));
      if (state.version !== settled) await persist();
      setWorkflowStatus(state.status, input.patches);
    });
  }
}
