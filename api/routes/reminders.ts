// Reminders: create (starts the reminder workflow), read, list, dispatch preview, delivery history,
// commands by Update (refused synchronously), and the caller's in-app notifications.
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Op, WhereOptions } from 'sequelize';
import { DeliveryAttempt, Notification, Reminder, User } from '../../db';
import { CommandAuthor, createWithAudit, destroyWithAudit } from '../../lib/audit';
import { defaultStart, Recurrence, RECURRENCE_LIMITS, RecurrenceError } from '../../lib/recurrence';
import { firstTrigger, freshState, PreviewItem, previewTriggers } from '../../lib/reminder-preview';
import { TaskLimitError, workPool } from '../../lib/work-pool';
import { sealSecret } from '../../lib/secrets';
import { startBusinessWorkflow, startOrUndo } from '../../lib/temporal';
import type { reminderWorkflow } from '../../workflows/reminders';
import {
  acknowledgeUpdate, cancelReminderUpdate, pauseUpdate, REMINDER_REFUSALS, ReminderPlan, ReminderSchedule, ReminderState, REMINDERS_DOMAIN,
  REMINDERS_TASK_QUEUE, rescheduleUpdate, resumeUpdate, snoozeUpdate,
} from '../../workflows/reminders.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { page, paginate, queryOf, respond } from '../conventions';
import { ApiError, notFound } from '../errors';
import { presentNotification, presentReminder, presentReminderDelivery } from '../presenters/reminders';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';

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

const planOf = (r: Reminder): ReminderPlan => ({ offsets: r.offsets, repeat: r.repeat ?? undefined });

export function reminderRoutes(deps: RouteDeps): Handlers {
  async function findReminder(tenantId: string, id: string): Promise<Reminder> {
    const r = await Reminder.findOne({ where: { id, tenantId } });
    if (!r) throw notFound(`Reminder ${id}`);
    return r;
  }

  /**
   * Sends an Update to the reminder's workflow, naming who sent it: the workflow's write of the change also
   * writes its audit event (one transaction). A refusal becomes its 4xx with nothing written.
   */
  async function command(ctx: Parameters<Handlers[string]>[1], id: string, run: (h: ReturnType<RouteDeps['temporal']['client']['workflow']['getHandle']>, by: CommandAuthor) => Promise<ReminderState>): Promise<void> {
    const audit = auditContext(ctx);
    const reminder = await findReminder(audit.tenantId, id);
    if (reminder.status === 'completed' || reminder.status === 'cancelled') throw new ApiError(409, 'REMINDER_CLOSED', `The reminder is ${reminder.status}`);
    try {
      await run(deps.temporal.client.workflow.getHandle(reminder.workflowId), { actor: audit.actor, requestId: audit.requestId ?? null });
    } catch (err) {
      const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type && cause.type in REMINDER_REFUSALS) {
        throw new ApiError(REMINDER_REFUSALS[cause.type as keyof typeof REMINDER_REFUSALS], cause.type, cause.message);
      }
      if (err instanceof WorkflowNotFoundError || /already completed/i.test((err as Error).message)) throw new ApiError(409, 'REMINDER_CLOSED', 'The reminder has ended');
      throw err;
    }
    await reminder.reload();
    respond(ctx, presentReminder(reminder));
  }

  return {
    async listReminders(c, ctx) {
      const q = queryOf(c);
      const where: WhereOptions = { tenantId: caller(ctx).tenant.id };
      const w = where as Record<string | symbol, unknown>;
      for (const k of ['status', 'objectType', 'objectId'] as const) if (q.str(k)) w[k] = q.str(k);
      const range: Record<symbol, Date> = {};
      if (q.str('dueFrom')) range[Op.gte] = new Date(q.str('dueFrom')!);
      if (q.str('dueTo')) range[Op.lt] = new Date(q.str('dueTo')!);
      if (Object.getOwnPropertySymbols(range).length) w.nextTriggerAt = range;
      const recipient = q.str('recipient');
      if (recipient) {
        w[Op.or] = /^[0-9a-f-]{36}$/i.test(recipient)
          ? [{ recipientUsers: { [Op.contains]: [recipient] } }]
          : [{ recipientEmails: { [Op.contains]: [recipient.toLowerCase()] } }];
      }
      ctx.body = page(await paginate(Reminder, { where, limit: q.int('limit'), cursor: q.str('cursor') }), presentReminder);
    },

    async createReminder(c, ctx) {
      const body = c.request.requestBody as Schemas['ReminderInput'];
      const audit = auditContext(ctx);
      const now = new Date();
      const plan: ReminderPlan = { offsets: [...(body.offsets ?? [0])].sort((a, b) => b - a), repeat: body.repeat };
      const { schedule, first } = await planSchedule(body, plan, now);
      const users = [...new Set(body.recipients.users ?? [])];
      const emails = [...new Set((body.recipients.emails ?? []).map((e) => e.toLowerCase()))];
      const webhooks = body.recipients.webhooks ?? [];
      const channels = body.channels;
      if (channels.includes('email') && !users.length && !emails.length) throw new ApiError(422, 'INVALID_REMINDER', 'The email channel needs recipients.users or recipients.emails');
      if (channels.includes('in_app') && !users.length) throw new ApiError(422, 'INVALID_REMINDER', 'The in_app channel needs recipients.users');
      if (channels.includes('webhook') && !webhooks.length) throw new ApiError(422, 'INVALID_REMINDER', 'The webhook channel needs recipients.webhooks');
      if (users.length) {
        const found = await User.count({ where: { tenantId: audit.tenantId, id: users, active: true } });
        if (found !== users.length) throw new ApiError(422, 'UNKNOWN_USER', 'recipients.users names a user that is not an active user of this tenant');
      }
      const id = randomUUID();
      const workflowId = businessWorkflowId({ domain: REMINDERS_DOMAIN, tenantId: audit.tenantId, entityId: id });
      const state = freshState(schedule, now);
      // The row and its audit event in one statement (one round trip, and no window in which the workflow
      // runs but its creation was never audited); the workflow starts after, with no connection held
      // across the Temporal call (which is what bounds the create rate).
      const created = { tenantId: audit.tenantId, action: 'reminders.reminder.created', entityType: 'reminder', entityId: id } as const;
      const reminder = await createWithAudit(Reminder, {
        id, tenantId: audit.tenantId, subject: body.subject, message: body.message ?? '', objectType: body.object?.type ?? null, objectId: body.object?.id ?? null,
        // Webhook secrets are stored sealed (lib/secrets.ts); only the delivering activity opens them.
        channels, recipients: { users, emails, webhooks: webhooks.map((w) => ({ ...w, secret: sealSecret(w.secret, deps.config.secretsKey) })) }, recipientUsers: users, recipientEmails: emails,
        dueAt: schedule.dueAt ? new Date(schedule.dueAt) : null, recurrence: schedule.recurrence ?? null, offsets: plan.offsets, repeat: plan.repeat ?? null,
        status: 'active', nextTriggerAt: new Date(first.at), currentOccurrence: new Date(first.occurrence),
        snoozedUntil: null, acknowledgedAt: null, occurrenceCount: 0, state, stateVersion: -1, workflowId, createdBy: audit.actor.id,
      }, (row) => ({ ...audit, ...created, after: presentReminder(row), workflowId }));
      await startOrUndo(
        () => startBusinessWorkflow<typeof reminderWorkflow>(deps.temporal.client, {
          workflowType: 'reminderWorkflow', taskQueue: REMINDERS_TASK_QUEUE, domain: REMINDERS_DOMAIN, tenantId: audit.tenantId,
          entityType: 'reminder', entityId: id, initialStatus: 'active',
          args: [{ tenantId: audit.tenantId, reminderId: id, channels, recipients: { users, emails, webhooks: webhooks.length }, schedule, plan, createdAt: now.toISOString() }],
        }),
        // If Temporal refuses, both go again: the reminder was never created.
        () => destroyWithAudit(reminder, created),
      );
      deps.metrics.workflowStarts.inc({ workflow_type: 'reminderWorkflow' });
      respond(ctx, presentReminder(reminder), { status: 201, location: `/v1/reminders/${id}` });
    },

    async getReminder(c, ctx) {
      respond(ctx, presentReminder(await findReminder(caller(ctx).tenant.id, c.request.params.reminderId as string)));
    },

    async previewReminder(c, ctx) {
      const r = await findReminder(caller(ctx).tenant.id, c.request.params.reminderId as string);
      const args: Parameters<typeof previewTriggers> = [{ ...r.state, status: r.status }, planOf(r), queryOf(c).int('count') ?? 10];
      ctx.body = { items: r.state.schedule.recurrence ? await expandOffThread(() => workPool().run('previewTriggers', args, RECURRENCE_LIMITS.budgetMs)) : previewTriggers(...args) };
    },

    async listReminderDeliveries(c, ctx) {
      const q = queryOf(c);
      const r = await findReminder(caller(ctx).tenant.id, c.request.params.reminderId as string);
      ctx.body = page(await paginate(DeliveryAttempt, { where: { tenantId: r.tenantId, subjectType: 'reminder', subjectId: r.id }, limit: q.int('limit'), cursor: q.str('cursor'), order: [['at', 'DESC'], ['id', 'DESC']] }), presentReminderDelivery);
    },

    async rescheduleReminder(c, ctx) {
      const now = new Date();
      const reminder = await findReminder(caller(ctx).tenant.id, c.request.params.reminderId as string);
      const { schedule } = await planSchedule(c.request.requestBody as ScheduleBody, planOf(reminder), now);
      await command(ctx, c.request.params.reminderId as string, (h, by) => h.executeUpdate(rescheduleUpdate, { args: [{ schedule, by }] }));
    },

    async snoozeReminder(c, ctx) {
      const body = c.request.requestBody as Schemas['ReminderSnooze'];
      if ((body.until === undefined) === (body.minutes === undefined)) throw new ApiError(422, 'INVALID_REMINDER', 'Give exactly one of until and minutes');
      const until = new Date(body.until ?? Date.now() + body.minutes! * 60_000).toISOString();
      if (Date.parse(until) <= Date.now()) throw new ApiError(422, 'TIME_IN_PAST', `until ${until} is in the past`);
      await command(ctx, c.request.params.reminderId as string, (h, by) => h.executeUpdate(snoozeUpdate, { args: [{ until, by }] }));
    },

    async acknowledgeReminder(c, ctx) {
      await command(ctx, c.request.params.reminderId as string, (h, by) => h.executeUpdate(acknowledgeUpdate, { args: [{ by }] }));
    },
    async pauseReminder(c, ctx) {
      await command(ctx, c.request.params.reminderId as string, (h, by) => h.executeUpdate(pauseUpdate, { args: [{ by }] }));
    },
    async resumeReminder(c, ctx) {
      await command(ctx, c.request.params.reminderId as string, (h, by) => h.executeUpdate(resumeUpdate, { args: [{ by }] }));
    },
    async cancelReminder(c, ctx) {
      await command(ctx, c.request.params.reminderId as string, (h, by) => h.executeUpdate(cancelReminderUpdate, { args: [{ by }] }));
    },

    async listMyNotifications(c, ctx) {
      const q = queryOf(c);
      const me = caller(ctx);
      const where: Record<string, unknown> = { tenantId: me.tenant.id, userId: me.user.id };
      if (q.bool('unread')) where.read = false;
      const result = await paginate(Notification, { where, limit: q.int('limit'), cursor: q.str('cursor'), order: [['read', 'ASC'], ['createdAt', 'DESC'], ['id', 'DESC']] });
      const unreadCount = await Notification.count({ where: { tenantId: me.tenant.id, userId: me.user.id, read: false } });
      ctx.body = { ...page(result, presentNotification), unreadCount };
    },

    async markMyNotificationRead(c, ctx) {
      const me = caller(ctx);
      const n = await Notification.findOne({ where: { id: c.request.params.notificationId as string, tenantId: me.tenant.id, userId: me.user.id } });
      if (!n) throw notFound(`Notification ${c.request.params.notificationId}`);
      if (!n.read) await n.update({ read: true, readAt: new Date() });
      respond(ctx, presentNotification(n));
    },

    async markAllMyNotificationsRead(_c, ctx) {
      const me = caller(ctx);
      const [marked] = await Notification.update({ read: true, readAt: new Date() }, { where: { tenantId: me.tenant.id, userId: me.user.id, read: false } });
      ctx.body = { marked };
    },
  };
}
