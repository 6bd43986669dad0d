// Purchase orders: every route's bad input (400), states that forbid a command (409 INVALID_STATE), duplicate
// numbers, another tenant's orders, list filters and paging, and a submit Temporal cannot take — each refusal
// leaves the order as it was.
import { randomUUID } from 'node:crypto';
import { ApprovalFlow, AuditEvent, PurchaseOrder, Role, Tenant, UserRole } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { waitFor } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  await app.startWorker();
});
afterAll(() => app.close());

const line = { description: 'Laptop', quantity: 2, unitPrice: 1250 };
const order = (over: Record<string, unknown> = {}) => ({ number: `PO-${randomUUID().slice(0, 8)}`, supplier: 'Contoso', currency: 'EUR', lines: [line], ...over });

/** A tenant whose buyer is auto-approved (role `buyer`), and an approver for everyone else's orders. */
async function shop() {
  const { tenant, key: admin } = await buildCaller(['*']);
  const buyerRole = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'buyer', title: 'Buyer', permissions: ['purchasing.order.*', 'approvals.flow.read'] });
  const buyer = await buildUser(tenant, { name: 'Buyer' });
  await UserRole.create({ userId: buyer.id, roleId: buyerRole.id, tenantId: tenant.id });
  const approver = await buildUser(tenant, { name: 'Approver', permissions: ['approvals.flow.sign'] });
  await app.call('post', '/v1/approval-templates', admin).send({
    name: 'Orders', objectType: 'purchase_order', autoApproveRoles: ['buyer'], stages: [{ name: 'Approver', approvers: { users: [approver.id] }, rule: 'any' }],
  }).expect(201);
  return { tenant, admin, buyerKey: await buildApiKey(buyer) };
}

const create = (key: string, body: unknown) => app.call('post', '/v1/purchase-orders', key).send(body as object);
const stateOf = async (id: string) => (await PurchaseOrder.findByPk(id))!.state;

describe('creating and editing', () => {
  it('refuses malformed orders with 400 VALIDATION_FAILED naming the field, creating nothing', async () => {
    const s = await shop();
    const cases: [unknown, string][] = [
      [{ supplier: 'S', currency: 'EUR', lines: [line] }, '/requestBody/number'],
      [order({ currency: 'eur' }), '/requestBody/currency'],
      [order({ lines: [] }), '/requestBody/lines'],
      [order({ lines: [{ ...line, quantity: 0 }] }), '/requestBody/lines/0/quantity'],
      [order({ lines: [{ ...line, unitPrice: -1 }] }), '/requestBody/lines/0/unitPrice'],
      [order({ lines: [{ description: '', quantity: 1, unitPrice: 1 }] }), '/requestBody/lines/0/description'],
      [order({ total: 1 }), '/requestBody/total'],
      [order({ number: 'x'.repeat(51) }), '/requestBody/number'],
    ];
    for (const [body, path] of cases) {
      const res = await create(s.admin, body).expect(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    expect((await create(s.admin, undefined).set('Content-Type', 'application/json').expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await app.call('post', '/v1/purchase-orders', s.admin).set('Content-Type', 'application/json').send('{"number":').expect(400)).body.code).toBe('MALFORMED_JSON');
    expect(await PurchaseOrder.count({ where: { tenantId: s.tenant.id } })).toBe(0);
  });

  it('a duplicate number is 409 ALREADY_EXISTS, also when two creates race', async () => {
    const s = await shop();
    const first = (await create(s.admin, order({ number: 'PO-1' })).expect(201)).body;
    expect(first).toMatchObject({ number: 'PO-1', state: 'draft', total: 2500, approvalFlowId: null });
    expect((await create(s.admin, order({ number: 'PO-1', supplier: 'Other' })).expect(409)).body.code).toBe('ALREADY_EXISTS');
    const raced = await Promise.all([create(s.admin, order({ number: 'PO-2' })), create(s.admin, order({ number: 'PO-2' }))]);
    expect(raced.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(raced.find((r) => r.status === 409)!.body.code).toBe('ALREADY_EXISTS');
    expect(await PurchaseOrder.count({ where: { tenantId: s.tenant.id } })).toBe(2);
    // The same number in another tenant is another order.
    await create((await shop()).admin, order({ number: 'PO-1' })).expect(201);
  });

  it('refuses bad edits (400, 412) and keeps the order as it was', async () => {
    const s = await shop();
    const po = await create(s.admin, order()).expect(201);
    for (const [body, path] of [[{}, '/requestBody'], [{ currency: 'EURO' }, '/requestBody/currency'], [{ number: 'PO-9' }, '/requestBody/number'], [{ lines: [] }, '/requestBody/lines']] as const) {
      const res = await app.call('patch', `/v1/purchase-orders/${po.body.id}`, s.admin).send(body).expect(400);
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    const stale = await app.call('patch', `/v1/purchase-orders/${po.body.id}`, s.admin).set('If-Match', '"999"').send({ supplier: 'Other' }).expect(412);
    expect(stale.body.code).toBe('PRECONDITION_FAILED');
    expect((await app.call('get', `/v1/purchase-orders/${po.body.id}`, s.admin).expect(200)).body).toMatchObject({ supplier: 'Contoso', currency: 'EUR', total: 2500 });
    await app.call('patch', `/v1/purchase-orders/${randomUUID()}`, s.admin).send({ supplier: 'x' }).expect(404);
    expect((await app.call('get', '/v1/purchase-orders/not-a-uuid', s.admin).expect(400)).body.code).toBe('VALIDATION_FAILED');
  });
});

describe('states', () => {
  it('submit and place answer 409 INVALID_STATE outside draft/rejected and approved; nothing changes', async () => {
    const s = await shop();
    const po = (await create(s.buyerKey, order()).expect(201)).body;
    const place = () => app.call('post', `/v1/purchase-orders/${po.id}/place`, s.buyerKey);
    const submit = () => app.call('post', `/v1/purchase-orders/${po.id}/submit`, s.buyerKey);

    expect((await place().expect(409)).body).toMatchObject({ code: 'INVALID_STATE', detail: expect.stringContaining('draft') });
    await submit().expect(202);
    // The buyer is auto-approved; while the order is pending or approved it cannot be submitted again.
    const again = await submit();
    expect([again.status, again.body.code]).toEqual([409, 'INVALID_STATE']);
    await waitFor(async () => (await stateOf(po.id)) === 'approved', { what: 'order approved' });
    expect((await submit().expect(409)).body.code).toBe('INVALID_STATE');
    expect((await place().expect(200)).body.state).toBe('ordered');
    expect((await place().expect(409)).body.code).toBe('INVALID_STATE');
    expect((await submit().expect(409)).body.code).toBe('INVALID_STATE');
    expect((await app.call('patch', `/v1/purchase-orders/${po.id}`, s.buyerKey).send({ supplier: 'x' }).expect(409)).body.code).toBe('ORDER_LOCKED');
    expect(await stateOf(po.id)).toBe('ordered');
    expect(await ApprovalFlow.count({ where: { tenantId: s.tenant.id } })).toBe(1);
  });

  it('a submit no template matches is 422 NO_MATCHING_TEMPLATE; the order stays a draft', async () => {
    const { tenant, key } = await buildCaller(['*']);
    const po = (await create(key, order()).expect(201)).body;
    expect((await app.call('post', `/v1/purchase-orders/${po.id}/submit`, key).expect(422)).body.code).toBe('NO_MATCHING_TEMPLATE');
    expect(await stateOf(po.id)).toBe('draft');
    expect(await ApprovalFlow.count({ where: { tenantId: tenant.id } })).toBe(0);
  });
});

describe('tenants and lists', () => {
  it('another tenant\'s order is 404 to every route, and stays untouched', async () => {
    const s = await shop();
    const po = (await create(s.admin, order()).expect(201)).body;
    const other = await buildCaller(['*']);
    await app.call('get', `/v1/purchase-orders/${po.id}`, other.key).expect(404);
    await app.call('patch', `/v1/purchase-orders/${po.id}`, other.key).send({ supplier: 'Mine now' }).expect(404);
    await app.call('post', `/v1/purchase-orders/${po.id}/submit`, other.key).expect(404);
    await app.call('post', `/v1/purchase-orders/${po.id}/place`, other.key).expect(404);
    await app.call('get', `/v1/purchase-orders/${po.id}/documents`, other.key).expect(404);
    expect((await app.call('get', '/v1/purchase-orders', other.key).expect(200)).body.items).toEqual([]);
    expect((await PurchaseOrder.findByPk(po.id))!.toJSON()).toMatchObject({ supplier: 'Contoso', state: 'draft', approvalFlowId: null });
  });

  it('lists newest first, filtered by state, a page at a time', async () => {
    const s = await shop();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await create(s.buyerKey, order({ number: `L-${i}` })).expect(201)).body.id);
    await app.call('post', `/v1/purchase-orders/${ids[1]}/submit`, s.buyerKey).expect(202);
    await waitFor(async () => (await stateOf(ids[1])) === 'approved', { what: 'order approved' });

    const all = (await app.call('get', '/v1/purchase-orders', s.buyerKey).expect(200)).body;
    expect(all.items.map((o: { id: string }) => o.id)).toEqual([...ids].reverse());
    const drafts = (await app.call('get', '/v1/purchase-orders?state=draft', s.buyerKey).expect(200)).body;
    expect(drafts.items.map((o: { id: string }) => o.id)).toEqual([ids[2], ids[0]]);
    const approved = (await app.call('get', '/v1/purchase-orders?state=approved', s.buyerKey).expect(200)).body;
    expect(approved.items.map((o: { number: string; approvalFlowId: string }) => [o.number, typeof o.approvalFlowId])).toEqual([['L-1', 'string']]);
    expect((await app.call('get', '/v1/purchase-orders?state=ordered', s.buyerKey).expect(200)).body.items).toEqual([]);

    const first = (await app.call('get', '/v1/purchase-orders?limit=2', s.buyerKey).expect(200)).body;
    const second = (await app.call('get', `/v1/purchase-orders?limit=2&cursor=${first.nextCursor}`, s.buyerKey).expect(200)).body;
    expect([...first.items, ...second.items].map((o: { id: string }) => o.id)).toEqual([...ids].reverse());
    expect(second.nextCursor).toBeNull();

    expect((await app.call('get', '/v1/purchase-orders?state=lost', s.buyerKey).expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await app.call('get', '/v1/purchase-orders?limit=201', s.buyerKey).expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await app.call('get', '/v1/purchase-orders?cursor=forged', s.buyerKey).expect(400)).body.code).toBe('VALIDATION_FAILED');
    const { key: reader } = await buildCaller(['approvals.flow.read'], await Tenant.findByPk(s.tenant.id) as Tenant);
    expect((await app.call('get', '/v1/purchase-orders', reader).expect(403)).body.permission).toBe('purchasing.order.read');
  });
});

it('a submit Temporal cannot take answers 503 and takes the order back, so it can be submitted again', async () => {
  const failing = await startTestApp();
  try {
    failing.client.workflow.start = async () => { throw new Error('14 UNAVAILABLE: connection refused'); };
    const s = await shop();
    const po = (await create(s.buyerKey, order()).expect(201)).body;
    const res = await failing.call('post', `/v1/purchase-orders/${po.id}/submit`, s.buyerKey).expect(503);
    expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
    expect((await PurchaseOrder.findByPk(po.id))!.toJSON()).toMatchObject({ state: 'draft', approvalFlowId: null });
    expect(await ApprovalFlow.count({ where: { tenantId: s.tenant.id } })).toBe(0);
    expect(await AuditEvent.count({ where: { tenantId: s.tenant.id, action: 'purchasing.order.submitted' } })).toBe(0);
    await app.call('post', `/v1/purchase-orders/${po.id}/submit`, s.buyerKey).expect(202);
  } finally {
    await failing.close();
  }
});
