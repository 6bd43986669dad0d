// The reminder workflow alone, with fake activities, on a fresh time-skipping server per test: one-off,
// offsets, weekly recurrence across a DST change, reschedule, snooze, acknowledge, pause, cancel,
// a failing webhook retried with backoff, and continue-as-new — weeks pass in milliseconds.
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowUpdateStage } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { ReminderActivities } from '../../activities/reminders';
import { RecipientGoneError } from '../../activities/reminders';
import { nextOccurrence } from '../../lib/recurrence';
import { reminderWorkflow } from '../../workflows/reminders';
import {
  acknowledgeUpdate, cancelReminderUpdate, DeliveryRef, pauseUpdate, REMINDER_PATCHES, ReminderInput, ReminderState, rescheduleUpdate, resumeUpdate, snoozeUpdate,
} from '../../workflows/reminders.api';
import { timeSkippingEnv } from '../helpers/time-skipping';
import { refusal } from '../helpers/updates';

jest.setTimeout(90_000);
const MIN = 60_000;
const HOUR = 60 * MIN;

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(() => env?.teardown());

interface Sent extends DeliveryRef { at: string; attempt: number; viaWrite?: boolean }

/** Fake activities: deliveries are recorded with the (skipped) server time they ran at. */
function fakeActivities(opts: { webhook?: (attempt: number) => void; undeliverable?: string[] } = {}) {
  const log = { sent: [] as Sent[], attempts: [] as Sent[], failed: [] as (DeliveryRef & { error: string })[], persisted: [] as ReminderState[] };
  const attempted = (ref: DeliveryRef) => {
    const info = Context.current().info;
    const entry = { ...ref, at: new Date(info.currentAttemptScheduledTimestampMs).toISOString(), attempt: info.attempt };
    log.attempts.push(entry);
    return entry;
  };
  const activities: ReminderActivities = {
    async nextOccurrence(i) { return nextOccurrence(i.recurrence, new Date(i.after))?.toISOString() ?? null; },
    async persistReminder(i) {
      // A last firing's in-app deliveries go with the final write (opts.undeliverable: answered back, nothing written).
      const back = (i.deliverInApp ?? []).filter((ref) => opts.undeliverable?.includes(ref.recipient));
      for (const ref of (i.deliverInApp ?? []).filter((r) => !back.includes(r))) log.sent.push({ ...attempted(ref), viaWrite: true });
      if (back.length) return back;
      log.persisted.push(JSON.parse(JSON.stringify(i.state)));
      return [];
    },
    async deliverReminder(ref) {
      const entry = attempted(ref);
      if (ref.channel === 'webhook') opts.webhook?.(entry.attempt);
      log.sent.push(entry);
      return 'sent';
    },
    async recordDeliveryFailure(i) { log.failed.push(i); },
  };
  return { activities, log };
}

type Handle = Awaited<ReturnType<typeof env.client.workflow.start<typeof reminderWorkflow>>>;

async function withReminder(over: Partial<ReminderInput> | ((now: number) => Partial<ReminderInput>), body: (h: Handle, log: ReturnType<typeof fakeActivities>['log'], now: number) => Promise<void>, fakes = fakeActivities()) {
  const taskQueue = `wf-reminders-${randomUUID()}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! }, activities: fakes.activities });
  const now = await env.currentTimeMs();
  const input: ReminderInput = {
    tenantId: 't', reminderId: randomUUID(), channels: ['email'], recipients: { users: [], emails: ['a@example.com'], webhooks: 0 },
    schedule: { dueAt: new Date(now + HOUR).toISOString() }, plan: { offsets: [0] }, createdAt: new Date(now).toISOString(), ...(typeof over === 'function' ? over(now) : over),
  };
  await worker.runUntil(async () => {
    const handle = await env.client.workflow.start(reminderWorkflow, { taskQueue, workflowId: `reminders:t:${input.reminderId}`, args: [input] });
    try {
      await handle.query('state'); // the first workflow task has run: its timer exists before time is skipped
      await body(handle, fakes.log, now);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
    }
  });
}

const iso = (ms: number) => new Date(ms).toISOString();

it('one-off: delivers once to every channel and recipient at the due time, then completes', async () => {
  await withReminder({ channels: ['email', 'in_app'], recipients: { users: ['u1'], emails: ['a@example.com'], webhooks: 0 } }, async (h, log, now) => {
    const end = await h.result();
    expect(end.status).toBe('completed');
    expect(log.sent.map((s) => `${s.channel}:${s.recipient}`).sort()).toEqual(['email:email:a@example.com', 'email:user:u1', 'in_app:user:u1']);
    for (const s of log.sent) expect(Date.parse(s.at) - (now + HOUR)).toBeLessThan(2000);
    // With email beside it, the in-app delivery went at once, not after the emails with the final write.
    expect(log.sent.filter((s) => s.viaWrite)).toEqual([]);
    expect(log.persisted.at(-1)).toMatchObject({ status: 'completed', nextTriggerAt: null, occurrenceCount: 1 });
    // Only the two emails were activity tasks: the in-app delivery and every state write ran as local
    // activities inside the workflow tasks that decided them (fewer server round trips per reminder).
    const { events } = await h.fetchHistory();
    const tasks = events!.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name] : []));
    expect(tasks).toEqual(['deliverReminder', 'deliverReminder']);
    expect(events!.filter((e) => e.markerRecordedEventAttributes).length).toBeGreaterThanOrEqual(3);
  });
});

it('one-off in-app only: the last firing delivers with the final state write, one local activity; what it cannot deliver goes the general way, then the write', async () => {
  const inApp = { channels: ['in_app' as const], recipients: { users: ['u1', 'u2'], emails: [], webhooks: 0 } };
  await withReminder(inApp, async (h, log, now) => {
    expect((await h.result()).status).toBe('completed');
    expect(log.sent.map((s) => [s.recipient, s.viaWrite])).toEqual([['user:u1', true], ['user:u2', true]]);
    for (const s of log.sent) expect(Date.parse(s.at) - (now + HOUR)).toBeLessThan(2000);
    expect(log.persisted.at(-1)).toMatchObject({ status: 'completed', nextTriggerAt: null, occurrenceCount: 1 });
    // The first write, then the last firing's one: two local-activity markers, no activity task.
    const { events } = await h.fetchHistory();
    expect(events!.filter((e) => e.activityTaskScheduledEventAttributes)).toEqual([]);
    expect(events!.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toHaveLength(2);
  });
  const fakes = fakeActivities({ undeliverable: ['user:u2'] });
  await withReminder(inApp, async (h, log) => {
    expect((await h.result()).status).toBe('completed');
    // u1 went with the write's attempt, which then wrote nothing; u2 went by deliverReminder; the state after both.
    expect(log.sent.map((s) => [s.recipient, s.viaWrite ?? false])).toEqual([['user:u1', true], ['user:u2', false]]);
    expect(log.persisted.map((p) => p.status)).toEqual(['active', 'completed']);
  }, fakes);
});

it('started as the API starts it (input.written, input.patches): the first workflow task writes nothing the row already says; the firing writes the rest; no patch markers', async () => {
  const inApp = { channels: ['in_app' as const], recipients: { users: ['u1'], emails: [], webhooks: 0 }, patches: REMINDER_PATCHES };
  await withReminder((now) => ({ ...inApp, written: { occurrence: iso(now + HOUR), nextTriggerAt: iso(now + HOUR) } }), async (h, log, now) => {
    // The timer is set (withReminder waited for the first task) and nothing was written.
    expect(log.persisted).toEqual([]);
    expect((await h.query('state') as ReminderState)).toMatchObject({ occurrence: iso(now + HOUR), nextTriggerAt: iso(now + HOUR) });
    expect((await h.result()).status).toBe('completed');
    expect(log.sent.map((s) => [s.recipient, s.viaWrite])).toEqual([['user:u1', true]]);
    expect(log.persisted.map((p) => [p.status, p.occurrenceCount, p.nextTriggerAt])).toEqual([['completed', 1, null]]);
    // One marker in the whole history, the firing's write: no patch markers (its input names the patches its code
    // has), and one search-attribute upsert, the completion's Status (no TemporalChangeVersion for patches).
    const { events } = await h.fetchHistory();
    expect(events!.filter((e) => e.markerRecordedEventAttributes).map((e) => e.markerRecordedEventAttributes!.markerName)).toEqual(['core_local_activity']);
    const upserts = events!.map((e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields).filter(Boolean);
    expect(upserts.map((f) => Object.keys(f!))).toEqual([['Status']]);
  });
  // A row that says something else (here: another trigger time) is written over by the first round, as before.
  await withReminder((now) => ({ ...inApp, written: { occurrence: iso(now + HOUR), nextTriggerAt: iso(now + 2 * HOUR) } }), async (h, log, now) => {
    expect(log.persisted.map((p) => [p.status, p.nextTriggerAt])).toEqual([['active', iso(now + HOUR)]]);
    await h.result();
  });
});

it('offsets: reminds 1 day and 15 minutes before the due time, nextTriggerAt kept current', async () => {
  await withReminder({ plan: { offsets: [1440, 15] } }, async (h, log, now) => {
    const due = now + 3 * 24 * HOUR;
    await h.executeUpdate(rescheduleUpdate, { args: [{ schedule: { dueAt: iso(due) } }] });
    expect(log.persisted.at(-1)?.nextTriggerAt).toBe(iso(due - 24 * HOUR));
    await env.sleep(2 * 24 * HOUR + MIN);
    expect(log.sent.map((s) => s.trigger)).toEqual(['before:1440m']);
    expect((await h.query('state') as ReminderState).nextTriggerAt).toBe(iso(due - 15 * MIN));
    await h.result();
    expect(log.sent.map((s) => s.trigger)).toEqual(['before:1440m', 'before:15m']);
    expect(Date.parse(log.sent[1].at) - (due - 15 * MIN)).toBeLessThan(2000);
  });
});

it('recurrence: weekly Monday 09:00 Europe/Berlin stays 09:00 local across the March DST change (UTC moves by 1 h)', async () => {
  await withReminder({
    schedule: { recurrence: { rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0;COUNT=2', timezone: 'Europe/Berlin', start: '2027-03-22T00:00:00+01:00' } },
  }, async (h, log) => {
    const end = await h.result();
    expect(end.status).toBe('completed');
    expect(end.occurrenceCount).toBe(2);
    // 09:00 CET = 08:00Z before 28 March 2027; 09:00 CEST = 07:00Z after.
    expect(log.sent.map((s) => s.occurrence)).toEqual(['2027-03-22T08:00:00.000Z', '2027-03-29T07:00:00.000Z']);
    for (const s of log.sent) expect(Math.abs(Date.parse(s.at) - Date.parse(s.occurrence))).toBeLessThan(2000);
  });
});

it('reschedule takes effect at once: the old time passes silently, the new one delivers', async () => {
  await withReminder({}, async (h, log, now) => {
    expect(await refusal(h.executeUpdate(rescheduleUpdate, { args: [{ schedule: { dueAt: iso(now - HOUR) } }] }))).toBe('TIME_IN_PAST');
    const moved = await h.executeUpdate(rescheduleUpdate, { args: [{ schedule: { dueAt: iso(now + 5 * HOUR) } }] });
    expect(moved.nextTriggerAt).toBe(iso(now + 5 * HOUR));
    await env.sleep(2 * HOUR);
    expect(log.sent).toEqual([]);
    await h.result();
    expect(log.sent).toHaveLength(1);
    expect(Date.parse(log.sent[0].at) - (now + 5 * HOUR)).toBeLessThan(2000);
  });
});

it('snooze: the due trigger is skipped and the reminder comes back at the snooze time', async () => {
  await withReminder({}, async (h, log, now) => {
    expect(await refusal(h.executeUpdate(snoozeUpdate, { args: [{ until: iso(now - MIN) }] }))).toBe('TIME_IN_PAST');
    const snoozed = await h.executeUpdate(snoozeUpdate, { args: [{ until: iso(now + 3 * HOUR) }] });
    expect(snoozed.nextTriggerAt).toBe(iso(now + 3 * HOUR));
    await env.sleep(2 * HOUR);
    expect(log.sent).toEqual([]);
    const end = await h.result();
    expect(end.status).toBe('completed');
    expect(log.sent.map((s) => s.trigger)).toEqual([`snooze:${iso(now + 3 * HOUR)}`]);
  });
});

it('acknowledge stops the repeats of the current occurrence and advances to the next', async () => {
  await withReminder({
    schedule: { recurrence: { rrule: 'FREQ=DAILY;COUNT=2', timezone: 'UTC', start: '2030-01-01T09:00:00Z' } },
    plan: { offsets: [0], repeat: { everyMinutes: 10, times: 3 } },
  }, async (h, log, now) => {
    await env.sleep(Date.parse('2030-01-01T09:15:00Z') - now); // the occurrence and its first repeat
    expect(log.sent.map((s) => s.trigger)).toEqual(['before:0m', 'repeat:1']);
    const acked = await h.executeUpdate(acknowledgeUpdate, { args: [{}] });
    expect(acked.occurrence).toBe('2030-01-02T09:00:00.000Z');
    expect(acked.nextTriggerAt).toBe('2030-01-02T09:00:00.000Z');
    const end = await h.result(); // day 2 is not acknowledged: its three repeats go out
    expect(end.status).toBe('completed');
    expect(log.sent.map((s) => `${s.occurrence.slice(0, 10)} ${s.trigger}`)).toEqual([
      '2030-01-01 before:0m', '2030-01-01 repeat:1', '2030-01-02 before:0m', '2030-01-02 repeat:1', '2030-01-02 repeat:2', '2030-01-02 repeat:3',
    ]);
  });
});

it('pause holds every trigger; resume skips what was missed and goes on', async () => {
  await withReminder({ schedule: { recurrence: { rrule: 'FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0;COUNT=3', timezone: 'UTC', start: '2030-01-01T00:00:00Z' } } }, async (h, log, now) => {
    const paused = await h.executeUpdate(pauseUpdate, { args: [{}] });
    expect(paused).toMatchObject({ status: 'paused', nextTriggerAt: null });
    expect(await refusal(h.executeUpdate(pauseUpdate, { args: [{}] }))).toBe('REMINDER_PAUSED');
    expect(await refusal(h.executeUpdate(snoozeUpdate, { args: [{ until: iso(now + HOUR) }] }))).toBe('REMINDER_PAUSED');
    await env.sleep(Date.parse('2030-01-01T12:00:00Z') - now); // day 1 passes while paused
    expect(log.sent).toEqual([]);
    const resumed = await h.executeUpdate(resumeUpdate, { args: [{}] });
    expect(resumed.nextTriggerAt).toBe('2030-01-02T09:00:00.000Z');
    expect(await refusal(h.executeUpdate(resumeUpdate, { args: [{}] }))).toBe('REMINDER_NOT_PAUSED');
    await h.result();
    expect(log.sent.map((s) => s.occurrence)).toEqual(['2030-01-02T09:00:00.000Z', '2030-01-03T09:00:00.000Z']);
  });
});

it('cancel ends the reminder; every later command is refused as closed', async () => {
  await withReminder({}, async (h, log) => {
    const cancelled = await h.executeUpdate(cancelReminderUpdate, { args: [{}] });
    expect(cancelled.status).toBe('cancelled');
    expect((await h.result()).status).toBe('cancelled');
    expect(log.sent).toEqual([]);
    expect(log.persisted.at(-1)?.status).toBe('cancelled');
  });
});

it('a failing webhook is retried with backoff until it succeeds; the email goes out meanwhile', async () => {
  const fakes = fakeActivities({ webhook: (attempt) => { if (attempt < 3) throw new Error('HTTP 503'); } });
  await withReminder({ channels: ['email', 'webhook'], recipients: { users: [], emails: ['a@example.com'], webhooks: 1 } }, async (h, log) => {
    await h.result();
    const hook = log.attempts.filter((a) => a.channel === 'webhook');
    expect(hook.map((a) => a.attempt)).toEqual([1, 2, 3]);
    // The retries waited out their backoff (in skipped time) instead of hammering the endpoint.
    expect(Date.parse(hook[2].at) - Date.parse(hook[0].at)).toBeGreaterThanOrEqual(1000);
    expect(log.sent.map((s) => s.channel).sort()).toEqual(['email', 'webhook']);
    expect(log.failed).toEqual([]);
  }, fakes);
});

it('a webhook refused for good is recorded as failed at once, without blocking the other deliveries', async () => {
  const fakes = fakeActivities({ webhook: () => { throw new RecipientGoneError('webhook refused with HTTP 410'); } });
  await withReminder({ channels: ['webhook', 'email'], recipients: { users: [], emails: ['a@example.com'], webhooks: 1 } }, async (h, log) => {
    await h.result();
    expect(log.attempts.filter((a) => a.channel === 'webhook')).toHaveLength(1);
    expect(log.sent.map((s) => s.channel)).toEqual(['email']);
    expect(log.failed).toHaveLength(1);
    expect(log.failed[0]).toMatchObject({ channel: 'webhook', recipient: 'webhook:0' });
    expect(log.failed[0].error).toContain('410');
  }, fakes);
});

it('continues as new after its delivery budget, delivering every occurrence exactly once', async () => {
  await withReminder({
    schedule: { recurrence: { rrule: 'FREQ=DAILY;COUNT=5', timezone: 'UTC', start: '2030-01-01T09:00:00Z' } }, deliveriesPerRun: 2,
  }, async (h, log) => {
    const end = await h.result();
    expect(end).toMatchObject({ status: 'completed', occurrenceCount: 5 });
    expect(log.sent.map((s) => s.occurrence.slice(0, 10))).toEqual(['2030-01-01', '2030-01-02', '2030-01-03', '2030-01-04', '2030-01-05']);
    const first = await h.describe();
    expect(first.runId).not.toBe(h.firstExecutionRunId);
  });
});

it('a command accepted while the run waits to continue as new is written and answered; the reminder goes on in the new run', async () => {
  // The first occurrence's email is held in flight: the run has reached its delivery budget and waits for it before
  // continuing as new. An acknowledge lands then. Its handler answers once the change is written.
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  let deliveringFirst!: () => void;
  const firstDelivering = new Promise<void>((resolve) => { deliveringFirst = resolve; });
  const fakes = fakeActivities();
  const deliver = fakes.activities.deliverReminder;
  fakes.activities.deliverReminder = async (ref) => {
    if (ref.occurrence.startsWith('2030-01-01')) {
      deliveringFirst();
      await held;
    }
    return deliver(ref);
  };
  await withReminder({
    schedule: { recurrence: { rrule: 'FREQ=DAILY;COUNT=3', timezone: 'UTC', start: '2030-01-01T09:00:00Z' } }, deliveriesPerRun: 1, patches: REMINDER_PATCHES,
  }, async (h, log) => {
    const skipping = h.result(); // lets the server skip to the first occurrence
    await firstDelivering;
    const ack = await h.startUpdate(acknowledgeUpdate, { args: [{}], waitForStage: WorkflowUpdateStage.ACCEPTED });
    release();
    const answered = await Promise.race([ack.result(), new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), 20_000))]);
    expect(answered).toMatchObject({ status: 'active', occurrenceCount: 1 });
    expect((answered as ReminderState).acknowledgedAt).not.toBeNull();
    // Written before the run continued as new, and the reminder goes on: every occurrence delivered once.
    expect(log.persisted.some((s) => s.acknowledgedAt !== null && s.occurrenceCount === 1)).toBe(true);
    expect(await skipping).toMatchObject({ status: 'completed', occurrenceCount: 3 });
    expect(log.sent.map((s) => s.occurrence.slice(0, 10))).toEqual(['2030-01-01', '2030-01-02', '2030-01-03']);
    expect((await h.describe()).runId).not.toBe(h.firstExecutionRunId);
  }, fakes);
});

it('cancelled from Temporal itself (the UI, the CLI), the reminder writes its end, audited as the system, and the run ends cancelled', async () => {
  const fakes = fakeActivities();
  const audits: unknown[] = [];
  const persist = fakes.activities.persistReminder;
  fakes.activities.persistReminder = async (i) => {
    audits.push(...(i.audits ?? []));
    return persist(i);
  };
  await withReminder({ patches: REMINDER_PATCHES }, async (h, log) => {
    await h.cancel();
    const err = await h.result().then(() => null, (e: unknown) => e);
    expect((err as Error & { cause?: Error }).cause?.name).toBe('CancelledFailure');
    expect(log.persisted.at(-1)).toMatchObject({ status: 'cancelled', nextTriggerAt: null });
    expect(audits).toEqual([expect.objectContaining({ action: 'reminders.reminder.cancelled', by: { actor: { type: 'system', id: null }, requestId: null } })]);
    expect(log.sent).toEqual([]);
  }, fakes);
});
