// A worker killed in the middle of an approval flow: a new worker replays the flow's history and it
// finishes correctly — signatures kept, each email sent once, the order approved.
import { randomUUID } from 'node:crypto';
import { Delivery, Role, UserRole } from '../../db';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { crashStack } from '../helpers/crash-stack';
import { waitFor } from '../helpers/wait';
import { killWorker, spawnWorker } from '../helpers/worker-process';

const stack = crashStack();

const startWorker = () => spawnWorker({ WORKER_QUEUES: 'approvals,approval-notifications', SMTP_URL: stack.smtp.url });

it('finishes a flow after its worker was SIGKILLed part-way, with nothing lost and nothing sent twice', async () => {
  const { tenant, key: admin } = await buildCaller(['*']);
  const mk = async (key: string) => Role.create({ id: randomUUID(), tenantId: tenant.id, key, title: key, permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
  const [finance, cfo] = [await mk('finance'), await mk('cfo')];
  const people = await Promise.all(['f1', 'f2', 'c1'].map(async (n) => {
    const user = await buildUser(tenant, { name: n, email: `${n}-${randomUUID().slice(0, 6)}@example.com` });
    await UserRole.create({ userId: user.id, roleId: (n.startsWith('f') ? finance : cfo).id, tenantId: tenant.id });
    return { user, key: await buildApiKey(user) };
  }));
  const [f1, f2, c1] = people;
  await stack.app.call('post', '/v1/approval-templates', admin).send({
    name: 'PO', objectType: 'purchase_order',
    stages: [{ name: 'Finance', approvers: { roles: ['finance'] }, rule: 'all' }, { name: 'CFO', approvers: { roles: ['cfo'] }, rule: 'any' }],
  }).expect(201);

  const first = startWorker();
  const po = await stack.app.call('post', '/v1/purchase-orders', admin).send({ number: 'PO-CRASH-1', supplier: 'S', currency: 'EUR', lines: [{ description: 'x', quantity: 1, unitPrice: 100 }] }).expect(201);
  const flowId = (await stack.app.call('post', `/v1/purchase-orders/${po.body.id}/submit`, admin).expect(202)).body.approvalFlowId;
  await waitFor(async () => (await Delivery.count({ where: { subjectId: flowId, status: 'sent' } })) === 2, { what: 'stage 0 mails sent', timeoutMs: 60_000 });
  await stack.app.call('post', `/v1/approval-flows/${flowId}/sign`, f1.key).send({ decision: 'approve', comment: 'before the crash' }).expect(200);

  await killWorker(first);
  startWorker();

  // The new worker rebuilds the flow from its history: f1's signature is still there.
  const afterF2 = await stack.app.call('post', `/v1/approval-flows/${flowId}/sign`, f2.key).send({ decision: 'approve' }).expect(200);
  expect(afterF2.body.stages[0].signatures.map((s: { userId: string }) => s.userId).sort()).toEqual([f1.user.id, f2.user.id].sort());
  expect(afterF2.body.currentStage).toBe(1);
  // Finance is done: f1 is no approver of the CFO stage.
  expect((await stack.app.call('post', `/v1/approval-flows/${flowId}/sign`, f1.key).send({ decision: 'approve' }).expect(403)).body.code).toBe('NOT_AN_APPROVER');
  await stack.app.call('post', `/v1/approval-flows/${flowId}/sign`, c1.key).send({ decision: 'approve' }).expect(200);
  await waitFor(async () => (await stack.app.call('get', `/v1/purchase-orders/${po.body.id}`, admin)).body.state === 'approved', { what: 'order approved', timeoutMs: 60_000 });

  // Exactly one request email per approver and stage, across both workers (the requester's outcome notice, which
  // may or may not be out yet, is not one of them).
  const deliveries = (await Delivery.findAll({ where: { subjectId: flowId } })).filter((d) => !d.key.includes(':outcome:'));
  expect(deliveries.map((d) => d.recipient).sort()).toEqual([f1.user.email, f2.user.email, c1.user.email].sort());
  expect(deliveries.every((d) => d.status === 'sent')).toBe(true);
  const received = stack.smtp.messages.filter((m) => m.subject.includes('PO-CRASH-1') && !m.subject.startsWith('Your request'));
  expect(received).toHaveLength(3);
  const history = (await stack.app.call('get', `/v1/approval-flows/${flowId}/history`, admin).expect(200)).body.items;
  expect(history.filter((e: { type: string }) => e.type === 'signed')).toHaveLength(3);
  expect(new Set(history.map((e: { seq: number }) => e.seq)).size).toBe(history.length);
}, 150_000);
