// Reminder commands: create one (its workflow runs its timers), change it by Update (refused synchronously,
// nothing written), preview its next triggers, and mark the caller's in-app notifications read.
import { randomUUID } from 'node:crypto';
import { UpdateDefinition } from '@temporalio/common';
import { v7 as uuidv7 } from 'uuid';
import { Notification, Reminder } from '../../db/models/reminders';
import { WebhookEndpoint } from '../../db/models/webhooks';
import { createWithAudit, destroyWithAudit, recordAudit, RowOf, WriteCheck } from '../../lib/audit';
import { ApiError } from '../../lib/problems';
import { defaultStart, Recurrence, RECURRENCE_LIMITS, RecurrenceError } from '../../lib/recurrence';
import { sealSecret } from '../../lib/secrets';
import { StartBusinessWorkflow, startBusinessWorkflow, startIntent, startOrUndo } from '../../lib/temporal';
import { findInTenant } from '../../lib/tenancy';
import { executeCommand } from '../../lib/updates';
import { TaskLimitError } from '../../lib/work-pool';
import type { reminderWorkflow } from '../../workflows/reminders';
import {
  acknowledgeUpdate, cancelReminderUpdate, pauseUpdate, REMINDER_PATCHES, REMINDER_REFUSALS, ReminderCommand, ReminderPlan, ReminderSchedule, ReminderState, REMINDERS_DOMAIN,
  REMINDERS_TASK_QUEUE, rescheduleUpdate, resumeUpdate, snoozeUpdate,
} from '../../workflows/reminders.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { auditBy, Caller, CommandDeps, commandAuthor } from '../command';
import { checkEndpointUrl, wakeRelay } from '../webhooks/commands';
import type { Schemas } from '../schemas';
import { workPool } from '../work-pool';
import { firstTrigger, freshState, PreviewItem, previewTriggers } from './preview';
import { presentReminder } from './presenters';

type ScheduleBody = { dueAt?: string; recurrence?: Schemas['ReminderRecurrence'] };

/**
 * Runs recurrence work on the work pool (off the request thread, within a time budget): a malformed rule
 * or one without an occurrence is 422 INVALID_RECURRENCE, one that costs more than the budget 422
 * RECURRENCE_TOO_EXPENSIVE.
 */
async function expandOffThread<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof RecurrenceError) throw new ApiError(422, 'INVALID_RECURRENCE', err.message);
    if (err instanceof TaskLimitError) {
      throw new ApiError(422, 'RECURRENCE_TOO_EXPENSIVE', `Expanding the rule ${err.message}; use a rule whose occurrences are found with less searching`);
    }
    throw err;
  }
}

/**
 * Exactly one of dueAt and recurrence; a due time in the future; a rule that parses and still has an
 * occurrence. Answers the schedule and its first trigger (a reminder whose every trigger is past is refused).
 */
async function planSchedule(body: ScheduleBody, plan: ReminderPlan, now: Date): Promise<{ schedule: ReminderSchedule; first: PreviewItem }> {
  if ((body.dueAt === undefined) === (body.recurrence === undefined)) throw new ApiError(422, 'INVALID_REMINDER', 'Give exactly one of dueAt and recurrence');
  let schedule: ReminderSchedule;
  let first: PreviewItem | null;
  if (body.dueAt !== undefined) {
    if (Date.parse(body.dueAt) <= now.getTime()) throw new ApiError(422, 'TIME_IN_PAST', `dueAt ${body.dueAt} is in the past`);
    schedule = { dueAt: new Date(body.dueAt).toISOString() };
    first = firstTrigger(schedule, plan, now); // no expansion: cheap
  } else {
    // Without a start, the rule starts at the current minute: RRULE takes missing seconds from the start,
    // and a weekly 09:00 must fire at 09:00:00, not at the second the reminder was created.
    const recurrence: Recurrence = { rrule: body.recurrence!.rrule, timezone: body.recurrence!.timezone, start: body.recurrence!.start ? new Date(body.recurrence!.start).toISOString() : defaultStart(now) };
    schedule = { recurrence };
    first = await expandOffThread(() => workPool().run('firstTrigger', [schedule, plan, now], RECURRENCE_LIMITS.budgetMs));
  }
  if (!first) throw new ApiError(422, 'TIME_IN_PAST', 'Every trigger of this reminder (due time minus each offset) is already in the past');
  return { schedule, first };
}

/**
 * The webhook_endpoints rows of a reminder's webhook recipients: subscribed to reminder.fired, matched by the relay
 * with this reminder's events only, the secret sealed as given (any string: it signs as raw key bytes, see
 * lib/notify/standard-webhooks.ts activeSecrets). Not listed or managed through /v1/webhook-endpoints.
 */
function reminderEndpointRows(deps: CommandDeps, tenantId: string, reminderId: string, webhooks: { url: string; secret: string }[], now: Date): RowOf[] {
  return webhooks.map((w, i) => ({
    model: WebhookEndpoint as unknown as RowOf['model'],
    values: {
      id: uuidv7(), tenantId, url: w.url, description: null, eventTypes: ['reminder.fired'], enabled: true, disabledReason: null,
      secret: sealSecret(w.secret, deps.config.secretsKey), previousSecret: null, previousSecretExpiresAt: null, reminderId, recipientIndex: i, updatedAt: now,
    },
  }));
}

/**
 * A reminder's webhook URLs by the rule of the tenant's own endpoints (checkEndpointUrl: https, and a public destination,
 * unless OUTBOUND_ALLOW_PRIVATE_NETWORKS=true), before anything is written: every refused URL in one 422
 * URL_NOT_ALLOWED, each at its path under `at` (`/requestBody/recipients/webhooks`, `/requestBody/webhooks`). Each
 * delivery still checks the address it connects to (lib/notify/outbound.ts).
 */
async function checkWebhookUrls(deps: CommandDeps, webhooks: { url: string }[], at: string): Promise<void> {
  const outcomes = await Promise.all(webhooks.map((w, i) => checkEndpointUrl(deps, w.url, `${at}/${i}/url`).then(
    () => null,
    (err: unknown) => { if (err instanceof ApiError && err.code === 'URL_NOT_ALLOWED') return err; throw err; },
  )));
  const refused = outcomes.filter((e): e is ApiError => e !== null);
  if (refused.length === 1) throw refused[0];
  if (refused.length) {
    throw new ApiError(422, 'URL_NOT_ALLOWED', `${refused.length} webhook URLs are not allowed: ${refused.map((e) => e.detail).join('; ')}`, { errors: refused.flatMap((e) => e.extra.errors ?? []) });
  }
}

const planOf = (r: Reminder): ReminderPlan => ({ offsets: r.offsets, repeat: r.repeat ?? undefined });

export async function createReminder(deps: CommandDeps, c: Caller, input: Schemas['ReminderInput']): Promise<Reminder> {
  const audit = auditBy(c);
  const now = new Date();
  const plan: ReminderPlan = { offsets: [...(input.offsets ?? [0])].sort((a, b) => b - a), repeat: input.repeat };
  const { schedule, first } = await planSchedule(input, plan, now);
  const users = [...new Set(input.recipients.users ?? [])];
  const emails = [...new Set((input.recipients.emails ?? []).map((e) => e.toLowerCase()))];
  const webhooks = input.recipients.webhooks ?? [];
  const channels = input.channels;
  if (channels.includes('email') && !users.length && !emails.length) throw new ApiError(422, 'INVALID_REMINDER', 'The email channel needs recipients.users or recipients.emails');
  if (channels.includes('in_app') && !users.length) throw new ApiError(422, 'INVALID_REMINDER', 'The in_app channel needs recipients.users');
  if (channels.includes('webhook') && !webhooks.length) throw new ApiError(422, 'INVALID_REMINDER', 'The webhook channel needs recipients.webhooks');
  // Every URL given, whatever the channels: the row lists them all.
  await checkWebhookUrls(deps, webhooks, '/requestBody/recipients/webhooks');
  // Checked by the statement that writes the reminder: no round trip of its own.
  const usersKnown: WriteCheck | undefined = users.length ? {
    sql: (bind) => {
      bind.push(audit.tenantId, users);
      return `(SELECT count(*) FROM users WHERE tenant_id = $${bind.length - 1} AND id = ANY($${bind.length}::uuid[]) AND active) = ${users.length}`;
    },
    refused: () => new ApiError(422, 'UNKNOWN_USER', 'recipients.users names a user that is not an active user of this tenant'),
  } : undefined;
  const id = randomUUID();
  const workflowId = businessWorkflowId({ domain: REMINDERS_DOMAIN, tenantId: audit.tenantId, entityId: id });
  const state = freshState(schedule, now);
  // The row, its audit event and its start intent in one statement (one round trip, and no window in which
  // the workflow runs but its creation was never audited); the workflow starts after, with no connection held
  // across the Temporal call (which is what bounds the create rate).
  const created = { tenantId: audit.tenantId, action: 'reminders.reminder.created', entityType: 'reminder', entityId: id } as const;
  const start: StartBusinessWorkflow<typeof reminderWorkflow> = {
    workflowType: 'reminderWorkflow', taskQueue: REMINDERS_TASK_QUEUE, domain: REMINDERS_DOMAIN, tenantId: audit.tenantId,
    entityType: 'reminder', entityId: id, initialStatus: 'active',
    args: [{ tenantId: audit.tenantId, reminderId: id, channels, recipients: { users, emails, webhooks: webhooks.length }, schedule, plan, createdAt: now.toISOString(),
      written: { occurrence: first.occurrence, nextTriggerAt: first.at }, patches: REMINDER_PATCHES }],
  };
  // Each webhook recipient is a reminder endpoint, written in the same statement as the reminder: the webhook relay
  // delivers the reminder's reminder.fired events to it (signed, retried, logged) — see reminderEndpointRows.
  const endpoints = channels.includes('webhook') ? reminderEndpointRows(deps, audit.tenantId, id, webhooks, now) : [];
  const reminder = await createWithAudit(Reminder, {
    id, tenantId: audit.tenantId, subject: input.subject, message: input.message ?? '', objectType: input.object?.type ?? null, objectId: input.object?.id ?? null,
    // The row lists the webhooks' URLs (what GET shows); their secrets live sealed on the endpoints only.
    channels, recipients: { users, emails, webhooks: webhooks.map((w) => ({ url: w.url })) }, recipientUsers: users, recipientEmails: emails,
    dueAt: schedule.dueAt ? new Date(schedule.dueAt) : null, recurrence: schedule.recurrence ?? null, offsets: plan.offsets, repeat: plan.repeat ?? null,
    status: 'active', nextTriggerAt: new Date(first.at), currentOccurrence: new Date(first.occurrence),
    snoozedUntil: null, acknowledgedAt: null, occurrenceCount: 0, state, stateVersion: -1, workflowId, createdBy: audit.actor.id,
  }, (row) => ({ ...audit, ...created, after: presentReminder(row), workflowId }), [startIntent(start), ...endpoints], usersKnown);
  await startOrUndo(
    // The relay first: should it fail, nothing runs for a reminder that is then taken back.
    async () => {
      if (endpoints.length) await wakeRelay(deps, audit.tenantId);
      await startBusinessWorkflow(deps.temporal.client, start);
    },
    // If Temporal refuses, both go again: the reminder was never created.
    () => destroyWithAudit(reminder, created),
  );
  deps.metrics.workflowStarts.inc({ workflow_type: 'reminderWorkflow' });
  return reminder;
}

const REMINDER_COMMAND_REFUSALS = { statuses: REMINDER_REFUSALS, closed: () => new ApiError(409, 'REMINDER_CLOSED', 'The reminder has ended') };

/**
 * Sends an Update to the reminder's workflow, naming who sent it: the workflow's write of the change also
 * writes its audit event (one transaction). A refusal becomes its 4xx with nothing written.
 */
async function commandReminder<C extends ReminderCommand>(
  deps: CommandDeps, c: Caller, reminder: Reminder, update: UpdateDefinition<ReminderState, [C]>, command: Omit<C, 'by'>,
): Promise<Reminder> {
  if (reminder.status === 'completed' || reminder.status === 'cancelled') throw new ApiError(409, 'REMINDER_CLOSED', `The reminder is ${reminder.status}`);
  const by = commandAuthor(c);
  await executeCommand(deps.temporal.client.workflow.getHandle(reminder.workflowId), update, [{ ...command, by } as C], REMINDER_COMMAND_REFUSALS);
  return reminder.reload();
}

const findReminder = (c: Caller, id: string) => findInTenant(Reminder, c.tenantId, id, 'Reminder');

/** A new due time or recurrence; what already fired stays fired. */
export async function rescheduleReminder(deps: CommandDeps, c: Caller, id: string, input: ScheduleBody): Promise<Reminder> {
  const reminder = await findReminder(c, id);
  const { schedule } = await planSchedule(input, planOf(reminder), new Date());
  return commandReminder(deps, c, reminder, rescheduleUpdate, { schedule });
}

export async function snoozeReminder(deps: CommandDeps, c: Caller, id: string, input: Schemas['ReminderSnooze']): Promise<Reminder> {
  if ((input.until === undefined) === (input.minutes === undefined)) throw new ApiError(422, 'INVALID_REMINDER', 'Give exactly one of until and minutes');
  const until = new Date(input.until ?? Date.now() + input.minutes! * 60_000).toISOString();
  if (Date.parse(until) <= Date.now()) throw new ApiError(422, 'TIME_IN_PAST', `until ${until} is in the past`);
  return commandReminder(deps, c, await findReminder(c, id), snoozeUpdate, { until });
}

export async function acknowledgeReminder(deps: CommandDeps, c: Caller, id: string): Promise<Reminder> {
  return commandReminder(deps, c, await findReminder(c, id), acknowledgeUpdate, {});
}

export async function pauseReminder(deps: CommandDeps, c: Caller, id: string): Promise<Reminder> {
  return commandReminder(deps, c, await findReminder(c, id), pauseUpdate, {});
}

export async function resumeReminder(deps: CommandDeps, c: Caller, id: string): Promise<Reminder> {
  return commandReminder(deps, c, await findReminder(c, id), resumeUpdate, {});
}

export async function cancelReminder(deps: CommandDeps, c: Caller, id: string): Promise<Reminder> {
  return commandReminder(deps, c, await findReminder(c, id), cancelReminderUpdate, {});
}

/**
 * The reminder's webhooks become `webhooks`: its endpoints replaced (the old ones' deliveries go with them) and the
 * row's URLs with them, in one transaction, audited. Not a workflow command: the workflow only knows that the
 * reminder delivers by webhook, and each firing's event reaches whatever endpoints the reminder has then.
 */
export async function replaceReminderWebhooks(deps: CommandDeps, c: Caller, id: string, webhooks: Schemas['ReminderWebhookInput'][]): Promise<Reminder> {
  // Before the transaction: the check may resolve a name, which no row lock should wait for.
  await checkWebhookUrls(deps, webhooks, '/requestBody/webhooks');
  const reminder = await deps.sequelize.transaction(async (transaction) => {
    const r = await findInTenant(Reminder, c.tenantId, id, 'Reminder', { transaction, lock: transaction.LOCK.UPDATE });
    if (r.status === 'completed' || r.status === 'cancelled') throw new ApiError(409, 'REMINDER_CLOSED', `The reminder is ${r.status}`);
    if (!r.channels.includes('webhook')) throw new ApiError(422, 'INVALID_REMINDER', 'The reminder does not deliver by webhook: its channels have no `webhook`');
    const before = presentReminder(r);
    await WebhookEndpoint.destroy({ where: { tenantId: c.tenantId, reminderId: r.id }, transaction });
    await WebhookEndpoint.bulkCreate(reminderEndpointRows(deps, c.tenantId, r.id, webhooks, new Date()).map((e) => e.values as never), { transaction });
    await r.update({ recipients: { ...r.recipients, webhooks: webhooks.map((w) => ({ url: w.url })) } }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'reminders.reminder.webhooks_replaced', entityType: 'reminder', entityId: r.id, before, after: presentReminder(r) }, transaction);
    return r;
  });
  await wakeRelay(deps, c.tenantId);
  return reminder;
}

/** Up to `count` triggers still to come (a recurrence expanded on the work pool, within its budget). */
export async function previewReminder(reminder: Reminder, count: number): Promise<PreviewItem[]> {
  const args: Parameters<typeof previewTriggers> = [{ ...reminder.state, status: reminder.status }, planOf(reminder), count];
  return reminder.state.schedule.recurrence ? expandOffThread(() => workPool().run('previewTriggers', args, RECURRENCE_LIMITS.budgetMs)) : previewTriggers(...args);
}

/** One of the caller's own notifications, marked read (once). */
export async function markNotificationRead(c: Caller, id: string): Promise<Notification> {
  const n = await findInTenant(Notification, c.tenantId, { id, userId: c.userId }, `Notification ${id}`);
  if (!n.read) await n.update({ read: true, readAt: new Date() });
  return n;
}

/** Every unread notification of the caller's, marked read: answers how many. */
export async function markAllNotificationsRead(c: Caller): Promise<number> {
  const [marked] = await Notification.update({ read: true, readAt: new Date() }, { where: { tenantId: c.tenantId, userId: c.userId, read: false } });
  return marked;
}
