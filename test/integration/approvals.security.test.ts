// Approvals as an attacker would try them: a flow bound to what the object says (not to the caller's word),
// templates that would leave nobody to sign, a quorum that must stay whole, and conditions that cannot stall
// the API. Every refusal writes nothing.
import { randomUUID } from 'node:crypto';
import { ApprovalFlow, ApprovalTemplate, AuditEvent, PurchaseOrder, Role, Tenant, User, UserRole } from '../../db';
import { buildProcurementTenant, createApprovalTemplate, createOrder, ProcurementTenant } from '../helpers/approvals';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller, buildUser } from '../helpers/factories';
import { waitFor } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  await app.startWorker();
});
afterAll(() => app.close());

/** The procurement tenant plus a manager who may start flows and approves small purchases. */
async function withManager() {
  const t = await buildProcurementTenant();
  const role = await Role.create({ id: randomUUID(), tenantId: t.tenant.id, key: 'manager', title: 'Manager', permissions: ['approvals.flow.create', 'approvals.flow.sign', 'approvals.flow.read'] });
  const manager = await t.person('manager', role);
  const small = await createApprovalTemplate(app, t.adminKey, {
    name: 'Small purchases', condition: 'total <= 1000', priority: 10, stages: [{ name: 'Manager', approvers: { roles: ['manager'] }, rule: 'any' }],
  });
  const large = await createApprovalTemplate(app, t.adminKey, {
    name: 'Large purchases', condition: 'total > 10000', stages: [{ name: 'CFO', approvers: { roles: ['cfo'] }, rule: 'any' }],
  });
  return { ...t, manager, small, large };
}

const flowsOf = (t: ProcurementTenant) => ApprovalFlow.count({ where: { tenantId: t.tenant.id } });

describe('a purchase order is approved by what it says', () => {
  it('the reported exploit: a 50,000 EUR order cannot be approved by a manager through a pre-created flow with {"total": 1}', async () => {
    const t = await withManager();
    const po = await createOrder(app, t.buyer.key, 50_000);

    // The manager pre-creates the order's flow with a context of their own: refused, nothing written.
    const forged = await app.call('post', '/v1/approval-flows', t.manager.key).send({ objectType: 'purchase_order', objectId: po.id, context: { total: 1 } }).expect(422);
    expect(forged.body.code).toBe('OBJECT_MANAGED');
    expect(forged.body.detail).toContain('/v1/purchase-orders/{orderId}/submit');
    // Nor may anyone pick a (laxer) template by id, for any object type.
    const picked = await app.call('post', '/v1/approval-flows', t.adminKey).send({ objectType: 'contract', objectId: 'c-1', templateId: t.small.id, context: {} }).expect(400);
    expect(picked.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: '/requestBody/templateId' }] });
    expect(await flowsOf(t)).toBe(0);

    // Submitting the order decides it from the order itself: the large-purchase template, the CFO.
    const submitted = await app.call('post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key).expect(202);
    const flow = await waitFor(async () => {
      const res = await app.call('get', `/v1/approval-flows/${submitted.body.approvalFlowId}`, t.adminKey).expect(200);
      return res.body.stages[0].status === 'active' && res.body;
    }, { what: 'stage 0 open' });
    expect(flow).toMatchObject({ templateId: t.large.id, objectType: 'purchase_order', objectId: po.id, pendingApprovers: [t.chief.user.id] });
    expect((await ApprovalFlow.findByPk(flow.id))!.context).toEqual({ total: 50_000, currency: 'EUR', supplier: 'Contoso', number: po.number });
    const manager = await app.call('post', `/v1/approval-flows/${flow.id}/sign`, t.manager.key).send({ decision: 'approve' }).expect(403);
    expect(manager.body.code).toBe('NOT_AN_APPROVER');
    expect((await app.call('get', `/v1/purchase-orders/${po.id}`, t.buyer.key).expect(200)).body.state).toBe('pending_approval');
    await app.call('post', `/v1/approval-flows/${flow.id}/sign`, t.chief.key).send({ decision: 'approve' }).expect(200);
    await waitFor(async () => (await app.call('get', `/v1/purchase-orders/${po.id}`, t.buyer.key)).body.state === 'approved', { what: 'order approved by the CFO' });
  });

  it('a small order goes to the manager: the same templates, chosen by the server from the order', async () => {
    const t = await withManager();
    const po = await createOrder(app, t.buyer.key, 800);
    const submitted = await app.call('post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key).expect(202);
    const flow = (await app.call('get', `/v1/approval-flows/${submitted.body.approvalFlowId}`, t.adminKey).expect(200)).body;
    expect(flow.templateId).toBe(t.small.id);
  });

  it('an order edit racing its submit cannot change what the flow decided on', async () => {
    const t = await withManager();
    const po = await createOrder(app, t.buyer.key, 800);
    const etag = (await app.call('get', `/v1/purchase-orders/${po.id}`, t.buyer.key).expect(200)).headers.etag;
    const [submit, edit] = await Promise.all([
      app.call('post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key),
      app.call('patch', `/v1/purchase-orders/${po.id}`, t.buyer.key).set('If-Match', etag).send({ lines: [{ description: 'Servers', quantity: 1, unitPrice: 60_000 }] }),
    ]);
    expect(submit.status).toBe(202);
    const flow = (await ApprovalFlow.findByPk(submit.body.approvalFlowId))!;
    const order = (await PurchaseOrder.findByPk(po.id))!;
    // Either the edit came first (and the flow is the large-purchase one) or it was refused as locked.
    if (edit.status === 200) expect([flow.templateId, flow.context.total]).toEqual([t.large.id, 60_000]);
    else expect([edit.status, edit.body.code, flow.templateId, order.total]).toEqual([409, 'ORDER_LOCKED', t.small.id, 800]);
    expect(flow.context.total).toBe(order.total);
  });

  it('a pending flow the order did not start (made before this was refused) keeps the order from being submitted', async () => {
    const t = await withManager();
    const po = await createOrder(app, t.buyer.key, 50_000);
    // What the old POST /v1/approval-flows left behind: the order's pending flow with the caller's context.
    const legacy = await ApprovalFlow.create({
      id: randomUUID(), tenantId: t.tenant.id, objectType: 'purchase_order', objectId: po.id, title: 'forged', templateId: t.small.id, templateVersion: 1,
      requesterId: t.manager.user.id, status: 'pending', currentStage: 0, state: { flowId: 'x', status: 'pending', currentStage: 0, version: -1, stages: [] },
      stateVersion: -1, pendingApprovers: [], context: { total: 1 }, workflowId: `approvals:${t.tenant.id}:legacy`, completedAt: null,
    });
    const refused = await app.call('post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key).expect(409);
    expect(refused.body.code).toBe('CONFLICTING_FLOW');
    expect(refused.body.detail).toContain(legacy.id);
    expect((await PurchaseOrder.findByPk(po.id))!.toJSON()).toMatchObject({ state: 'draft', approvalFlowId: null });
    expect(await flowsOf(t)).toBe(1);
  });
});

describe('approvers who resolve to nobody', () => {
  async function tenantWithPeople() {
    const t = await buildProcurementTenant();
    const empty = await Role.create({ id: randomUUID(), tenantId: t.tenant.id, key: 'empty', title: 'Nobody', permissions: ['approvals.flow.sign'] });
    const gone = await buildUser(await Tenant.findByPk(t.tenant.id) as Tenant, { name: 'Gone', active: false });
    const stranger = (await buildCaller(['*'])).user;
    return { ...t, empty, gone, stranger };
  }
  const stage = (approvers: Record<string, unknown>, over: Record<string, unknown> = {}) => ({ name: 'S', approvers, rule: 'any', ...over });

  it('refuses such a template when it is saved (422 with the stage path), saving nothing', async () => {
    const t = await tenantWithPeople();
    const before = await ApprovalTemplate.count({ where: { tenantId: t.tenant.id } });
    const refusals: [Record<string, unknown>[], string, RegExp][] = [
      [[stage({ roles: ['finance'] }), stage({ roles: ['ghost'] })], '/stages/1/approvers/roles/0', /no role "ghost"/],
      [[stage({ users: [t.stranger.id] })], '/stages/0/approvers/users/0', /no user .* in this tenant/],
      [[stage({ users: [t.gone.id] })], '/stages/0/approvers/users/0', /deactivated/],
      [[stage({ roles: ['empty'] })], '/stages/0/approvers', /resolves to nobody/],
      [[stage({ roles: ['finance'] }, { rule: 'quorum', quorum: 4 })], '/stages/0/quorum', /quorum of 4/],
      [[stage({ roles: ['finance'] }, { dueHours: 1, onDue: { action: 'escalate', escalateTo: { roles: ['ghost'] } } })], '/stages/0/onDue/escalateTo/roles/0', /no role "ghost"/],
    ];
    for (const [stages, path, message] of refusals) {
      const res = await app.call('post', '/v1/approval-templates', t.adminKey).send({ name: 'x', objectType: 'purchase_order', stages }).expect(422);
      expect(res.body.code).toBe('UNRESOLVED_APPROVERS');
      expect(res.body.errors).toEqual([{ path, message: expect.stringMatching(message) }]);
    }
    expect(await ApprovalTemplate.count({ where: { tenantId: t.tenant.id } })).toBe(before);

    // An edit is refused the same way, and the template keeps its version.
    const tpl = await createApprovalTemplate(app, t.adminKey);
    const put = await app.call('put', `/v1/approval-templates/${tpl.id}`, t.adminKey).send({ name: 'x', objectType: 'purchase_order', stages: [stage({ roles: ['ghost'] })] }).expect(422);
    expect(put.body.errors[0].path).toBe('/stages/0/approvers/roles/0');
    expect((await app.call('get', `/v1/approval-templates/${tpl.id}`, t.adminKey).expect(200)).body.version).toBe(1);
  });

  it('refuses to start a flow whose stage has nobody left to sign (422, nothing written), instead of rejecting it at once', async () => {
    const t = await tenantWithPeople();
    await createApprovalTemplate(app, t.adminKey, { condition: undefined, stages: [stage({ roles: ['finance'] }), stage({ roles: ['cfo'] })] });
    // The CFO leaves after the template was saved.
    await User.update({ active: false }, { where: { id: t.chief.user.id } });
    const po = await createOrder(app, t.buyer.key);
    const auditBefore = await AuditEvent.count({ where: { tenantId: t.tenant.id } });
    const res = await app.call('post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key).expect(422);
    expect(res.body).toMatchObject({ code: 'UNRESOLVED_APPROVERS', errors: [{ path: '/stages/1/approvers', message: expect.stringContaining('has 0') }] });
    expect(await flowsOf(t)).toBe(0);
    expect((await PurchaseOrder.findByPk(po.id))!.state).toBe('draft');
    expect(await AuditEvent.count({ where: { tenantId: t.tenant.id } })).toBe(auditBefore);
  });

  it('a requester who is a stage\'s only approver cannot start it (self-approval off)', async () => {
    const t = await tenantWithPeople();
    await createApprovalTemplate(app, t.adminKey, { objectType: 'contract', condition: undefined, stages: [stage({ users: [t.fin[0].user.id] })] });
    await UserRole.create({ userId: t.fin[0].user.id, roleId: t.roles.cfo.id, tenantId: t.tenant.id }); // may create flows
    const res = await app.call('post', '/v1/approval-flows', t.fin[0].key).send({ objectType: 'contract', objectId: 'c-9', context: {} }).expect(422);
    expect(res.body.errors).toEqual([{ path: '/stages/0/approvers', message: 'stage "S" needs 1 approver(s) other than the requester; it has 0' }]);
    expect(await flowsOf(t)).toBe(0);
  });
});

describe('a quorum stays whole', () => {
  it('a quorum of 3 among 3 approvers, one of them the requester, is refused at submit — never approved by the other 2', async () => {
    const t = await buildProcurementTenant();
    // The buyer sits on the board with two others; self-approval is off.
    const board = await Role.create({ id: randomUUID(), tenantId: t.tenant.id, key: 'board', title: 'Board', permissions: ['approvals.flow.sign'] });
    for (const u of [t.buyer.user, t.fin[0].user, t.fin[1].user]) await UserRole.create({ userId: u.id, roleId: board.id, tenantId: t.tenant.id });
    await createApprovalTemplate(app, t.adminKey, { condition: undefined, stages: [{ name: 'Board', approvers: { roles: ['board'] }, rule: 'quorum', quorum: 3 }] });
    const po = await createOrder(app, t.buyer.key);
    const res = await app.call('post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key).expect(422);
    expect(res.body).toMatchObject({ code: 'UNRESOLVED_APPROVERS', errors: [{ path: '/stages/0/approvers', message: 'stage "Board" needs 3 approver(s) other than the requester; it has 2' }] });
    expect(await flowsOf(t)).toBe(0);
  });
});

describe('conditions cannot stall the API', () => {
  async function contractTemplates(condition: string) {
    const { tenant, key } = await buildCaller(['*']);
    const approver = await buildUser(tenant);
    const stages = [{ name: 'S', approvers: { users: [approver.id] }, rule: 'any' }];
    const odd = (await app.call('post', '/v1/approval-templates', key).send({ name: 'Odd', objectType: 'contract', condition, priority: 5, stages }).expect(201)).body;
    const others = (await app.call('post', '/v1/approval-templates', key).send({ name: 'Others', objectType: 'contract', stages }).expect(201)).body;
    return { tenant, key, odd, others };
  }

  it('a catastrophic-backtracking regex answers in well under a second, and /health with it', async () => {
    const { key, others } = await contractTemplates('supplier ~= "(a+)+$"');
    const started = Date.now();
    // /(a+)+$/ against 26 a's and a "!" takes seconds in JavaScript's own engine (the reported stall: 40 s).
    const [res, health] = await Promise.all([
      app.call('post', '/v1/approval-flows', key).send({ objectType: 'contract', objectId: 'c-1', context: { supplier: `${'a'.repeat(26)}!` } }),
      app.call('get', '/health'),
    ]);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(health.status).toBe(200);
    // It does not match, so the next template applies.
    expect([res.status, res.body.templateId]).toEqual([201, others.id]);
  });

  it('a pattern RE2 refuses, or a match over budget, is a 422 INVALID_CONDITION — never a quiet fall-through to another template', async () => {
    for (const [condition, reason] of [['supplier ~= "(a)\\\\1"', /not a supported regular expression/], ['supplier ~= "(?:a?){999}a{999}"', /over the match budget/]] as const) {
      const { tenant, key, odd } = await contractTemplates(condition);
      const res = await app.call('post', '/v1/approval-flows', key).send({ objectType: 'contract', objectId: 'c-1', context: { supplier: 'a'.repeat(1000) } }).expect(422);
      expect(res.body.code).toBe('INVALID_CONDITION');
      expect(res.body.detail).toContain(odd.id);
      expect(res.body.detail).toMatch(reason);
      expect(await ApprovalFlow.count({ where: { tenantId: tenant.id } })).toBe(0);
    }
  });

  it('bounds the context a caller sends: values of up to 1,000 characters, 50 properties, no nesting', async () => {
    const { key } = await contractTemplates('supplier ~= "^a"');
    const send = (context: unknown) => app.call('post', '/v1/approval-flows', key).send({ objectType: 'contract', objectId: `c-${randomUUID()}`, context });
    expect((await send({ supplier: 'a'.repeat(1001) }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await send(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]))).expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await send({ supplier: { nested: 'a' } }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    await send({ supplier: 'a'.repeat(1000), tags: ['x', 1, true], note: null }).expect(201);
  });
});

describe('who wrote an order does not approve it, whoever submits it', () => {
  /** The procurement tenant (finance quorum 2, then the CFO) where finance approvers may also write orders. */
  async function writersAmongApprovers() {
    const t = await buildProcurementTenant();
    await createApprovalTemplate(app, t.adminKey);
    const writer = await Role.create({ id: randomUUID(), tenantId: t.tenant.id, key: 'writer', title: 'Writer', permissions: ['purchasing.order.manage', 'purchasing.order.read'] });
    for (const f of t.fin) await UserRole.create({ userId: f.user.id, roleId: writer.id, tenantId: t.tenant.id });
    return t;
  }

  it('an approver who wrote the order another user submitted is refused (403 SELF_APPROVAL_FORBIDDEN); the other approvers decide', async () => {
    const t = await writersAmongApprovers();
    const po = await createOrder(app, t.fin[0].key);
    const flowId = (await app.call('post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key).expect(202)).body.approvalFlowId as string;
    await waitFor(async () => (await app.call('get', `/v1/approval-flows/${flowId}`, t.adminKey).expect(200)).body.stages[0].status === 'active', { what: 'stage 0 open' });
    const own = await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'approve' }).expect(403);
    expect(own.body.code).toBe('SELF_APPROVAL_FORBIDDEN');
    const flow = (await app.call('get', `/v1/approval-flows/${flowId}`, t.adminKey).expect(200)).body;
    expect(flow.stages[0].signatures).toEqual([]);
    // The read model's pending approvers (what a client lists as "waiting for") leave the writer out.
    expect([...flow.pendingApprovers].sort()).toEqual([t.fin[1].user.id, t.fin[2].user.id].sort());
    await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[1].key).send({ decision: 'approve' }).expect(200);
    const second = await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[2].key).send({ decision: 'approve' }).expect(200);
    expect(second.body.currentStage).toBe(1);
  });

  it('one who edited it counts too: with two of three finance approvers among its writers the quorum of 2 cannot be met, so the submit is refused, nothing written', async () => {
    const t = await writersAmongApprovers();
    const po = await createOrder(app, t.fin[0].key);
    await app.call('patch', `/v1/purchase-orders/${po.id}`, t.fin[1].key).send({ lines: [{ description: 'Laptop', quantity: 3, unitPrice: 2500 }] }).expect(200);
    const auditBefore = await AuditEvent.count({ where: { tenantId: t.tenant.id } });
    const res = await app.call('post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key).expect(422);
    expect(res.body).toMatchObject({ code: 'UNRESOLVED_APPROVERS', errors: [{ path: '/stages/0/approvers', message: expect.stringContaining('other than the requester and who wrote it; it has 1') }] });
    expect(await flowsOf(t)).toBe(0);
    expect((await PurchaseOrder.findByPk(po.id))!.state).toBe('draft');
    expect(await AuditEvent.count({ where: { tenantId: t.tenant.id } })).toBe(auditBefore);
  });
});
