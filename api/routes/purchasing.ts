// Purchase orders: drafts, edits (locked while approval is pending), submit → approval flow, place.
import { randomUUID } from 'node:crypto';
import { ApprovalFlow, AuditEvent, PurchaseOrder, PurchaseOrderLine } from '../../db';
import { recordAudit, updateWithAudit } from '../../lib/audit';
import { checkIfMatch, page, paginate, queryOf, respond, versionEtag } from '../conventions';
import { ApiError, notFound } from '../errors';
import { presentPurchaseOrder } from '../presenters';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';
import { insertFlow, launchFlow, prepareFlow } from './approvals';

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

/** A submit's audit event, keyed by the flow it started (so an undone submit takes back exactly its own). */
const submitted = (flowId: string) => ({ action: 'purchasing.order.submitted' as const, eventKey: `purchasing:submitted:${flowId}` });

/** What approval template conditions read of an order: taken from the order itself, never from a caller. */
export const approvalContextOf = (o: PurchaseOrder) => ({ total: o.total, currency: o.currency, supplier: o.supplier, number: o.number });

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
      const orderId = c.request.params.orderId as string;
      // The order stays locked while its flow is decided and written, and moves to pending_approval in the same
      // transaction: an edit racing the submit waits and then finds it locked (ORDER_LOCKED), so the flow decides
      // the order as it was submitted; and the order is pending before its workflow can end (an auto-approval).
      const { order, prepared, flow, before } = await deps.sequelize.transaction(async (transaction) => {
        const o = await PurchaseOrder.findOne({ where: { id: orderId, tenantId: a.tenant.id }, transaction, lock: transaction.LOCK.UPDATE });
        if (!o) throw notFound(`Purchase order ${orderId}`);
        if (!EDITABLE.includes(o.state)) throw new ApiError(409, 'INVALID_STATE', `A ${o.state} order cannot be submitted`);
        // A pending flow this order did not start (POST /v1/approval-flows allowed that once, with the caller's
        // context and template) must not decide it.
        const other = await ApprovalFlow.findOne({ where: { tenantId: a.tenant.id, objectType: 'purchase_order', objectId: o.id, status: 'pending' }, transaction });
        if (other) {
          throw new ApiError(409, 'CONFLICTING_FLOW', `Approval flow ${other.id} is pending for this order but was not started by submitting it; cancel it (POST /v1/approval-flows/${other.id}/cancel), then submit`);
        }
        const p = await prepareFlow({
          tenantId: a.tenant.id, requester: { id: a.user.id, roles: a.roles }, objectType: 'purchase_order', objectId: o.id,
          title: `${o.number} — ${o.supplier}, ${o.total.toFixed(2)} ${o.currency}`, context: approvalContextOf(o),
        });
        const f = await insertFlow(p, transaction);
        const was = { state: o.state, approvalFlowId: o.approvalFlowId ?? null };
        Object.assign(o, { state: 'pending_approval', approvalFlowId: f.id });
        await o.save({ transaction });
        await recordAudit({ ...audit, ...submitted(f.id), entityType: 'purchase_order', entityId: o.id, after: { approvalFlowId: f.id }, workflowId: f.workflowId }, transaction);
        return { order: o, prepared: p, flow: f, before: was };
      });
      // If Temporal refuses, the submit is taken back whole: the order, its flow row and the event.
      await launchFlow(deps, prepared, () => deps.sequelize.transaction(async (transaction) => {
        await PurchaseOrder.update(before, { where: { id: order.id, approvalFlowId: flow.id }, transaction });
        await flow.destroy({ transaction });
        await AuditEvent.destroy({ where: { tenantId: order.tenantId, ...submitted(flow.id) }, transaction });
      }));
      await order.reload();
      respond(ctx, presentPurchaseOrder(order), { status: 202, location: `/v1/approval-flows/${flow.id}` });
    },

    async placePurchaseOrder(c, ctx) {
      const audit = auditContext(ctx);
      const order = await findOrder(audit.tenantId, c.request.params.orderId as string);
      const changed = await updateWithAudit(PurchaseOrder, { state: 'ordered' }, { id: order.id, state: 'approved' },
        { ...audit, action: 'purchasing.order.ordered', entityType: 'purchase_order', entityId: order.id, before: { state: 'approved' }, after: { state: 'ordered' } });
      if (!changed) throw new ApiError(409, 'INVALID_STATE', `A ${order.state} order cannot be placed; it must be approved`);
      await order.reload();
      ctx.body = presentPurchaseOrder(order);
    },
  };
}
