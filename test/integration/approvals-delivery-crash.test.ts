// A worker SIGKILLed the moment the SMTP server accepted a stage's first approval email, before the
// delivery was recorded: the retried notification sends every approver their email, and the only copies
// are of emails the dead attempt had handed to the server, each with the same Message-ID.
import { randomUUID } from 'node:crypto';
import { Delivery, Role, UserRole } from '../../db';
import { IDEMPOTENCY_HEADER } from '../../lib/notify/email';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { crashStack } from '../helpers/crash-stack';
import type { ReceivedMail } from '../helpers/smtp-sink';
import { waitFor } from '../helpers/wait';
import { killWorker, spawnWorker } from '../helpers/worker-process';

const stack = crashStack();

// Each worker logs in to the sink under its own name, so every message says which process sent it.
const startWorker = (login: string) => spawnWorker({ WORKER_QUEUES: 'approvals,approval-notifications', SMTP_URL: stack.smtp.urlFor(login) });

it('after a SIGKILL between the SMTP 250 and the record, every approver is mailed, and only unrecorded emails twice, with one Message-ID', async () => {
  const { tenant, key: admin } = await buildCaller(['*']);
  const role = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'finance', title: 'Finance', permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
  const approvers = await Promise.all([1, 2, 3].map(async (n) => {
    const user = await buildUser(tenant, { name: `f${n}`, email: `f${n}-${randomUUID().slice(0, 6)}@example.com` });
    await UserRole.create({ userId: user.id, roleId: role.id, tenantId: tenant.id });
    return { user, key: await buildApiKey(user) };
  }));
  await stack.app.call('post', '/v1/approval-templates', admin).send({
    name: 'PO', objectType: 'purchase_order', stages: [{ name: 'Finance', approvers: { roles: ['finance'] }, rule: 'all' }],
  }).expect(201);
  const number = `PO-MAILCRASH-${randomUUID().slice(0, 6)}`;
  const isOurs = (m: ReceivedMail) => m.subject.includes(number);

  // The first of the stage's emails the server accepts: the worker dies before its 250 goes out.
  const first = startWorker('w1');
  let accepted: ReceivedMail | undefined;
  const killed = new Promise<void>((resolve, reject) => {
    stack.smtp.onAccepted(async (m) => {
      if (!isOurs(m) || accepted) return;
      accepted = m;
      await killWorker(first).then(resolve, reject);
    });
  });
  const po = await stack.app.call('post', '/v1/purchase-orders', admin).send({ number, supplier: 'S', currency: 'EUR', lines: [{ description: 'x', quantity: 1, unitPrice: 100 }] }).expect(201);
  const flowId = (await stack.app.call('post', `/v1/purchase-orders/${po.body.id}/submit`, admin).expect(202)).body.approvalFlowId as string;
  await killed;
  stack.smtp.onAccepted(undefined);
  const atCrash = new Map((await Delivery.findAll({ where: { subjectId: flowId } })).map((r) => [r.key, r.status]));
  const acceptedKey = accepted!.headers[IDEMPOTENCY_HEADER.toLowerCase()];
  expect(atCrash.get(acceptedKey)).toBe('pending');

  // The retry comes once the dead attempt's heartbeat times out (1 minute).
  startWorker('w2');
  const rows = await waitFor(async () => {
    const r = await Delivery.findAll({ where: { subjectId: flowId } });
    return r.length === approvers.length && r.every((d) => d.status === 'sent') && r;
  }, { what: 'every approval email recorded sent', timeoutMs: 200_000 });

  const mails = stack.smtp.messages.filter(isOurs);
  const byKey = new Map<string, ReceivedMail[]>();
  for (const m of mails) byKey.set(m.headers[IDEMPOTENCY_HEADER.toLowerCase()], [...(byKey.get(m.headers[IDEMPOTENCY_HEADER.toLowerCase()]) ?? []), m]);
  // Every approver got the email, and each delivery row names the Message-ID they got.
  expect(mails.map((m) => m.to[0]).filter((to, i, all) => all.indexOf(to) === i).sort()).toEqual(approvers.map((a) => a.user.email).sort());
  expect([...byKey.keys()].sort()).toEqual(rows.map((r) => r.key).sort());
  for (const r of rows) expect(byKey.get(r.key)!.map((m) => m.headers['message-id'])).toContain(r.providerId);
  // The bound: a second copy only of an email the dead attempt had handed to the server and not recorded,
  // sent by the retry, with the same Message-ID (the receiving side can drop it).
  for (const [k, copies] of byKey) {
    expect(copies.length).toBeLessThanOrEqual(2);
    if (copies.length === 2) {
      expect(atCrash.get(k)).not.toBe('sent');
      expect(copies.map((c) => c.login)).toEqual(['w1', 'w2']);
      expect(copies[1].headers['message-id']).toBe(copies[0].headers['message-id']);
    }
  }
  const handedOver = mails.filter((m) => m.login === 'w1').length;
  expect(mails.length - approvers.length).toBeLessThanOrEqual(handedOver);
  // The email accepted at the kill went again: the worker never heard the 250, and a sender cannot tell
  // that from an email the server never got.
  expect(byKey.get(acceptedKey)!.map((c) => c.login)).toEqual(['w1', 'w2']);

  // The flow goes on: the approvers sign and the order is approved.
  for (const a of approvers) await stack.app.call('post', `/v1/approval-flows/${flowId}/sign`, a.key).send({ decision: 'approve' }).expect(200);
  await waitFor(async () => (await stack.app.call('get', `/v1/purchase-orders/${po.body.id}`, admin)).body.state === 'approved', { what: 'order approved', timeoutMs: 15_000 });
}, 300_000);
