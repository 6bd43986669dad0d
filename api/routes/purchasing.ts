// Purchase orders: drafts, edits (locked while approval is pending), submit → approval flow, place; what
// they do is domains/purchasing/commands.ts.
import { PurchaseOrder } from '../../db/models/purchasing';
import { createPurchaseOrder, placePurchaseOrder, submitPurchaseOrder, updatePurchaseOrder } from '../../domains/purchasing/commands';
import { presentPurchaseOrder } from '../../domains/purchasing/presenters';
import { findInTenant } from '../../lib/tenancy';
import { accepted } from '../async-jobs';
import { ifMatch, page, paginate, respond, versionEtag } from '../conventions';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function purchasingRoutes(deps: RouteDeps) {
  return {
    async listPurchaseOrders({ query }, ctx) {
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (query.state) where.state = query.state;
      ctx.body = page(await paginate(PurchaseOrder, { where, limit: query.limit, cursor: query.cursor }), presentPurchaseOrder);
    },

    async createPurchaseOrder({ body }, ctx) {
      const order = await createPurchaseOrder(deps, commandCaller(ctx), body);
      respond(ctx, presentPurchaseOrder(order), { status: 201, location: `/v1/purchase-orders/${order.id}`, etag: versionEtag(order.version) });
    },

    async getPurchaseOrder({ params }, ctx) {
      const o = await findInTenant(PurchaseOrder, caller(ctx).tenant.id, params.orderId, 'Purchase order');
      respond(ctx, presentPurchaseOrder(o), { etag: versionEtag(o.version) });
    },

    async updatePurchaseOrder({ params, body }, ctx) {
      const order = await updatePurchaseOrder(deps, commandCaller(ctx), params.orderId, body, ifMatch(ctx));
      respond(ctx, presentPurchaseOrder(order), { etag: versionEtag(order.version) });
    },

    async submitPurchaseOrder({ params }, ctx) {
      const { order, flow } = await submitPurchaseOrder(deps, commandCaller(ctx), params.orderId);
      accepted(ctx, presentPurchaseOrder(order), `/v1/approval-flows/${flow.id}`);
    },

    async placePurchaseOrder({ params }, ctx) {
      ctx.body = presentPurchaseOrder(await placePurchaseOrder(commandCaller(ctx), params.orderId));
    },
  } satisfies RouteHandlers;
}
