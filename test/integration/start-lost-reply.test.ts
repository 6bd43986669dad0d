// A start whose reply is lost (applied by Temporal, but the call failed: a deadline, a dropped connection)
// must not be undone: the workflow runs, so its row stays and the command succeeds
// (startBusinessWorkflow in lib/temporal.ts asks the server before giving up).
import { AuditExport, Reminder } from '../../db';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';

let app: TestApp;
const started: string[] = [];
beforeAll(async () => {
  app = await startTestApp();
  const realStart = app.client.workflow.start.bind(app.client.workflow);
  // The server applies the start; the caller sees an error instead of the reply.
  app.client.workflow.start = (async (...args: Parameters<typeof realStart>) => {
    const handle = await realStart(...args);
    started.push(handle.workflowId);
    throw new Error('4 DEADLINE_EXCEEDED: deadline exceeded');
  }) as typeof realStart;
});
afterAll(async () => {
  // No worker serves these here; end them so no later test's worker picks them up.
  await Promise.all(started.map((id) => app.client.workflow.getHandle(id).terminate('test over').catch(() => undefined)));
  await app.close();
});

it('an audit export whose start reply was lost is kept queued, and its workflow runs', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const res = await app.call('post', '/v1/audit-exports', key).send({}).expect(202);
  const row = await AuditExport.findOne({ where: { tenantId: tenant.id } });
  expect(row?.status).toBe('queued');
  expect(res.body.id).toBe(row?.id);
  expect(started).toContain(row?.workflowId);
  expect((await app.client.workflow.getHandle(row!.workflowId!).describe()).status.name).toBe('RUNNING');
});

it('a reminder whose start reply was lost is created, not taken back', async () => {
  const { tenant, user, key } = await buildCaller(['*']);
  const dueAt = new Date(Date.now() + 3_600_000).toISOString();
  const res = await app.call('post', '/v1/reminders', key).send({ subject: 'x', channels: ['in_app'], recipients: { users: [user.id] }, dueAt }).expect(201);
  const row = await Reminder.findOne({ where: { tenantId: tenant.id } });
  expect(row?.id).toBe(res.body.id);
  expect((await app.client.workflow.getHandle(row!.workflowId).describe()).status.name).toBe('RUNNING');
});
