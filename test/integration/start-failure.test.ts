// When Temporal cannot start a row's workflow, the command answers 503 and leaves no row waiting for a
// workflow that does not exist (startOrUndo in lib/temporal.ts), in every domain that starts one.
import { AuditEvent, AuditExport, ApprovalFlow, Document, DocumentBatch, DomainEvent, Reminder } from '../../db';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';

let app: TestApp;
/** While true, Temporal refuses every start from this app's client (reads and the rest still work). */
let refuseStarts = true;
const started: string[] = [];
beforeAll(async () => {
  app = await startTestApp();
  const realStart = app.client.workflow.start.bind(app.client.workflow);
  app.client.workflow.start = (async (...args: Parameters<typeof realStart>) => {
    if (refuseStarts) throw new Error('14 UNAVAILABLE: connection refused');
    const handle = await realStart(...args);
    started.push(handle.workflowId);
    return handle;
  }) as typeof realStart;
});
afterEach(() => { refuseStarts = true; });
afterAll(async () => {
  // No worker serves this file: end what it started.
  await Promise.all(started.map((id) => app.client.workflow.getHandle(id).terminate('test over').catch(() => undefined)));
  await app.close();
});

const unavailable = (res: { body: { code: string } }) => expect(res.body.code).toBe('SERVICE_UNAVAILABLE');

it('an audit export is kept as failed', async () => {
  const { tenant, key } = await buildCaller(['*']);
  unavailable(await app.call('post', '/v1/audit-exports', key).send({}).expect(503));
  expect((await AuditExport.findAll({ where: { tenantId: tenant.id } })).map((x) => x.status)).toEqual(['failed']);
});

it('a reminder, a document and a batch are taken back', async () => {
  const { tenant, user, key } = await buildCaller(['*']);
  const dueAt = new Date(Date.now() + 3_600_000).toISOString();
  unavailable(await app.call('post', '/v1/reminders', key).send({ subject: 'x', channels: ['in_app'], recipients: { users: [user.id] }, dueAt }).expect(503));
  expect(await Reminder.count({ where: { tenantId: tenant.id } })).toBe(0);
  // Its audit event was written with the row (one statement) and is taken back with it.
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, entityType: 'reminder' } })).toBe(0);

  await app.call('post', '/v1/document-templates', key).send({ code: 'inv', name: 'Invoice', parts: { base: '<p>{{ n }}</p>' } }).expect(201);
  unavailable(await app.call('post', '/v1/documents', key).send({ templateCode: 'inv', data: { n: 1 }, output: 'html' }).expect(503));
  unavailable(await app.call('post', '/v1/document-batches', key).send({ templateCode: 'inv', output: 'html', items: [{ data: { n: 1 } }, { data: { n: 2 } }] }).expect(503));
  expect(await Document.count({ where: { tenantId: tenant.id } })).toBe(0);
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, entityType: 'document' } })).toBe(0);
  expect(await DocumentBatch.count({ where: { tenantId: tenant.id } })).toBe(0);
  // The batch's event was written with its rows and is taken back with them.
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, entityType: 'document_batch' } })).toBe(0);
});

it('an approval flow is taken back, so the object can be submitted again', async () => {
  const { tenant, user, key } = await buildCaller(['*']);
  await app.call('post', '/v1/approval-templates', key).send({
    name: 'Any', objectType: 'contract', stages: [{ name: 'Boss', approvers: { users: [user.id] }, rule: 'any' }], allowSelfApproval: true,
  }).expect(201);
  const body = { objectType: 'contract', objectId: 'c-1', context: {} };
  unavailable(await app.call('post', '/v1/approval-flows', key).send(body).expect(503));
  unavailable(await app.call('post', '/v1/approval-flows', key).send(body).expect(503));
  expect(await ApprovalFlow.count({ where: { tenantId: tenant.id } })).toBe(0);
  // A purchase order whose submit failed stays a draft that may be submitted again.
  const po = (await app.call('post', '/v1/purchase-orders', key).send({ number: 'PO-503', supplier: 'S', currency: 'EUR', lines: [{ description: 'x', quantity: 1, unitPrice: 10 }] }).expect(201)).body;
  await app.call('post', '/v1/approval-templates', key).send({
    name: 'Orders', objectType: 'purchase_order', stages: [{ name: 'Boss', approvers: { users: [user.id] }, rule: 'any' }], allowSelfApproval: true,
  }).expect(201);
  unavailable(await app.call('post', `/v1/purchase-orders/${po.id}/submit`, key).expect(503));
  expect((await app.call('get', `/v1/purchase-orders/${po.id}`, key).expect(200)).body).toMatchObject({ state: 'draft', approvalFlowId: null });
  // The submit's event was written with the order's change, and is taken back with it.
  const submits = () => AuditEvent.findAll({ where: { tenantId: tenant.id, action: 'purchasing.order.submitted', entityId: po.id } });
  expect(await submits()).toHaveLength(0);

  // Temporal is back: both are submitted again, each with one flow whose workflow runs.
  refuseStarts = false;
  const flow = (await app.call('post', '/v1/approval-flows', key).send(body).expect(201)).body;
  expect(flow).toMatchObject({ objectType: 'contract', objectId: 'c-1', status: 'pending' });
  const submitted = (await app.call('post', `/v1/purchase-orders/${po.id}/submit`, key).expect(202)).body;
  expect(submitted.state).toBe('pending_approval');
  const flows = await ApprovalFlow.findAll({ where: { tenantId: tenant.id } });
  expect(flows.map((f) => f.id).sort()).toEqual([flow.id, submitted.approvalFlowId].sort());
  for (const f of flows) expect((await app.client.workflow.getHandle(f.workflowId).describe()).status.name).toBe('RUNNING');
  expect((await submits()).map((e) => [e.before, e.after])).toEqual([[{ state: 'draft' }, { state: 'pending_approval', approvalFlowId: submitted.approvalFlowId }]]);
  // Its domain event (purchase_order.state_changed) was taken back with the refused submit, and written with this one.
  expect(await DomainEvent.count({ where: { tenantId: tenant.id, type: 'purchase_order.state_changed', subjectId: po.id } })).toBe(1);
});
