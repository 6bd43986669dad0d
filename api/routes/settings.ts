// The tenant's settings (domains/settings): sending limits, approval notices.
import * as settings from '../../domains/settings/commands';
import { presentApprovalSettings, presentSendingSettings } from '../../domains/settings/presenters';
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
  } satisfies RouteHandlers;
}
