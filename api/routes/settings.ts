// The tenant's settings (domains/settings): sending limits, approvals, notification defaults.
import * as settings from '../../domains/settings/commands';
import { presentApprovalSettings, presentNotificationSettings, presentSendingSettings } from '../../domains/settings/presenters';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function settingsRoutes(deps: RouteDeps) {
  return {
    async getSendingSettings(_input, ctx) {
      ctx.body = presentSendingSettings(await settings.sendingSettings(caller(ctx).tenant.id));
    },
    async updateSendingSettings({ body }, ctx) {
      ctx.body = presentSendingSettings(await settings.updateSendingSettings(deps, commandCaller(ctx), body));
    },
    async getApprovalSettings(_input, ctx) {
      ctx.body = presentApprovalSettings(await settings.approvalSettings(caller(ctx).tenant.id));
    },
    async updateApprovalSettings({ body }, ctx) {
      ctx.body = presentApprovalSettings(await settings.updateApprovalSettings(deps, commandCaller(ctx), body));
    },
    async getNotificationSettings(_input, ctx) {
      ctx.body = presentNotificationSettings(await settings.notificationSettings(caller(ctx).tenant.id));
    },
    async updateNotificationSettings({ body }, ctx) {
      ctx.body = presentNotificationSettings(await settings.updateNotificationSettings(deps, commandCaller(ctx), body));
    },
  } satisfies RouteHandlers;
}
