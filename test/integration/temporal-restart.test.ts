// The Temporal server SIGKILLed while reminders and an approval stage wait on durable timers, then started
// again on the same database file: every timer fires, and each fires once.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Delivery, Notification, Role, UserRole } from '../../db';
import { freePort, RunningTemporal, startTemporalDevServer } from '../../scripts/stack';
import { buildCaller, buildUser } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { SmtpSink, startSmtpSink } from '../helpers/smtp-sink';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, spawnWorker } from '../helpers/worker-process';

// This file's own dev server, on a SQLite file (the run's shared one keeps its state in memory).
let dir: string;
let port: number;
let temporal: RunningTemporal;
let app: TestApp;
let smtp: SmtpSink;
const start = () => startTemporalDevServer({ port, dbFile: path.join(dir, 'temporal.db') });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-temporal-restart-'));
  port = await freePort();
  temporal = await start();
  smtp = await startSmtpSink();
  app = await startTestApp({ TEMPORAL_ADDRESS: temporal.address });
});
afterAll(async () => {
  killAllWorkers();
  // Ending this file's workflows needs the server: back up if a failure left it down.
  if (temporal.process.exitCode !== null || temporal.process.signalCode !== null) temporal = await start();
  await app.close();
  await smtp.close();
  await temporal.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('fires every pending timer once after the Temporal server was SIGKILLed and restarted on its database', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const ada = await buildUser(tenant, { email: `ada-${randomUUID().slice(0, 6)}@example.com` });
  const mk = async (roleKey: string, name: string) => {
    const role = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: roleKey, title: roleKey, permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
    const user = await buildUser(tenant, { name, email: `${name}-${randomUUID().slice(0, 6)}@example.com` });
    await UserRole.create({ userId: user.id, roleId: role.id, tenantId: tenant.id });
    return user;
  };
  const [finance, cfo] = [await mk('finance', 'fin'), await mk('cfo', 'cfo')];
  const tag = randomUUID().slice(0, 8);
  const worker = spawnWorker({ TEMPORAL_ADDRESS: temporal.address, WORKER_QUEUES: 'reminders,approvals,approval-notifications', SMTP_URL: smtp.url });

  const timerStarted = async (workflowId: string) => ((await app.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).some((e) => e.timerStartedEventAttributes);
  // Due well after the kill, so their timers are pending in the server when it dies.
  const leadMs = 20_000;
  // An approval stage that escalates to the CFO at its due time; once its timer is started, the worker is up.
  await app.call('post', '/v1/approval-templates', key).send({
    name: 'Escalating', objectType: 'contract',
    stages: [{ name: 'Finance', approvers: { roles: ['finance'] }, rule: 'any', dueHours: leadMs / 3_600_000, onDue: { action: 'escalate', escalateTo: { roles: ['cfo'] } } }],
  }).expect(201);
  const flow = (await app.call('post', '/v1/approval-flows', key).send({ objectType: 'contract', objectId: `c-${tag}`, title: `Contract ${tag}` }).expect(201)).body as { id: string; workflowId: string };
  await waitFor(() => timerStarted(flow.workflowId), { what: 'the stage waiting on its due time', timeoutMs: 60_000, intervalMs: 100 });
  const flowDueAt = await waitFor(async () => (await app.call('get', `/v1/approval-flows/${flow.id}`, key).expect(200)).body.stages[0].dueAt as string | undefined, { what: 'the stage due time' });
  const dueAt = new Date(Date.now() + leadMs).toISOString();
  const reminders = await Promise.all([0, 1, 2].map(async (n) => (await app.call('post', '/v1/reminders', key).send({
    subject: `restart-${tag}-${n}`, channels: ['email', 'in_app'], dueAt, recipients: { users: [ada.id] },
  }).expect(201)).body as { id: string; workflowId: string }));
  await waitFor(async () => (await Promise.all(reminders.map((r) => timerStarted(r.workflowId)))).every(Boolean), { what: 'every reminder waiting on its timer', intervalMs: 100 });

  const gone = new Promise((resolve) => temporal.process.once('exit', resolve));
  temporal.process.kill('SIGKILL');
  await gone;
  expect(Date.now()).toBeLessThan(Math.min(Date.parse(dueAt), Date.parse(flowDueAt))); // died with the timers pending
  temporal = await start();

  // Every reminder delivered on both channels, once.
  const ids = reminders.map((r) => r.id);
  await waitFor(async () => {
    const states = await Promise.all(ids.map(async (id) => (await app.call('get', `/v1/reminders/${id}`, key).expect(200)).body.status));
    return states.every((s) => s === 'completed');
  }, { what: 'every reminder completed after the restart', timeoutMs: 60_000 });
  const deliveries = await Delivery.findAll({ where: { subjectId: ids } });
  expect(deliveries).toHaveLength(ids.length * 2);
  expect(deliveries.every((d) => d.status === 'sent')).toBe(true);
  expect(await Notification.count({ where: { userId: ada.id } })).toBe(ids.length);
  const mails = smtp.messages.filter((m) => m.subject.includes(`restart-${tag}`));
  expect(mails.map((m) => m.subject).sort()).toEqual(ids.map((_, n) => `Reminder: restart-${tag}-${n}`));

  // The stage escalated at its due time, once: one escalation email to the CFO, one escalation in history.
  await smtp.waitFor((m) => m.to.includes(finance.email) && m.subject.includes(tag), 30_000);
  await smtp.waitFor((m) => m.to.includes(cfo.email) && m.subject.includes(tag), 60_000);
  const history = await waitFor(async () => {
    const items = (await app.call('get', `/v1/approval-flows/${flow.id}/history`, key).expect(200)).body.items as { type: string }[];
    return items.some((e) => e.type === 'escalated') && items;
  }, { what: 'the escalation in the flow history' });
  expect(history.filter((e) => e.type === 'escalated')).toHaveLength(1);
  expect(smtp.messages.filter((m) => m.to.includes(cfo.email) && m.subject.includes(tag))).toHaveLength(1);

  // The worker rode out the outage: the same process did all of it.
  expect(worker.exitCode).toBeNull();
}, 120_000);
