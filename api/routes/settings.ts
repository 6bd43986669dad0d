// The tenant's settings (domains/settings): sending limits.
import * as settings from '../../domains/settings/commands';
import { presentSendingSettings } from '../../domains/settings/presenters';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function settingsRoutes(deps: RouteDeps) {
  return {
    async getSendingSettings(_input, ctx) {
      ctx.body = presentSendingSettings(await settings.sendingSettings(caller(ctx).tenant.id));
    },
    async updateSendingSettings({ body }, ctx) {
      ctx.body = presentSendingSettings(await settings.updateSendingSettings(deps, commandCaller(ctx), body));
    },
  } satisfies RouteHandlers;
}
