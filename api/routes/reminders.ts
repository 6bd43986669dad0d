// Reminders: create (starts the reminder workflow), read, list, dispatch preview, delivery history, commands
// by Update (refused synchronously), and the caller's in-app notifications; what they do is
// domains/reminders/commands.ts.
import { Op, WhereOptions } from 'sequelize';
import { DeliveryAttempt } from '../../db/models/deliveries';
import { Notification, Reminder } from '../../db/models/reminders';
import { WebhookEndpoint } from '../../db/models/webhooks';
import {
  acknowledgeReminder, cancelReminder, createReminder, markAllNotificationsRead, markNotificationRead, pauseReminder, previewReminder,
  replaceReminderWebhooks, rescheduleReminder, resumeReminder, snoozeReminder,
} from '../../domains/reminders/commands';
import { presentNotification, presentReminder, presentReminderDelivery } from '../../domains/reminders/presenters';
import { webhookDeliveryPage } from '../../domains/webhooks/delivery-page';
import { validationFailed } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { isUuid } from '../../lib/uuid';
import { page, paginate, respond } from '../conventions';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function reminderRoutes(deps: RouteDeps) {
  return {
    async listReminders({ query }, ctx) {
      const where: WhereOptions = { tenantId: caller(ctx).tenant.id };
      const w = where as Record<string | symbol, unknown>;
      for (const k of ['status', 'objectType', 'objectId'] as const) if (query[k]) w[k] = query[k];
      const range: Record<symbol, Date> = {};
      if (query.dueFrom) range[Op.gte] = new Date(query.dueFrom);
      if (query.dueTo) range[Op.lt] = new Date(query.dueTo);
      if (Object.getOwnPropertySymbols(range).length) w.nextTriggerAt = range;
      const recipient = query.recipient;
      if (recipient) {
        // A user id only when it is a UUID (Postgres refuses anything else against the uuid[] column: the whole query
        // fails); an email address has an @; anything else names no recipient and is refused like any malformed filter.
        if (isUuid(recipient)) w[Op.or] = [{ recipientUsers: { [Op.contains]: [recipient] } }];
        else if (recipient.includes('@')) w[Op.or] = [{ recipientEmails: { [Op.contains]: [recipient.toLowerCase()] } }];
        else throw validationFailed([{ path: '/query/recipient', message: 'must be a user id (a UUID) or an email address' }]);
      }
      ctx.body = page(await paginate(Reminder, { where, limit: query.limit, cursor: query.cursor }), presentReminder);
    },

    async createReminder({ body }, ctx) {
      const reminder = await createReminder(deps, commandCaller(ctx), body);
      respond(ctx, presentReminder(reminder), { status: 201, location: `/v1/reminders/${reminder.id}` });
    },

    async getReminder({ params }, ctx) {
      respond(ctx, presentReminder(await findInTenant(Reminder, caller(ctx).tenant.id, params.reminderId, 'Reminder')));
    },

    async previewReminder({ params, query }, ctx) {
      const r = await findInTenant(Reminder, caller(ctx).tenant.id, params.reminderId, 'Reminder');
      ctx.body = { items: await previewReminder(r, query.count ?? 10) };
    },

    async listReminderDeliveries({ params, query }, ctx) {
      const r = await findInTenant(Reminder, caller(ctx).tenant.id, params.reminderId, 'Reminder');
      ctx.body = page(await paginate(DeliveryAttempt, { where: { tenantId: r.tenantId, subjectType: 'reminder', subjectId: r.id }, limit: query.limit, cursor: query.cursor, order: [['at', 'DESC'], ['id', 'DESC']] }), presentReminderDelivery);
    },

    async listReminderWebhookDeliveries({ params, query }, ctx) {
      const r = await findInTenant(Reminder, caller(ctx).tenant.id, params.reminderId, 'Reminder');
      // Its webhooks are its endpoints (those of a replaced webhook went with it).
      const endpoints = await WebhookEndpoint.findAll({ where: { tenantId: r.tenantId, reminderId: r.id }, attributes: ['id'] });
      ctx.body = await webhookDeliveryPage(r.tenantId, endpoints.map((e) => e.id), query);
    },

    async rescheduleReminder({ params, body }, ctx) {
      respond(ctx, presentReminder(await rescheduleReminder(deps, commandCaller(ctx), params.reminderId, body)));
    },
    async snoozeReminder({ params, body }, ctx) {
      respond(ctx, presentReminder(await snoozeReminder(deps, commandCaller(ctx), params.reminderId, body)));
    },
    async acknowledgeReminder({ params }, ctx) {
      respond(ctx, presentReminder(await acknowledgeReminder(deps, commandCaller(ctx), params.reminderId)));
    },
    async pauseReminder({ params }, ctx) {
      respond(ctx, presentReminder(await pauseReminder(deps, commandCaller(ctx), params.reminderId)));
    },
    async resumeReminder({ params }, ctx) {
      respond(ctx, presentReminder(await resumeReminder(deps, commandCaller(ctx), params.reminderId)));
    },
    async replaceReminderWebhooks({ params, body }, ctx) {
      respond(ctx, presentReminder(await replaceReminderWebhooks(deps, commandCaller(ctx), params.reminderId, body.webhooks)));
    },
    async cancelReminder({ params }, ctx) {
      respond(ctx, presentReminder(await cancelReminder(deps, commandCaller(ctx), params.reminderId)));
    },

    async listMyNotifications({ query }, ctx) {
      const me = caller(ctx);
      const where: Record<string, unknown> = { tenantId: me.tenant.id, userId: me.user.id };
      if (query.unread) where.read = false;
      const result = await paginate(Notification, { where, limit: query.limit, cursor: query.cursor, order: [['read', 'ASC'], ['createdAt', 'DESC'], ['id', 'DESC']] });
      const unreadCount = await Notification.count({ where: { tenantId: me.tenant.id, userId: me.user.id, read: false } });
      ctx.body = { ...page(result, presentNotification), unreadCount };
    },

    async markMyNotificationRead({ params }, ctx) {
      respond(ctx, presentNotification(await markNotificationRead(commandCaller(ctx), params.notificationId)));
    },

    async markAllMyNotificationsRead(_input, ctx) {
      ctx.body = { marked: await markAllNotificationsRead(commandCaller(ctx)) };
    },
  } satisfies RouteHandlers;
}
