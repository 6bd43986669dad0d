// Notification types and templates; what they do is domains/notifications/commands.ts.
import { NotificationTemplate, NotificationTemplateVersion } from '../../db/models/notifications';
import {
  createNotificationTemplate, deleteNotificationTemplate, previewNotificationTemplate, updateNotificationTemplate,
} from '../../domains/notifications/commands';
import { presentNotificationTemplate, presentNotificationTypes } from '../../domains/notifications/presenters';
import { findInTenant } from '../../lib/tenancy';
import { ifMatch, page, paginate, paginateVersions, respond, versionEtag } from '../conventions';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function notificationRoutes(deps: RouteDeps) {
  return {
    async listNotificationTypes(_input, ctx) {
      ctx.body = { items: presentNotificationTypes() };
    },

    async listNotificationTemplates({ query }, ctx) {
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      for (const k of ['type', 'channel', 'locale', 'status'] as const) if (query[k]) where[k] = query[k];
      ctx.body = page(await paginate(NotificationTemplate, { where, limit: query.limit, cursor: query.cursor }), (t) => presentNotificationTemplate(t));
    },

    async createNotificationTemplate({ body }, ctx) {
      const t = await createNotificationTemplate(deps, commandCaller(ctx), body);
      respond(ctx, presentNotificationTemplate(t), { status: 201, location: `/v1/notification-templates/${t.id}`, etag: versionEtag(t.version) });
    },

    async getNotificationTemplate({ params }, ctx) {
      const t = await findInTenant(NotificationTemplate, caller(ctx).tenant.id, params.notificationTemplateId, 'Notification template');
      respond(ctx, presentNotificationTemplate(t), { etag: versionEtag(t.version) });
    },

    async updateNotificationTemplate({ params, body }, ctx) {
      const t = await updateNotificationTemplate(deps, commandCaller(ctx), params.notificationTemplateId, body, ifMatch(ctx));
      respond(ctx, presentNotificationTemplate(t), { etag: versionEtag(t.version) });
    },

    async deleteNotificationTemplate({ params }, ctx) {
      await deleteNotificationTemplate(deps, commandCaller(ctx), params.notificationTemplateId);
      ctx.status = 204;
    },

    async listNotificationTemplateVersions({ params, query }, ctx) {
      const t = await findInTenant(NotificationTemplate, caller(ctx).tenant.id, params.notificationTemplateId, 'Notification template');
      const versions = await paginateVersions(NotificationTemplateVersion, { templateId: t.id, tenantId: t.tenantId }, query);
      ctx.body = page(versions, (v) => presentNotificationTemplate(t, v));
    },

    async previewNotificationTemplate({ params, body }, ctx) {
      ctx.body = await previewNotificationTemplate(commandCaller(ctx), params.notificationTemplateId, body ?? {});
    },
  } satisfies RouteHandlers;
}
