// Dependencies going down on the real stack: Postgres and Temporal behind loopback TCP proxies that the
// test cuts (every connection reset, new ones refused) and restores. Accepted work survives an outage;
// requests made during one answer a quick 503 with Retry-After and change nothing.
import { randomUUID } from 'node:crypto';
import { Document, JobSchedule, Reminder, Role, UserRole } from '../../db';
import { API_DB_ACQUIRE_TIMEOUT_MS } from '../../api/server';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { hostPort, startTcpProxy, TcpProxy, viaProxy } from '../helpers/tcp-proxy';
import { waitFor } from '../helpers/wait';

let app: TestApp;
let pg: TcpProxy;
let temporal: TcpProxy;

beforeAll(async () => {
  const db = hostPort(process.env.DATABASE_URL!);
  const t = hostPort(process.env.TEMPORAL_ADDRESS!);
  pg = await startTcpProxy(db.host, db.port);
  temporal = await startTcpProxy(t.host, t.port);
  // The API and the worker of this file reach both only through the proxies.
  app = await startTestApp({ DATABASE_URL: viaProxy(process.env.DATABASE_URL!, pg), TEMPORAL_ADDRESS: temporal.address }, { sequelize: { acquireTimeoutMs: API_DB_ACQUIRE_TIMEOUT_MS } });
});
afterAll(async () => {
  await pg.restore();
  await temporal.restore();
  await app.close();
  await pg.close();
  await temporal.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let workerStarted = false;
/** The worker starts once per file: the first test starts it during its outage. */
async function ensureWorker() {
  if (!workerStarted) await app.startWorker();
  workerStarted = true;
}
const template = (key: string) => app.call('post', '/v1/document-templates', key).send({ code: `note-${randomUUID().slice(0, 8)}`, name: 'Note', parts: { base: '<p>{{ text }}</p>' } }).expect(201);

/** A request during an outage: a 503 problem with Retry-After, within `withinMs`. */
async function refusedQuickly(req: () => PromiseLike<{ status: number; headers: Record<string, string>; body: { code?: string } }>, withinMs = 3_000) {
  const t0 = Date.now();
  const res = await req();
  const ms = Date.now() - t0;
  expect([res.status, res.body.code, Number(res.headers['retry-after']) > 0]).toEqual([503, 'SERVICE_UNAVAILABLE', true]);
  expect(ms).toBeLessThan(withinMs);
  return res;
}

describe('a database outage', () => {
  it('does not fail accepted documents: the jobs wait it out and end ready', async () => {
    const { key, tenant } = await buildCaller(['*']);
    const t = (await template(key)).body;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await app.call('post', '/v1/documents', key).send({ templateCode: t.code, data: { text: `n${i}` }, output: 'html' }).expect(202)).body.id);
    // The jobs' first attempts meet the outage: the worker starts while Postgres is cut, for 20 s.
    await pg.cut();
    expect(workerStarted).toBe(false);
    await ensureWorker();
    await sleep(20_000);
    await pg.restore();
    const docs = await waitFor(async () => {
      const rows = await Document.findAll({ where: { tenantId: tenant.id } }).catch(() => []);
      return rows.length === 3 && rows.every((d) => d.status === 'ready' || d.status === 'failed') && rows;
    }, { what: 'documents finished', timeoutMs: 90_000 });
    expect(docs.map((d) => [d.status, d.error])).toEqual(ids.map(() => ['ready', null]));
    // Retried past the five attempts that used to make such a job fail for good.
    const history = await app.client.workflow.getHandle(docs[0].workflowId).fetchHistory();
    const attempts = history.events!.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt ?? 0] : []));
    expect(Math.max(...attempts)).toBeGreaterThan(5);
  });

  it('answers 503 with Retry-After within seconds, and /ready names Postgres', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await template(key)).body;
    await pg.cut();
    try {
      await refusedQuickly(() => app.call('post', '/v1/documents', key).send({ templateCode: t.code, data: { text: 'x' } }));
      await refusedQuickly(() => app.call('get', '/v1/documents', key));
      const t0 = Date.now();
      const ready = await app.call('get', '/ready').expect(503);
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(ready.body).toMatchObject({ status: 'unavailable', checks: { postgres: 'down', temporal: 'ok' } });
      expect(Number(ready.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await pg.restore();
    }
    // Back: the next requests are served again.
    await waitFor(async () => (await app.call('get', '/v1/documents', key)).status === 200, { what: 'served again' });
    await app.call('get', '/ready').expect(200);
  });
});

describe('a Temporal outage', () => {
  it('answers commands 503 with Retry-After within seconds, writing nothing; /ready names Temporal', async () => {
    await ensureWorker();
    const { tenant, key, user } = await buildCaller(['*']);
    const t = (await template(key)).body;
    // A reminder and an approval flow waiting for a signature, made while Temporal is up.
    const reminder = (await app.call('post', '/v1/reminders', key).send({ subject: 'Renew', channels: ['email'], recipients: { emails: ['ops@example.com'] }, dueAt: new Date(Date.now() + 86_400_000).toISOString() }).expect(201)).body;
    const finance = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'finance', title: 'Finance', permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
    const approver = await buildUser(tenant, { name: 'Fin', email: `fin-${randomUUID().slice(0, 6)}@example.com` });
    await UserRole.create({ userId: approver.id, roleId: finance.id, tenantId: tenant.id });
    const approverKey = await buildApiKey(approver);
    await app.call('post', '/v1/approval-templates', key).send({ name: 'All', objectType: 'purchase_order', stages: [{ name: 'Finance', approvers: { roles: ['finance'] }, rule: 'any' }] }).expect(201);
    const po = (await app.call('post', '/v1/purchase-orders', key).send({ number: `PO-${randomUUID().slice(0, 8)}`, supplier: 'Contoso', currency: 'EUR', lines: [{ description: 'Desk', quantity: 1, unitPrice: 300 }] }).expect(201)).body;
    const flowId = (await app.call('post', `/v1/purchase-orders/${po.id}/submit`, key).expect(202)).body.approvalFlowId;
    await waitFor(async () => (await app.call('get', `/v1/approval-flows/${flowId}`, key).expect(200)).body.stages[0].status === 'active', { what: 'stage open' });
    expect(user.id).not.toBe(approver.id);

    await temporal.cut();
    try {
      await refusedQuickly(() => app.call('post', '/v1/documents', key).send({ templateCode: t.code, data: { text: 'x' } }));
      await refusedQuickly(() => app.call('post', '/v1/reminders', key).send({ subject: 'New', channels: ['email'], recipients: { emails: ['ops@example.com'] }, dueAt: new Date(Date.now() + 86_400_000).toISOString() }));
      await refusedQuickly(() => app.call('post', `/v1/reminders/${reminder.id}/pause`, key));
      await refusedQuickly(() => app.call('post', `/v1/approval-flows/${flowId}/sign`, approverKey).send({ decision: 'approve' }));
      await refusedQuickly(() => app.call('post', '/v1/job-schedules', key).send({ name: 'purge', jobType: 'audit.retention_purge', params: { olderThanDays: 30 }, cron: '0 3 * * *', timezone: 'UTC' }));
      const t0 = Date.now();
      const ready = await app.call('get', '/ready').expect(503);
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(ready.body).toMatchObject({ status: 'unavailable', checks: { postgres: 'ok', temporal: 'down' } });
      // Nothing half-written: no document, no new reminder, no schedule; the reminder and the flow as they were.
      expect(await Document.count({ where: { tenantId: tenant.id } })).toBe(0);
      expect((await Reminder.findAll({ where: { tenantId: tenant.id } })).map((r) => [r.id, r.status])).toEqual([[reminder.id, 'active']]);
      expect(await JobSchedule.count({ where: { tenantId: tenant.id } })).toBe(0);
      expect((await app.call('get', `/v1/approval-flows/${flowId}`, key).expect(200)).body).toMatchObject({ status: 'pending', stages: [{ status: 'active' }] });
    } finally {
      await temporal.restore();
    }
    // Back: commands are served again.
    await waitFor(async () => (await app.call('post', `/v1/reminders/${reminder.id}/pause`, key)).status === 200, { what: 'served again', timeoutMs: 60_000 });
    await app.call('post', '/v1/documents', key).send({ templateCode: t.code, data: { text: 'y' } }).expect(202);
  });
});
