// Approvals end to end through the real API, Postgres, Temporal and SMTP: a purchase order goes from
// draft to approved through two stages with a quorum, by API and by email link; every refusal is
// synchronous and leaves nothing behind.
import { randomUUID } from 'node:crypto';
import { VERSION_LIST_LIMIT } from '../../api/conventions';
import { ApprovalEvent, ApprovalFlow, AuditEvent, Role, Tenant, UserRole } from '../../db';
import { buildCaller } from '../helpers/factories';
import { buildProcurementTenant, createApprovalTemplate, ProcurementTenant, submitOrder } from '../helpers/approvals';
import { TestApp } from '../helpers/app';
import { expectBadPageParamsRefused, newestFirst, versionPages } from '../helpers/pages';
import { Stack, startStack } from '../helpers/stack';
import type { SmtpSink } from '../helpers/smtp-sink';
import { waitFor } from '../helpers/wait';
import { temporal } from '@temporalio/proto';
import { STATUS } from '../../workflows/search-attributes';

let stack: Stack;
let app: TestApp;
let smtp: SmtpSink;
beforeAll(async () => { ({ app, smtp } = stack = await startStack()); });
afterAll(() => stack.close());

const procurementTenant = () => buildProcurementTenant();
const createTemplate = (adminKey: string, over: Record<string, unknown> = {}) => createApprovalTemplate(app, adminKey, over);
const submittedOrder = (t: ProcurementTenant, total = 5000) => submitOrder(app, t, total);

describe('a purchase order through a two-stage approval', () => {
  it('goes draft → pending → approved: quorum by API, the CFO by email link; history, audit, Temporal', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey);
    const { po, flowId, flow } = await submittedOrder(t);
    expect(flow.stages[0].approvers.sort()).toEqual(t.fin.map((f) => f.user.id).sort());
    expect(flow.pendingApprovers.sort()).toEqual(t.fin.map((f) => f.user.id).sort());

    // Pending for each finance approver; not for the CFO yet.
    const mine = await app.call('get', '/v1/me/approvals', t.fin[0].key).expect(200);
    expect(mine.body.items.map((f: { id: string }) => f.id)).toContain(flowId);
    // Lists carry a summary (where the flow stands), not the approver lists; GET has those.
    const row = mine.body.items.find((f: { id: string }) => f.id === flowId);
    expect(row).toMatchObject({ status: 'pending', currentStage: 0, currentStageName: flow.stages[0].name, pendingCount: t.fin.length });
    expect(row.stages).toBeUndefined();
    expect((await app.call('get', '/v1/me/approvals', t.chief.key).expect(200)).body.items).toHaveLength(0);

    // First approval: the response carries the new state; the stage is still open (1 of 2).
    const one = await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'approve', comment: 'ok' }).expect(200);
    expect(one.body.stages[0].signatures).toHaveLength(1);
    expect(one.body.currentStage).toBe(0);
    // Second approval completes the quorum and opens the CFO stage, in the same response.
    const two = await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[1].key).send({ decision: 'approve' }).expect(200);
    expect(two.body.stages[0].status).toBe('approved');
    expect(two.body.currentStage).toBe(1);
    expect(two.body.pendingApprovers).toEqual([t.chief.user.id]);
    // … and GET right after shows the same.
    expect((await app.call('get', `/v1/approval-flows/${flowId}`, t.buyer.key).expect(200)).body.currentStage).toBe(1);

    // The CFO signs from the email: the link opens a confirmation page, the POST signs.
    const mail = await smtp.waitFor((m) => m.to.includes(t.chief.user.email) && m.subject.includes('Approval requested'));
    const approveUrl = /Approve: (\S+)/.exec(mail.text)![1];
    const path = new URL(approveUrl).pathname;
    const view = await app.call('get', path).expect(200);
    expect(view.text).toContain('<form method="post">');
    expect((await app.call('get', `/v1/approval-flows/${flowId}`, t.buyer.key)).body.status).toBe('pending'); // opening signs nothing
    const done = await app.call('post', path).type('form').send({ comment: 'Approved from mail' }).expect(200);
    expect(done.text).toContain('approved');
    // A used link answers 410 and signs nothing more.
    await app.call('get', path).expect(410);
    await app.call('post', path).type('form').send({}).expect(410);

    // The order followed the flow.
    const approved = await waitFor(async () => {
      const res = await app.call('get', `/v1/purchase-orders/${po.id}`, t.buyer.key).expect(200);
      return res.body.state === 'approved' && res.body;
    }, { what: 'order approved' });
    expect(approved.approvalFlowId).toBe(flowId);
    await app.call('post', `/v1/purchase-orders/${po.id}/place`, t.buyer.key).expect(200);

    // History: who did what, when, with comments.
    const history = (await app.call('get', `/v1/approval-flows/${flowId}/history`, t.buyer.key).expect(200)).body.items;
    const signed = history.filter((e: { type: string }) => e.type === 'signed');
    expect(signed.map((e: { actorId: string }) => e.actorId)).toEqual([t.fin[0].user.id, t.fin[1].user.id, t.chief.user.id]);
    expect(signed[2].comment).toBe('Approved from mail');
    expect(history.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['created', 'stage_opened', 'stage_approved', 'approved']));
    // Audit trail and Temporal visibility by tenant and status.
    const audit = await AuditEvent.findAll({ where: { tenantId: t.tenant.id, entityId: flowId } });
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['approvals.flow.created', 'approvals.flow.signed', 'approvals.flow.approved']));
    const flowRow = (await app.call('get', `/v1/approval-flows/${flowId}`, t.buyer.key)).body;
    const found = await waitFor(async () => {
      const ids: string[] = [];
      for await (const wf of app.client.workflow.list({ query: `TenantId="${t.tenant.id}" AND \`Status\`="approved" AND EntityType="purchase_order"` })) ids.push(wf.workflowId);
      return ids.length > 0 && ids;
    }, { what: 'approved flow in visibility' });
    expect(found).toEqual([flowRow.workflowId]);
    // An operator who knows the order (not the flow) finds its flow by the order's id: ObjectId.
    const byOrder: string[] = [];
    for await (const wf of app.client.workflow.list({ query: `ObjectId="${po.id}"` })) byOrder.push(wf.workflowId);
    expect(byOrder).toEqual([flowRow.workflowId]);
  });

  it('refuses bad signatures at once, writing nothing', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey);
    const { flowId } = await submittedOrder(t);
    const eventsBefore = await ApprovalEvent.count({ where: { flowId } });
    const auditBefore = await AuditEvent.count({ where: { tenantId: t.tenant.id } });

    const notApprover = await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.chief.key).send({ decision: 'approve' }).expect(403);
    expect(notApprover.body.code).toBe('NOT_AN_APPROVER');
    const noReason = await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'reject' }).expect(422);
    expect(noReason.body.code).toBe('REASON_REQUIRED');
    expect(await ApprovalEvent.count({ where: { flowId } })).toBe(eventsBefore);
    expect(await AuditEvent.count({ where: { tenantId: t.tenant.id } })).toBe(auditBefore);
    // The workflow history holds no trace of the refused updates either.
    const history = await app.client.workflow.getHandle((await app.call('get', `/v1/approval-flows/${flowId}`, t.adminKey)).body.workflowId).fetchHistory();
    expect((history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toHaveLength(0);

    await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'approve' }).expect(200);
    expect((await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'approve' }).expect(409)).body.code).toBe('ALREADY_SIGNED');
    // A missing permission is refused before the workflow is asked.
    const { key: outsider } = await buildCaller(['approvals.flow.read'], await Tenant.findByPk(t.tenant.id) as Tenant);
    expect((await app.call('post', `/v1/approval-flows/${flowId}/sign`, outsider).send({ decision: 'approve' }).expect(403)).body.code).toBe('PERMISSION_DENIED');
    // Another tenant sees nothing.
    const other = await buildCaller(['*']);
    await app.call('get', `/v1/approval-flows/${flowId}`, other.key).expect(404);
    await app.call('post', `/v1/approval-flows/${flowId}/sign`, other.key).send({ decision: 'approve' }).expect(404);
  });

  it('a reject with a reason ends the flow and the order; then the flow is closed to everyone', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey);
    const { po, flowId, flow } = await submittedOrder(t);
    const res = await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[2].key).send({ decision: 'reject', comment: 'Too expensive' }).expect(200);
    expect(res.body.status).toBe('rejected');
    // The requester hears of it, by email and in the app, with the approver's reason — once each.
    const mail = await smtp.waitFor((m) => m.to.includes(t.buyer.user.email) && m.subject.startsWith('Your request was rejected'));
    expect(mail.subject).toBe(`Your request was rejected: ${flow.title}`);
    expect(mail.text).toContain('Too expensive');
    const inbox = await waitFor(async () => { const b = (await app.call('get', '/v1/me/notifications', t.buyer.key).expect(200)).body; return b.items.length > 0 && b; }, { what: 'in-app notice' });
    expect(inbox.items).toHaveLength(1);
    expect(inbox.items[0]).toMatchObject({ sourceType: 'approval_flow', sourceId: flowId, read: false, object: { type: 'purchase_order', id: po.id } });
    expect(inbox.items[0].message).toContain('Too expensive');
    expect(smtp.messages.filter((m) => m.to.includes(t.buyer.user.email) && m.subject.startsWith('Your request'))).toHaveLength(1);
    // The approver who rejected is not told (it is not their request).
    expect((await app.call('get', '/v1/me/notifications', t.fin[2].key).expect(200)).body.items).toEqual([]);
    expect((await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'approve' }).expect(409)).body.code).toBe('FLOW_CLOSED');
    await waitFor(async () => (await app.call('get', `/v1/purchase-orders/${po.id}`, t.buyer.key)).body.state === 'rejected', { what: 'order rejected' });
    // A rejected order may be edited and submitted again.
    await app.call('patch', `/v1/purchase-orders/${po.id}`, t.buyer.key).send({ lines: [{ description: 'Laptop', quantity: 1, unitPrice: 2500 }] }).expect(200);
  });

  it('refuses edits while pending, self-approval, and lets the requester cancel', async () => {
    const t = await procurementTenant();
    // The buyer is also a finance approver here, and self-approval is off.
    const financeRole = (await Role.findOne({ where: { tenantId: t.tenant.id, key: 'finance' } }))!;
    await UserRole.create({ userId: t.buyer.user.id, roleId: financeRole.id, tenantId: t.tenant.id });
    await createTemplate(t.adminKey);
    const { po, flowId, flow } = await submittedOrder(t);
    expect(flow.stages[0].approvers).toContain(t.buyer.user.id);
    const locked = await app.call('patch', `/v1/purchase-orders/${po.id}`, t.buyer.key).send({ supplier: 'Other' }).expect(409);
    expect(locked.body.code).toBe('ORDER_LOCKED');
    expect((await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.buyer.key).send({ decision: 'approve' }).expect(403)).body.code).toBe('SELF_APPROVAL_FORBIDDEN');
    expect((await app.call('post', `/v1/approval-flows/${flowId}/cancel`, t.fin[0].key).send({}).expect(403)).body.code).toBe('PERMISSION_DENIED');
    const cancelled = await app.call('post', `/v1/approval-flows/${flowId}/cancel`, t.buyer.key).send({ reason: 'not needed' }).expect(200);
    expect(cancelled.body.status).toBe('cancelled');
    await waitFor(async () => (await app.call('get', `/v1/purchase-orders/${po.id}`, t.buyer.key)).body.state === 'draft', { what: 'order back to draft' });
    // Their own cancel is news to nobody: no notice to the requester.
    await waitFor(async () => (await app.call('get', `/v1/approval-flows/${flowId}`, t.adminKey).expect(200)).body.completedAt !== null, { what: 'flow written' });
    await new Promise((r) => setTimeout(r, 500));
    expect((await app.call('get', '/v1/me/notifications', t.buyer.key).expect(200)).body.items).toEqual([]);
    expect(smtp.messages.some((m) => m.to.includes(t.buyer.user.email) && m.subject.startsWith('Your request'))).toBe(false);
  });

  it('lists "my requests": the caller\'s own flows in any status, newest first; requesterId filters the tenant\'s list', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey);
    const first = await submittedOrder(t);
    const second = await submittedOrder(t, 6000);
    await app.call('post', `/v1/approval-flows/${first.flowId}/cancel`, t.buyer.key).send({ reason: 'changed my mind' }).expect(200);
    const mine = await app.call('get', '/v1/me/approval-requests', t.buyer.key).expect(200);
    expect(mine.body.items.map((f: { id: string; status: string }) => [f.id, f.status])).toEqual([[second.flowId, 'pending'], [first.flowId, 'cancelled']]);
    const cancelled = await app.call('get', '/v1/me/approval-requests?status=cancelled&limit=1', t.buyer.key).expect(200);
    expect(cancelled.body.items.map((f: { id: string }) => f.id)).toEqual([first.flowId]);
    // Paged: one at a time, each once.
    const page1 = await app.call('get', '/v1/me/approval-requests?limit=1', t.buyer.key).expect(200);
    const page2 = await app.call('get', `/v1/me/approval-requests?limit=1&cursor=${encodeURIComponent(page1.body.nextCursor)}`, t.buyer.key).expect(200);
    expect([...page1.body.items, ...page2.body.items].map((f: { id: string }) => f.id)).toEqual([second.flowId, first.flowId]);
    // Someone else's requests are not mine: an approver of these flows, and a user with no permission at all.
    expect((await app.call('get', '/v1/me/approval-requests', t.fin[0].key).expect(200)).body.items).toEqual([]);
    const { key: nobody } = await buildCaller([], t.tenant);
    expect((await app.call('get', '/v1/me/approval-requests', nobody).expect(200)).body.items).toEqual([]);
    // The tenant-wide list, by requester (needs approvals.flow.read like the rest of it).
    const byBuyer = await app.call('get', `/v1/approval-flows?requesterId=${t.buyer.user.id}`, t.adminKey).expect(200);
    expect(byBuyer.body.items.map((f: { id: string }) => f.id)).toEqual([second.flowId, first.flowId]);
    expect((await app.call('get', `/v1/approval-flows?requesterId=${t.chief.user.id}`, t.adminKey).expect(200)).body.items).toEqual([]);
    // Another tenant's admin filtering by this requester sees nothing.
    const { key: stranger } = await buildCaller(['*']);
    expect((await app.call('get', `/v1/approval-flows?requesterId=${t.buyer.user.id}`, stranger).expect(200)).body.items).toEqual([]);
    await app.call('get', '/v1/me/approval-requests?status=sleeping', t.buyer.key).expect(400);
    await app.call('get', '/v1/approval-flows?requesterId=not-a-uuid', t.adminKey).expect(400);
    await app.call('get', '/v1/me/approval-requests').expect(401);
  });

  it('shows the flow\'s deadline (maxPendingDays from its start) on the flow and in lists; none without one', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey, { maxPendingDays: 14 });
    const { flowId, flow } = await submittedOrder(t);
    const deadline = Date.parse(flow.expiresAt);
    // From the workflow's start, which follows the flow's creation by moments.
    expect(deadline - Date.parse(flow.createdAt)).toBeGreaterThanOrEqual(14 * 86_400_000 - 1_000);
    expect(deadline - Date.parse(flow.createdAt)).toBeLessThan(14 * 86_400_000 + 30_000);
    const listed = (await app.call('get', `/v1/approval-flows?objectId=${flow.objectId}`, t.adminKey).expect(200)).body.items.find((f: { id: string }) => f.id === flowId);
    expect(listed.expiresAt).toBe(flow.expiresAt);
    const other = await procurementTenant();
    await createTemplate(other.adminKey);
    const none = await submittedOrder(other);
    expect(none.flow.expiresAt).toBeNull();
    expect((await app.call('get', '/v1/me/approval-requests', other.buyer.key).expect(200)).body.items[0].expiresAt).toBeNull();
  });

  it('lets a holder of approvals.flow.decide approve or reject a flow for everyone, with a reason; nobody else', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey);
    const { po, flowId } = await submittedOrder(t);
    // Who may not: the requester, an approver, a flow admin without the decide permission, another tenant's admin.
    const { key: flowAdmin } = await buildCaller(['approvals.flow.admin', 'approvals.flow.read'], t.tenant);
    const { user: decider, key: deciderKey } = await buildCaller(['approvals.flow.decide'], t.tenant);
    const { key: stranger } = await buildCaller(['*']);
    const body = { decision: 'approve', reason: 'The CFO approved by phone' };
    for (const key of [t.buyer.key, t.fin[0].key, flowAdmin]) {
      expect((await app.call('post', `/v1/approval-flows/${flowId}/decide`, key).send(body).expect(403)).body.permission).toBe('approvals.flow.decide');
    }
    await app.call('post', `/v1/approval-flows/${flowId}/decide`, stranger).send(body).expect(404);
    // Bad input changes nothing: no reason, a blank one, an unknown decision.
    await app.call('post', `/v1/approval-flows/${flowId}/decide`, deciderKey).send({ decision: 'approve' }).expect(400);
    expect((await app.call('post', `/v1/approval-flows/${flowId}/decide`, deciderKey).send({ decision: 'approve', reason: '   ' }).expect(422)).body.code).toBe('REASON_REQUIRED');
    await app.call('post', `/v1/approval-flows/${flowId}/decide`, deciderKey).send({ decision: 'maybe', reason: 'x' }).expect(400);
    expect((await app.call('get', `/v1/approval-flows/${flowId}`, t.adminKey).expect(200)).body.status).toBe('pending');

    const decided = await app.call('post', `/v1/approval-flows/${flowId}/decide`, deciderKey).send(body).expect(200);
    expect(decided.body).toMatchObject({ status: 'approved', outcome: { reason: body.reason, by: decider.id }, pendingApprovers: [] });
    expect(decided.body.stages.map((s: { status: string }) => s.status)).toEqual(['approved', 'waiting']);
    const history = (await app.call('get', `/v1/approval-flows/${flowId}/history`, t.adminKey).expect(200)).body.items;
    const byAdmin = history.find((e: { type: string }) => e.type === 'decided_by_admin');
    expect(byAdmin).toMatchObject({ actorId: decider.id, decision: 'approve', comment: body.reason, stage: 0 });
    expect(history.map((e: { type: string }) => e.type).slice(-2)).toEqual(['decided_by_admin', 'approved']);
    const audit = await AuditEvent.findOne({ where: { tenantId: t.tenant.id, action: 'approvals.flow.decided_by_admin', entityId: flowId } });
    expect(audit).toMatchObject({ actorId: decider.id });
    // The order follows the decision, and the flow is closed to everyone after it.
    await waitFor(async () => (await app.call('get', `/v1/purchase-orders/${po.id}`, t.buyer.key)).body.state === 'approved', { what: 'order approved' });
    expect((await app.call('post', `/v1/approval-flows/${flowId}/decide`, deciderKey).send({ decision: 'reject', reason: 'too late' }).expect(409)).body.code).toBe('FLOW_CLOSED');
    expect((await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'approve' }).expect(409)).body.code).toBe('FLOW_CLOSED');

    // A forced reject ends the flow and the order rejected.
    const second = await submittedOrder(t, 7000);
    const rejected = await app.call('post', `/v1/approval-flows/${second.flowId}/decide`, deciderKey).send({ decision: 'reject', reason: 'Supplier blocked' }).expect(200);
    expect(rejected.body).toMatchObject({ status: 'rejected', outcome: { reason: 'Supplier blocked', by: decider.id } });
    await waitFor(async () => (await app.call('get', `/v1/purchase-orders/${second.po.id}`, t.buyer.key)).body.state === 'rejected', { what: 'order rejected' });
    // The requester is told of both, with the admin's reason for the reject.
    const told = await smtp.waitFor((m) => m.to.includes(t.buyer.user.email) && m.subject.startsWith('Your request was rejected'));
    expect(told.text).toContain('Supplier blocked');
    await smtp.waitFor((m) => m.to.includes(t.buyer.user.email) && m.subject.startsWith('Your request was approved'));

    // A tenant that turns the notices off: the next decision tells the requester nothing, by email or in the app.
    await app.call('put', '/v1/settings/approvals', t.adminKey).send({ notifyRequesterOnDecision: false }).expect(200);
    const third = await submittedOrder(t, 7000);
    await app.call('post', `/v1/approval-flows/${third.flowId}/decide`, deciderKey).send({ decision: 'reject', reason: 'Quiet' }).expect(200);
    // The workflow's last activity (the order follows, then the requester would be told) has run once it has ended.
    await app.client.workflow.getHandle(third.flow.workflowId).result();
    expect((await app.call('get', `/v1/purchase-orders/${third.po.id}`, t.buyer.key)).body.state).toBe('rejected');
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.messages.filter((m) => m.to.includes(t.buyer.user.email) && m.subject.includes(third.flow.title))).toEqual([]);
    const inbox = (await app.call('get', '/v1/me/notifications', t.buyer.key).expect(200)).body.items as { sourceId: string }[];
    expect(inbox.filter((n) => n.sourceId === third.flowId)).toEqual([]);
  });

  it('tells the tenant\'s watchers of new requests (a setting naming roles) about each new flow, once; not the requester, not its first approvers', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey);
    const watchers = await Role.create({ id: randomUUID(), tenantId: t.tenant.id, key: 'watchers', title: 'Watchers', permissions: [] });
    const { user: watcher } = await buildCaller([], t.tenant);
    // A finance approver who also watches is asked to sign, not told twice; the requester who watches is not told.
    for (const userId of [watcher.id, t.fin[0].user.id, t.buyer.user.id]) await UserRole.create({ userId, roleId: watchers.id, tenantId: t.tenant.id });
    await app.call('put', '/v1/settings/approvals', t.adminKey).send({ notifyOnRequest: { roles: ['watchers'] } }).expect(200);
    const { flow } = await submittedOrder(t);
    const told = await smtp.waitFor((m) => m.to.includes(watcher.email) && m.subject.startsWith('New approval request'));
    expect(told.subject).toBe(`New approval request: ${flow.title}`);
    expect(told.text).toContain('buyer requested approval');
    await smtp.waitFor((m) => m.to.includes(t.fin[0].user.email) && m.subject.startsWith('Approval requested'));
    await new Promise((r) => setTimeout(r, 300));
    const newRequest = smtp.messages.filter((m) => m.subject === `New approval request: ${flow.title}`);
    expect(newRequest.map((m) => m.to[0])).toEqual([watcher.email]);
  });

  it('approves at once, with no template and nobody asked, an object type the tenant does not require approval of; recorded as such', async () => {
    const t = await procurementTenant();
    // No template for purchase orders at all: without the setting a submit is refused.
    const draft = (await app.call('post', '/v1/purchase-orders', t.buyer.key).send({ number: `PO-${randomUUID().slice(0, 8)}`, supplier: 'Contoso', currency: 'EUR', lines: [{ description: 'Pens', quantity: 1, unitPrice: 9 }] }).expect(201)).body;
    expect((await app.call('post', `/v1/purchase-orders/${draft.id}/submit`, t.buyer.key).expect(422)).body.code).toBe('NO_MATCHING_TEMPLATE');
    const watchers = await Role.create({ id: randomUUID(), tenantId: t.tenant.id, key: 'watchers', title: 'Watchers', permissions: [] });
    const { user: watcher } = await buildCaller([], t.tenant);
    await UserRole.create({ userId: watcher.id, roleId: watchers.id, tenantId: t.tenant.id });
    await app.call('put', '/v1/settings/approvals', t.adminKey).send({ notifyOnRequest: { roles: ['watchers'] }, notRequired: { objectTypes: ['purchase_order', 'expense_claim'] } }).expect(200);

    const submitted = await app.call('post', `/v1/purchase-orders/${draft.id}/submit`, t.buyer.key).expect(202);
    const flowId = submitted.body.approvalFlowId as string;
    const flow = (await app.call('get', `/v1/approval-flows/${flowId}`, t.buyer.key).expect(200)).body;
    expect(flow).toMatchObject({ status: 'approved', templateId: null, templateVersion: null, stages: [], outcome: { reason: 'approval of this object type is not required', by: t.buyer.user.id } });
    await waitFor(async () => (await app.call('get', `/v1/purchase-orders/${draft.id}`, t.buyer.key)).body.state === 'approved', { what: 'order approved' });
    const history = await waitFor(async () => {
      const items = (await app.call('get', `/v1/approval-flows/${flowId}/history`, t.buyer.key).expect(200)).body.items as { type: string }[];
      return items.some((e) => e.type === 'approved') && items;
    }, { what: 'history written' });
    expect(history.map((e) => e.type)).toEqual(['created', 'not_required', 'approved']);
    expect(await AuditEvent.count({ where: { tenantId: t.tenant.id, action: 'approvals.flow.approved', entityId: flowId } })).toBe(1);
    // An object Docket does not own: the flow answered approved, with no template for its type either.
    const claim = await app.call('post', '/v1/approval-flows', t.adminKey).send({ objectType: 'expense_claim', objectId: 'EC-1', context: { amount: 10 } }).expect(201);
    expect(claim.body).toMatchObject({ status: 'approved', templateId: null });
    // Nobody was asked to sign or told of a request; the requester, who caused it, gets no outcome notice.
    await new Promise((r) => setTimeout(r, 500));
    expect(smtp.messages.filter((m) => m.subject.includes(flow.title) || m.subject.includes('expense_claim EC-1'))).toEqual([]);
    expect(smtp.messages.filter((m) => m.to.includes(watcher.email))).toEqual([]);

    // Taken off the list: a submit needs a template again; other tenants were never affected.
    await app.call('put', '/v1/settings/approvals', t.adminKey).send({ notRequired: { objectTypes: [] } }).expect(200);
    const next = (await app.call('post', '/v1/purchase-orders', t.buyer.key).send({ number: `PO-${randomUUID().slice(0, 8)}`, supplier: 'Contoso', currency: 'EUR', lines: [{ description: 'Ink', quantity: 1, unitPrice: 9 }] }).expect(201)).body;
    expect((await app.call('post', `/v1/purchase-orders/${next.id}/submit`, t.buyer.key).expect(422)).body.code).toBe('NO_MATCHING_TEMPLATE');
  });

  it('lets an admin remove a signature; the stage reopens when no longer satisfied', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey);
    const { flowId } = await submittedOrder(t);
    await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'approve' }).expect(200);
    const moved = await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[1].key).send({ decision: 'approve' }).expect(200);
    expect(moved.body.currentStage).toBe(1);
    const removed = await app.call('delete', `/v1/approval-flows/${flowId}/stages/0/signatures/${t.fin[1].user.id}?reason=signed%20by%20mistake`, t.adminKey).expect(200);
    expect(removed.body.currentStage).toBe(0);
    expect(removed.body.stages[0].status).toBe('active');
    expect(removed.body.stages[0].signatures.map((s: { userId: string }) => s.userId)).toEqual([t.fin[0].user.id]);
    expect((await app.call('delete', `/v1/approval-flows/${flowId}/stages/0/signatures/${t.fin[2].user.id}`, t.adminKey).expect(404)).body.code).toBe('SIGNATURE_NOT_FOUND');
    const audit = await AuditEvent.count({ where: { tenantId: t.tenant.id, action: 'approvals.flow.signature_removed', entityId: flowId } });
    expect(audit).toBe(1);
  });

  it('a sign on a flow that stays pending writes its state without re-setting the unchanged Status search attribute', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey);
    const { flowId, flow } = await submittedOrder(t);
    // Stage 0's emails are out, so the flow is waiting for people.
    await waitFor(async () => smtp.messages.filter((m) => m.subject.includes(flow.title)).length >= 3, { what: 'stage 0 mails' });
    await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'approve' }).expect(200);

    const handle = app.client.workflow.getHandle(flow.workflowId);
    const events = (await handle.fetchHistory()).events ?? [];
    // Status was 'pending' from the start; each upsert of it would be a history event and a visibility write per sign.
    const statusUpserts = events.filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
      && STATUS.name in (e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}));
    expect(statusUpserts).toEqual([]);
    expect((await handle.describe()).typedSearchAttributes.get(STATUS)).toBe('pending');
  });

  // Objects Docket does not own (here contracts kept elsewhere) are started by POST /v1/approval-flows with
  // the caller's context; purchase orders only by their submit (approvals.security.test.ts).
  it('starting again while pending returns the same flow', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey, { objectType: 'contract' });
    const body = { objectType: 'contract', objectId: `ext-${randomUUID()}`, context: { total: 5000 } };
    const first = await app.call('post', '/v1/approval-flows', t.adminKey).send(body).expect(201);
    expect(first.body).toMatchObject({ status: 'pending', objectType: 'contract', objectId: body.objectId });
    const again = await app.call('post', '/v1/approval-flows', t.adminKey).send(body).expect(200);
    expect(again.body.id).toBe(first.body.id);
    const list = await app.call('get', `/v1/approval-flows?objectId=${body.objectId}`, t.adminKey).expect(200);
    expect(list.body.items).toHaveLength(1);
    expect((await app.call('get', `/v1/approval-flows/by-object/contract/${body.objectId}`, t.adminKey).expect(200)).body.id).toBe(first.body.id);
  });

  it('pages pending flows newest first with a cursor: each flow once, with its summary; a forged cursor is a 400', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey, { objectType: 'contract' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await app.call('post', '/v1/approval-flows', t.adminKey).send({ objectType: 'contract', objectId: `page-${i}-${randomUUID()}`, context: { total: 5000 } }).expect(201)).body.id);
    }
    await waitFor(async () => (await app.call('get', `/v1/approval-flows?pendingFor=${t.fin[2].user.id}`, t.adminKey).expect(200)).body.items.length === 3, { what: 'three flows pending for fin3' });
    const first = await app.call('get', `/v1/approval-flows?pendingFor=${t.fin[2].user.id}&limit=2`, t.adminKey).expect(200);
    expect(first.body.items).toHaveLength(2);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await app.call('get', `/v1/approval-flows?pendingFor=${t.fin[2].user.id}&limit=2&cursor=${first.body.nextCursor}`, t.adminKey).expect(200);
    expect(second.body.nextCursor).toBeNull();
    expect([...first.body.items, ...second.body.items].map((f: { id: string }) => f.id)).toEqual([...ids].reverse());
    expect(second.body.items[0]).toMatchObject({ id: ids[0], status: 'pending', currentStageName: 'Finance', pendingCount: 3, stageDueAt: null, completedAt: null });
    expect(Date.parse(second.body.items[0].createdAt)).toBeLessThanOrEqual(Date.parse(first.body.items[1].createdAt));
    const forged = await app.call('get', `/v1/approval-flows?limit=2&cursor=not-a-cursor`, t.adminKey).expect(400);
    expect(forged.body.code).toBe('VALIDATION_FAILED');
  });

  it('auto-approves a requester with an auto-approve role (the 201 says so), and refuses when no template matches', async () => {
    const t = await procurementTenant();
    await createTemplate(t.adminKey, { objectType: 'contract', autoApproveRoles: ['cfo'] });
    const auto = await app.call('post', '/v1/approval-flows', t.chief.key).send({ objectType: 'contract', objectId: 'x-1', context: { total: 5000 } }).expect(201);
    // The answer agrees with the flow: approved, with its reason, not "pending".
    expect(auto.body).toMatchObject({ status: 'approved', outcome: { reason: expect.stringContaining('auto-approve'), by: t.chief.user.id } });
    expect(auto.body.completedAt).toEqual(expect.any(String));
    const approved = await waitFor(async () => {
      const res = await app.call('get', `/v1/approval-flows/${auto.body.id}`, t.adminKey);
      return res.body.status === 'approved' && res.body.stages && (await ApprovalFlow.findByPk(auto.body.id))!.stateVersion >= 0 && res.body;
    }, { what: 'auto-approved, written by the workflow' });
    expect(approved.outcome.reason).toContain('auto-approve');
    // Its workflow finishes: `x-1` is no purchase order, which the outcome hook must shrug off, not retry.
    const row = await ApprovalFlow.findByPk(auto.body.id);
    await waitFor(async () => (await app.client.workflow.getHandle(row!.workflowId).describe()).status.name === 'COMPLETED', { what: 'the flow workflow completed' });
    const none = await app.call('post', '/v1/approval-flows', t.adminKey).send({ objectType: 'contract', objectId: 'x-2', context: { total: 5 } }).expect(422);
    expect(none.body.code).toBe('NO_MATCHING_TEMPLATE');
  });
});

describe('approval templates', () => {
  it('versions every edit; running flows keep their version; deleting with running flows is refused', async () => {
    const t = await procurementTenant();
    const tpl = await createTemplate(t.adminKey);
    const { flowId } = await submittedOrder(t);
    const got = await app.call('get', `/v1/approval-templates/${tpl.id}`, t.adminKey).expect(200);
    const v2 = await app.call('put', `/v1/approval-templates/${tpl.id}`, t.adminKey).set('If-Match', got.headers.etag)
      .send({ name: 'Purchases v2', objectType: 'purchase_order', stages: [{ name: 'Anyone in finance', approvers: { roles: ['finance'] }, rule: 'any' }] }).expect(200);
    expect(v2.body.version).toBe(2);
    await app.call('put', `/v1/approval-templates/${tpl.id}`, t.adminKey).set('If-Match', got.headers.etag)
      .send({ name: 'stale', objectType: 'purchase_order', stages: [{ name: 'x', approvers: { roles: ['finance'] }, rule: 'any' }] }).expect(412);
    const flow = (await app.call('get', `/v1/approval-flows/${flowId}`, t.adminKey)).body;
    expect(flow.templateVersion).toBe(1);
    expect(flow.stages).toHaveLength(2);
    const versions = await app.call('get', `/v1/approval-templates/${tpl.id}/versions`, t.adminKey).expect(200);
    expect(versions.body.items.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    const del = await app.call('delete', `/v1/approval-templates/${tpl.id}`, t.adminKey).expect(409);
    expect(del.body).toMatchObject({ code: 'DEPENDENCY_EXISTS', count: 1 });
  });

  it('lists templates newest first, filtered by object type, a page at a time; another tenant\'s stay out', async () => {
    const t = await procurementTenant();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createTemplate(t.adminKey, { name: `PO ${i}`, priority: i })).id);
    const contract = await createTemplate(t.adminKey, { name: 'Contracts', objectType: 'contract' });
    const other = await procurementTenant();
    await createTemplate(other.adminKey, { name: 'Elsewhere' });

    const all = (await app.call('get', '/v1/approval-templates', t.adminKey).expect(200)).body;
    expect(all.items.map((x: { id: string }) => x.id)).toEqual([contract.id, ...[...ids].reverse()]);
    expect(all.nextCursor).toBeNull();
    expect(all.items[0]).toMatchObject({ name: 'Contracts', objectType: 'contract', version: 1, stages: [{ name: 'Finance' }, { name: 'CFO' }] });

    const first = (await app.call('get', '/v1/approval-templates?objectType=purchase_order&limit=2', t.adminKey).expect(200)).body;
    expect(first.items.map((x: { id: string }) => x.id)).toEqual([ids[2], ids[1]]);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = (await app.call('get', `/v1/approval-templates?objectType=purchase_order&limit=2&cursor=${first.nextCursor}`, t.adminKey).expect(200)).body;
    expect(second).toEqual({ items: [expect.objectContaining({ id: ids[0], name: 'PO 0', priority: 0 })], nextCursor: null });
    expect((await app.call('get', '/v1/approval-templates?objectType=invoice', t.adminKey).expect(200)).body).toEqual({ items: [], nextCursor: null });

    // Bad input: a limit out of range, a cursor the server did not issue; a reader without the permission.
    expect((await app.call('get', '/v1/approval-templates?limit=0', t.adminKey).expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await app.call('get', '/v1/approval-templates?cursor=not-a-cursor', t.adminKey).expect(400)).body.code).toBe('VALIDATION_FAILED');
    const { key: noRead } = await buildCaller(['approvals.flow.read'], await Tenant.findByPk(t.tenant.id) as Tenant);
    expect((await app.call('get', '/v1/approval-templates', noRead).expect(403)).body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'approvals.template.read' });
  });

  it('pages the versions of a template newest first: 20 by default, then the rest through nextCursor; a bad cursor or limit is a 400', async () => {
    const t = await procurementTenant();
    const tpl = await createTemplate(t.adminKey);
    for (let i = 0; i < 21; i++) {
      await app.call('put', `/v1/approval-templates/${tpl.id}`, t.adminKey)
        .send({ name: `Purchases ${i}`, objectType: 'purchase_order', stages: [{ name: 'Finance', approvers: { roles: ['finance'] }, rule: 'any' }] }).expect(200);
    }
    const url = `/v1/approval-templates/${tpl.id}/versions`;
    expect(await versionPages(app, t.adminKey, url)).toEqual([newestFirst(22).slice(0, 20), [2, 1]]);
    expect((await versionPages(app, t.adminKey, url, 'limit=7')).flat()).toEqual(newestFirst(22));
    const first = (await app.call('get', url, t.adminKey).expect(200)).body;
    expect(first.items[0]).toMatchObject({ id: tpl.id, version: 22, name: 'Purchases 20' });
    expect((await app.call('get', `${url}?cursor=${encodeURIComponent(first.nextCursor)}`, t.adminKey).expect(200)).body.items[1]).toMatchObject({ version: 1, name: 'Purchases', stages: [{ name: 'Finance' }, { name: 'CFO' }] });
    await expectBadPageParamsRefused(app, t.adminKey, url, { maxLimit: VERSION_LIST_LIMIT });
  });

  it('refuses a bad condition and an inconsistent stage with 422', async () => {
    const { key } = await buildCaller(['*']);
    const bad = await app.call('post', '/v1/approval-templates', key).send({ name: 'x', objectType: 'po', condition: 'total >', stages: [{ name: 's', approvers: { roles: ['a'] }, rule: 'any' }] }).expect(422);
    expect(bad.body.code).toBe('INVALID_CONDITION');
    const quorum = await app.call('post', '/v1/approval-templates', key).send({ name: 'x', objectType: 'po', stages: [{ name: 's', approvers: { roles: ['a'] }, rule: 'quorum' }] }).expect(422);
    expect(quorum.body.code).toBe('INVALID_TEMPLATE');
    await app.call('post', '/v1/approval-templates', key).send({ name: 'x', objectType: 'po', stages: [] }).expect(400);
  });
});
