// Purchasing commands: draft and edit an order (locked while its approval is pending), submit it (its
// approval flow decides it as submitted), place it once approved; and the order following its flow's outcome.
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { ApprovalFlow } from '../../db/models/approvals';
import { AuditEvent } from '../../db/models/audit';
import { DomainEvent } from '../../db/models/events';
import { PurchaseOrder, PurchaseOrderLine } from '../../db/models/purchasing';
import { recordAudit, updateWithAudit } from '../../lib/audit';
import { ApiError } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { isUuid } from '../../lib/uuid';
import type { FlowStatus } from '../../workflows/approvals.api';
import { launchFlow, prepareAndInsertFlow } from '../approvals/commands';
import { auditBy, Caller, CommandDeps, Precondition } from '../command';
import type { Schemas } from '../schemas';
import { generatePurchaseOrderDocument } from './order-document';
import { presentPurchaseOrder } from './presenters';

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

export async function createPurchaseOrder(deps: CommandDeps, c: Caller, input: Schemas['PurchaseOrderInput']): Promise<PurchaseOrder> {
  return deps.sequelize.transaction(async (transaction) => {
    if (await PurchaseOrder.count({ where: { tenantId: c.tenantId, number: input.number }, transaction })) {
      throw new ApiError(409, 'ALREADY_EXISTS', `Purchase order ${input.number} exists already`);
    }
    const created = await PurchaseOrder.create({
      id: randomUUID(), tenantId: c.tenantId, number: input.number, supplier: input.supplier, currency: input.currency,
      lines: input.lines, total: totalOf(input.lines), state: 'draft', requesterId: c.userId, editorIds: [c.userId],
    }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'purchasing.order.created', entityType: 'purchase_order', entityId: created.id, after: presentPurchaseOrder(created) }, transaction);
    return created;
  });
}

export async function updatePurchaseOrder(deps: CommandDeps, c: Caller, id: string, input: Schemas['PurchaseOrderUpdate'], precondition?: Precondition): Promise<PurchaseOrder> {
  return deps.sequelize.transaction(async (transaction) => {
    const o = await findInTenant(PurchaseOrder, c.tenantId, id, 'Purchase order', { transaction, lock: transaction.LOCK.UPDATE });
    if (!EDITABLE.includes(o.state)) throw new ApiError(409, 'ORDER_LOCKED', `A ${o.state} order cannot be edited`);
    precondition?.(o.version);
    const before = presentPurchaseOrder(o);
    if (input.supplier !== undefined) o.supplier = input.supplier;
    if (input.currency !== undefined) o.currency = input.currency;
    if (input.lines !== undefined) { o.lines = input.lines; o.total = totalOf(input.lines); }
    // An editor may not approve what they wrote (the flow's contributors, at submit).
    if (!o.editorIds.includes(c.userId)) o.editorIds = [...o.editorIds, c.userId];
    await o.save({ transaction });
    await recordAudit({ ...auditBy(c), action: 'purchasing.order.updated', entityType: 'purchase_order', entityId: o.id, before, after: presentPurchaseOrder(o) }, transaction);
    return o;
  });
}

/** Submits a draft (or rejected) order for approval: answers the order, pending, and its new flow. */
export async function submitPurchaseOrder(deps: CommandDeps, c: Caller, orderId: string): Promise<{ order: PurchaseOrder; flow: ApprovalFlow }> {
  // The order stays locked while its flow is decided and written, and moves to pending_approval in the same
  // transaction: an edit racing the submit waits and then finds it locked (ORDER_LOCKED), so the flow decides
  // the order as it was submitted; and the order is pending before its workflow can end (an auto-approval).
  const { order, prepared, flow, before } = await deps.sequelize.transaction(async (transaction) => {
    const o = await findInTenant(PurchaseOrder, c.tenantId, orderId, 'Purchase order', { transaction, lock: transaction.LOCK.UPDATE });
    if (!EDITABLE.includes(o.state)) throw new ApiError(409, 'INVALID_STATE', `A ${o.state} order cannot be submitted`);
    // A pending flow this order did not start (POST /v1/approval-flows allowed that once, with the caller's
    // context and template) must not decide it.
    const other = await ApprovalFlow.findOne({ where: { tenantId: c.tenantId, objectType: 'purchase_order', objectId: o.id, status: 'pending' }, transaction });
    if (other) {
      throw new ApiError(409, 'CONFLICTING_FLOW', `Approval flow ${other.id} is pending for this order but was not started by submitting it; cancel it (POST /v1/approval-flows/${other.id}/cancel), then submit`);
    }
    const { prepared: p, flow: f } = await prepareAndInsertFlow({
      tenantId: c.tenantId, requester: { id: c.userId, roles: c.roles }, objectType: 'purchase_order', objectId: o.id,
      // Whoever wrote the order (its author, its editors) may not approve it either, whoever submits it.
      contributors: [...new Set([o.requesterId, ...o.editorIds])].filter((u) => u && u !== c.userId),
      title: `${o.number} — ${o.supplier}, ${o.total.toFixed(2)} ${o.currency}`, context: approvalContextOf(o),
    }, transaction);
    const was = { state: o.state, approvalFlowId: o.approvalFlowId ?? null };
    Object.assign(o, { state: 'pending_approval', approvalFlowId: f.id });
    await o.save({ transaction });
    await recordAudit({ ...auditBy(c), ...submitted(f.id), entityType: 'purchase_order', entityId: o.id, before: { state: was.state }, after: { state: o.state, approvalFlowId: f.id }, workflowId: f.workflowId }, transaction);
    return { order: o, prepared: p, flow: f, before: was };
  });
  // If Temporal refuses, the submit is taken back whole: the order, its flow row and the event.
  await launchFlow(deps, prepared, () => deps.sequelize.transaction(async (transaction) => {
    await PurchaseOrder.update(before, { where: { id: order.id, approvalFlowId: flow.id }, transaction });
    await flow.destroy({ transaction });
    await AuditEvent.destroy({ where: { tenantId: order.tenantId, ...submitted(flow.id) }, transaction });
    await DomainEvent.destroy({ where: { tenantId: order.tenantId, eventKey: submitted(flow.id).eventKey }, transaction });
  }));
  await order.reload();
  return { order, flow };
}

/** An approved order is placed with its supplier. */
export async function placePurchaseOrder(c: Caller, orderId: string): Promise<PurchaseOrder> {
  const order = await findInTenant(PurchaseOrder, c.tenantId, orderId, 'Purchase order');
  const changed = await updateWithAudit(PurchaseOrder, { state: 'ordered' }, { id: order.id, state: 'approved' },
    { ...auditBy(c), action: 'purchasing.order.ordered', entityType: 'purchase_order', entityId: order.id, before: { state: 'approved' }, after: { state: 'ordered' } });
  if (!changed) throw new ApiError(409, 'INVALID_STATE', `A ${order.state} order cannot be placed; it must be approved`);
  return order.reload();
}

/**
 * The order follows its approval flow's outcome (run by the flow's activity, idempotent by event key); an
 * approved order gets its PDF (documents), once per approval.
 */
export async function followApprovalOutcome(client: Client, i: { tenantId: string; flowId: string; objectId: string; status: FlowStatus }): Promise<void> {
  // Only a submit starts a purchase_order flow now, but flows started before (through POST /v1/approval-flows)
  // may name an order that is not one of ours; an id that is not even a UUID would make every query fail and
  // the activity retry forever.
  if (!isUuid(i.objectId)) return;
  const next = i.status === 'approved' ? 'approved' : i.status === 'rejected' ? 'rejected' : 'draft';
  await updateWithAudit(PurchaseOrder, { state: next }, { id: i.objectId, tenantId: i.tenantId, approvalFlowId: i.flowId, state: 'pending_approval' }, {
    tenantId: i.tenantId, actor: { type: 'system', id: null }, action: 'purchasing.order.state_changed', entityType: 'purchase_order', entityId: i.objectId,
    before: { state: 'pending_approval' }, after: { state: next, approvalFlowId: i.flowId }, eventKey: `purchasing:${i.objectId}:${i.flowId}:${next}`,
  });
  if (next === 'approved') {
    // Checked again rather than trusting the update: a retry after a crash between the two steps still asks for the PDF (once: origin key).
    const order = await PurchaseOrder.findOne({ where: { id: i.objectId, tenantId: i.tenantId, approvalFlowId: i.flowId, state: ['approved', 'ordered'] } });
    if (order) await generatePurchaseOrderDocument(client, order, i.flowId);
  }
}
