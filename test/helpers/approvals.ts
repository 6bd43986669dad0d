// Approval test fixtures: a procurement tenant (buyer, finance, CFO, admin), its usual template, a submitted order.
import { randomUUID } from 'node:crypto';
import { Role, UserRole } from '../../db';
import type { TestApp } from './app';
import { buildApiKey, buildCaller, buildUser } from './factories';
import { waitFor } from './wait';

/** A tenant with a buyer, three finance approvers, a CFO, and an admin. */
export async function buildProcurementTenant() {
  const { tenant, key: adminKey } = await buildCaller(['*']);
  const role = async (key: string, permissions: string[]) => Role.create({ id: randomUUID(), tenantId: tenant.id, key, title: key, permissions });
  const finance = await role('finance', ['approvals.flow.sign', 'approvals.flow.read']);
  const cfo = await role('cfo', ['approvals.flow.sign', 'approvals.flow.read', 'approvals.flow.create']);
  const person = async (name: string, roleRow?: Role, extra: string[] = []) => {
    const user = await buildUser(tenant, { name, email: `${name}-${randomUUID().slice(0, 6)}@example.com`, permissions: extra });
    if (roleRow) await UserRole.create({ userId: user.id, roleId: roleRow.id, tenantId: tenant.id });
    return { user, key: await buildApiKey(user) };
  };
  const buyer = await person('buyer', undefined, ['purchasing.order.*', 'approvals.flow.read', 'approvals.flow.cancel', 'approvals.flow.sign']);
  const fin = [await person('fin1', finance), await person('fin2', finance), await person('fin3', finance)];
  const chief = await person('chief', cfo);
  return { tenant, adminKey, buyer, fin, chief, roles: { finance, cfo }, person };
}
export type ProcurementTenant = Awaited<ReturnType<typeof buildProcurementTenant>>;

/** Purchases over 1,000: a quorum of 2 in finance, then the CFO. */
export async function createApprovalTemplate(app: TestApp, adminKey: string, over: Record<string, unknown> = {}) {
  const res = await app.call('post', '/v1/approval-templates', adminKey).send({
    name: 'Purchases', objectType: 'purchase_order', condition: 'total > 1000',
    stages: [
      { name: 'Finance', approvers: { roles: ['finance'] }, rule: 'quorum', quorum: 2 },
      { name: 'CFO', approvers: { roles: ['cfo'] }, rule: 'any' },
    ],
    ...over,
  }).expect(201);
  return res.body;
}

export async function createOrder(app: TestApp, key: string, total = 5000) {
  return (await app.call('post', '/v1/purchase-orders', key).send({
    number: `PO-${randomUUID().slice(0, 8)}`, supplier: 'Contoso', currency: 'EUR', lines: [{ description: 'Laptop', quantity: 2, unitPrice: total / 2 }],
  }).expect(201)).body;
}

/** The buyer's order of `total`, submitted, once the worker has opened its first stage. */
export async function submitOrder(app: TestApp, t: ProcurementTenant, total = 5000) {
  const po = await createOrder(app, t.buyer.key, total);
  const submitted = await app.call('post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key).expect(202);
  expect(submitted.body.state).toBe('pending_approval');
  const flowId = submitted.body.approvalFlowId as string;
  const flow = await waitFor(async () => {
    const res = await app.call('get', `/v1/approval-flows/${flowId}`, t.adminKey).expect(200);
    return res.body.stages[0].status === 'active' && res.body;
  }, { what: 'stage 0 open' });
  return { po, flowId, flow };
}
