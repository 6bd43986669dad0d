// Purchase orders: drafts, edits (locked while approval is pending), submit → approval flow, place.
import { randomUUID } from 'node:crypto';
import { PurchaseOrder, PurchaseOrderLine } from '../../db';
import { recordAudit } from '../../lib/audit';
import { checkIfMatch, page, paginate, queryOf, respond, versionEtag } from '../conventions';
import { ApiError, notFound } from '../errors';
import { presentPurchaseOrder } from '../presenters';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';
import { startApprovalFlow } from './approvals';

/** The largest total `purchase_orders.total` (DECIMAL(14,2)) holds; also exact in a double, in cents. */
export const MAX_ORDER_TOTAL = 999_999_999_999.99;

/**
 * Sum of lines in cents, so 0.1 + 0.2 is 0.30. Each line is within the contract's maxima, but 500 lines
 * of them are not within the column: a larger total is refused (422), never a database error.
 */
function totalOf(lines: PurchaseOrderLine[]): number {
  const total = Math.round(lines.reduce((sum, l) => sum + Math.round(l.quantity * l.unitPrice * 100), 0)) / 100;
  if (total > MAX_ORDER_TOTAL) {
    throw new ApiError(422, 'TOTAL_TOO_LARGE', `The order's total ${total} is over ${MAX_ORDER_TOTAL}`, { errors: [{ path: '/requestBody/lines', message: `the total must be at most ${MAX_ORDER_TOTAL}` }] });
  }
  return total;
}

const EDITABLE = ['draft', 'rejected'];

export function purchasingRoutes(deps: RouteDeps): Handlers {
  async function findOrder(tenantId: string, id: string): Promise<PurchaseOrder> {
    const o = await PurchaseOrder.findOne({ where: { id, tenantId } });
    if (!o) throw notFound(`Purchase order ${id}`);
    return o;
  }

  return {
    async listPurchaseOrders(c, ctx) {
      const q = queryOf(c);
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (q.str('state')) where.state = q.str('state');
      ctx.body = page(await paginate(PurchaseOrder, { where, limit: q.int('limit'), cursor: q.str('cursor') }), presentPurchaseOrder);
    },

    async createPurchaseOrder(c, ctx) {
      const body = c.request.requestBody as Schemas['PurchaseOrderInput'];
      const audit = auditContext(ctx);
      const order = await deps.sequelize.transaction(async (transaction) => {
        if (await PurchaseOrder.count({ where: { tenantId: audit.tenantId, number: body.number }, transaction })) {
          throw new ApiError(409, 'ALREADY_EXISTS', `Purchase order ${body.number} exists already`);
        }
        const created = await PurchaseOrder.create({
          id: randomUUID(), tenantId: audit.tenantId, number: body.number, supplier: body.supplier, currency: body.currency,
          lines: body.lines, total: totalOf(body.lines), state: 'draft', requesterId: caller(ctx).user.id,
        }, { transaction });
        await recordAudit({ ...audit, action: 'purchasing.order.created', entityType: 'purchase_order', entityId: created.id, after: presentPurchaseOrder(created) }, transaction);
        return created;
      });
      respond(ctx, presentPurchaseOrder(order), { status: 201, location: `/v1/purchase-orders/${order.id}`, etag: versionEtag(order.version) });
    },

    async getPurchaseOrder(c, ctx) {
      const o = await findOrder(caller(ctx).tenant.id, c.request.params.orderId as string);
      respond(ctx, presentPurchaseOrder(o), { etag: versionEtag(o.version) });
    },

    async updatePurchaseOrder(c, ctx) {
      const body = c.request.requestBody as Schemas['PurchaseOrderUpdate'];
      const audit = auditContext(ctx);
      const order = await deps.sequelize.transaction(async (transaction) => {
        const o = await PurchaseOrder.findOne({ where: { id: c.request.params.orderId as string, tenantId: audit.tenantId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!o) throw notFound(`Purchase order ${c.request.params.orderId}`);
        if (!EDITABLE.includes(o.state)) throw new ApiError(409, 'ORDER_LOCKED', `A ${o.state} order cannot be edited`);
        checkIfMatch(ctx, versionEtag(o.version));
        const before = presentPurchaseOrder(o);
        if (body.supplier !== undefined) o.supplier = body.supplier;
        if (body.currency !== undefined) o.currency = body.currency;
        if (body.lines !== undefined) { o.lines = body.lines; o.total = totalOf(body.lines); }
        await o.save({ transaction });
        await recordAudit({ ...audit, action: 'purchasing.order.updated', entityType: 'purchase_order', entityId: o.id, before, after: presentPurchaseOrder(o) }, transaction);
        return o;
      });
      respond(ctx, presentPurchaseOrder(order), { etag: versionEtag(order.version) });
    },

    async submitPurchaseOrder(c, ctx) {
      const a = caller(ctx);
      const audit = auditContext(ctx);
      const order = await findOrder(a.tenant.id, c.request.params.orderId as string);
      if (!EDITABLE.includes(order.state)) throw new ApiError(409, 'INVALID_STATE', `A ${order.state} order cannot be submitted`);
      const { flow } = await startApprovalFlow(deps, {
        tenantId: a.tenant.id, requester: { id: a.user.id, roles: a.roles }, objectType: 'purchase_order', objectId: order.id,
        title: `${order.number} — ${order.supplier}, ${order.total.toFixed(2)} ${order.currency}`,
        context: { total: order.total, currency: order.currency, supplier: order.supplier, number: order.number },
      });
      // Only a draft/rejected order moves: a concurrent submit that lost the race changes nothing.
      await PurchaseOrder.update({ state: 'pending_approval', approvalFlowId: flow.id }, { where: { id: order.id, state: EDITABLE } });
      await recordAudit({ ...audit, action: 'purchasing.order.submitted', entityType: 'purchase_order', entityId: order.id, after: { approvalFlowId: flow.id }, workflowId: flow.workflowId });
      await order.reload();
      respond(ctx, presentPurchaseOrder(order), { status: 202, location: `/v1/approval-flows/${flow.id}` });
    },

    async placePurchaseOrder(c, ctx) {
      const audit = auditContext(ctx);
      const order = await findOrder(audit.tenantId, c.request.params.orderId as string);
      const [changed] = await PurchaseOrder.update({ state: 'ordered' }, { where: { id: order.id, state: 'approved' } });
      if (!changed) throw new ApiError(409, 'INVALID_STATE', `A ${order.state} order cannot be placed; it must be approved`);
      await recordAudit({ ...audit, action: 'purchasing.order.ordered', entityType: 'purchase_order', entityId: order.id, before: { state: 'approved' }, after: { state: 'ordered' } });
      await order.reload();
      ctx.body = presentPurchaseOrder(order);
    },
  };
}
