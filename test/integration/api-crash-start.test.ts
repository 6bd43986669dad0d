// The API process SIGKILLed between committing a row and starting its workflow (an audit export, a
// purchase-order submit, a reminder, a document, a document batch, an import, a campaign send, a subscriber export): the rows and their start intents are left with no workflow, and the
// start reconciler — a system Schedule run by a real worker process — starts exactly one workflow for each,
// after which what the user sees ends as it would have without the crash. A job schedule is made the other
// way round (in Temporal, then its row committed): killed in between, the schedule left without a row is deleted.
import { randomUUID } from 'node:crypto';
import { ScheduleNotFoundError } from '@temporalio/client';
import {
  AuditEvent, AuditExport, Campaign, Document, DocumentBatch, ImportRun, JobSchedule, Notification, PurchaseOrder, Reminder, Role, Subscriber, SubscriberExport, UserRole, WorkflowStartIntent,
} from '../../db';
import { freePort } from '../../scripts/stack';
import { workflowRunState } from '../../lib/temporal';
import { RECONCILE_STARTS_SCHEDULE_ID } from '../../workflows/system.api';
import { killAllApiProcesses, startApiProcess, waitForHealth } from '../helpers/api-process';
import { startTestApp, TestApp } from '../helpers/app';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { verifiedSenderDomain } from '../helpers/sender-domains';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, spawnWorker } from '../helpers/worker-process';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  killAllApiProcesses();
  killAllWorkers();
  // The system Schedule and its runs belong to no tenant: this file ends them itself.
  await app.client.schedule.getHandle(RECONCILE_STARTS_SCHEDULE_ID).delete().catch(() => undefined);
  for await (const wf of app.client.workflow.list({ query: `WorkflowType = "reconcileStartsWorkflow" AND ExecutionStatus = "Running"` })) {
    await app.client.workflow.getHandle(wf.workflowId).terminate('test file finished').catch(() => undefined);
  }
  await app.close();
});

/**
 * Sends one request to an API process that SIGKILLs itself right after the request's row is committed and
 * before its workflow is started; resolves once the process is gone (the request gets no answer).
 */
/** `body` may be a function, called once the API is up: a time in it is then relative to the request, not to a slow start. */
async function crashingRequest(path: string, key: string, body: unknown): Promise<void> {
  const port = await freePort();
  const api = startApiProcess({ PORT: String(port), DOCKET_TEST_CRASH_BEFORE_WORKFLOW_START: 'true' });
  await waitForHealth(`http://127.0.0.1:${port}`, api.exited);
  const answer = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST', headers: { 'X-API-Key': key, 'Content-Type': 'application/json' }, body: JSON.stringify(typeof body === 'function' ? (body as () => unknown)() : body),
  }).then((r) => `answered ${r.status}`, () => 'no answer');
  expect(answer).toBe('no answer');
  expect(await api.exited).toBeNull();
  expect(api.child.signalCode).toBe('SIGKILL');
}

const workflowExists = async (workflowId: string) => await workflowRunState(app.client, workflowId) !== 'none';

async function executionsOf(workflowId: string): Promise<string[]> {
  const runs: string[] = [];
  for await (const wf of app.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(wf.runId);
  return runs;
}

test('the starts that went through remove their intents within a moment (together): none is left for the reconciler', async () => {
  const { key } = await buildCaller(['*']);
  const ids = await Promise.all(Array.from({ length: 30 }, async () => (await app.call('post', '/v1/audit-exports', key).send({}).expect(202)).body.id as string));
  const workflowIds = (await AuditExport.findAll({ where: { id: ids } })).map((x) => x.workflowId!);
  expect(workflowIds).toHaveLength(30);
  await waitFor(async () => (await WorkflowStartIntent.count({ where: { workflowId: workflowIds } })) === 0, { what: 'intents removed', timeoutMs: 2_000 });
  for (const id of workflowIds) expect(await workflowExists(id)).toBe(true);
  // No worker here runs them; the one this file starts later must not either.
  for (const id of workflowIds) await app.client.workflow.getHandle(id).terminate('test finished');
});

it('starts exactly one workflow for each row whose start the API died before making, each ends as the user expects, and a job schedule left without its row is deleted', async () => {
  const { tenant, user, key: admin } = await buildCaller(['*']);
  const finance = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'finance', title: 'Finance', permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
  const approver = await buildUser(tenant, { email: `fin-${randomUUID().slice(0, 6)}@example.com` });
  await UserRole.create({ userId: approver.id, roleId: finance.id, tenantId: tenant.id });
  const approverKey = await buildApiKey(approver);
  await app.call('post', '/v1/approval-templates', admin).send({
    name: 'PO', objectType: 'purchase_order', stages: [{ name: 'Finance', approvers: { roles: ['finance'] }, rule: 'any' }],
  }).expect(201);
  const po = (await app.call('post', '/v1/purchase-orders', admin).send({
    number: 'PO-API-CRASH', supplier: 'S', currency: 'EUR', lines: [{ description: 'x', quantity: 1, unitPrice: 100 }],
  }).expect(201)).body as { id: string };

  const template = (await app.call('post', '/v1/document-templates', admin).send({
    code: 'crash-note', name: 'Note', parts: { base: '<p>{{ n }}</p>' },
  }).expect(201)).body as { code: string };
  const csv = (await app.call('post', '/v1/files', admin).attach('file', Buffer.from('email,name\nada@example.com,Ada\nbob@example.com,Bob\n'), { filename: 'contacts.csv', contentType: 'text/csv' }).expect(201)).body as { id: string };

  // Each command to an API that dies between its commit and its start (one process each).
  await crashingRequest('/v1/audit-exports', admin, {});
  await crashingRequest('/v1/documents', admin, { templateCode: template.code, output: 'html', data: { n: 'single' } });
  await crashingRequest('/v1/document-batches', admin, { templateCode: template.code, output: 'html', items: [{ data: { n: 1 } }, { data: { n: 2 } }] });
  await crashingRequest(`/v1/purchase-orders/${po.id}/submit`, admin, {});
  await crashingRequest('/v1/reminders', admin, () => ({ subject: 'after the crash', channels: ['in_app'], recipients: { users: [user.id] }, dueAt: new Date(Date.now() + 8_000).toISOString() }));
  await crashingRequest('/v1/imports', admin, { fileId: csv.id, target: 'subscribers', columns: [{ source: 'email', field: 'email' }, { source: 'name', field: 'name' }] });
  const audience = (await app.call('post', '/v1/lists', admin).send({ name: 'crash list' }).expect(201)).body as { id: string };
  await app.call('post', '/v1/subscribers', admin).send({ email: 'cleo@example.com', name: 'Cleo', listIds: [audience.id] }).expect(201);
  await verifiedSenderDomain(app.sequelize, tenant.id, 'example.com');
  const campaign = (await app.call('post', '/v1/campaigns', admin).send({
    name: 'after the crash', subject: 'Hi {{ subscriber.name }}', fromEmail: 'news@example.com', html: '<p>Hi</p>', audience: { listIds: [audience.id] },
  }).expect(201)).body as { id: string };
  await crashingRequest(`/v1/campaigns/${campaign.id}/send`, admin, {});
  await crashingRequest('/v1/subscriber-exports', admin, {});
  await crashingRequest('/v1/job-schedules', admin, { name: 'never committed', jobType: 'housekeeping.expired_keys', cron: '0 3 * * *' });

  // What the crash left: each row committed with its start intent, and no workflow anywhere.
  const exportRow = (await AuditExport.findOne({ where: { tenantId: tenant.id } }))!;
  const order = (await PurchaseOrder.findByPk(po.id))!;
  const reminder = (await Reminder.findOne({ where: { tenantId: tenant.id } }))!;
  const doc = (await Document.findOne({ where: { tenantId: tenant.id, batchId: null } }))!;
  const batch = (await DocumentBatch.findOne({ where: { tenantId: tenant.id } }))!;
  const run = (await ImportRun.findOne({ where: { tenantId: tenant.id } }))!;
  const sending = (await Campaign.findOne({ where: { tenantId: tenant.id, id: campaign.id } }))!;
  const subscribersOut = (await SubscriberExport.findOne({ where: { tenantId: tenant.id } }))!;
  expect([exportRow.status, order.state, reminder.status, doc.status, batch.status, run.phase, sending.status, subscribersOut.status])
    .toEqual(['queued', 'pending_approval', 'active', 'queued', 'queued', 'parsing', 'running', 'queued']);
  const flow = (await app.call('get', `/v1/approval-flows/${order.approvalFlowId}`, admin).expect(200)).body as { id: string; status: string; workflowId: string };
  expect(flow.status).toBe('pending');
  const workflowIds = [exportRow.workflowId!, flow.workflowId, reminder.workflowId, doc.workflowId, batch.workflowId, run.workflowId, sending.workflowId!, subscribersOut.workflowId];
  expect((await WorkflowStartIntent.findAll({ where: { workflowId: workflowIds } })).map((i) => i.workflowId).sort()).toEqual([...workflowIds].sort());
  for (const id of workflowIds) expect(await workflowExists(id)).toBe(false);
  // The job schedule: in Temporal, with no row (the transaction never committed), so not in the list either.
  expect(await JobSchedule.count({ where: { tenantId: tenant.id } })).toBe(0);
  expect((await app.call('get', '/v1/job-schedules', admin).expect(200)).body.items).toEqual([]);
  const orphans: string[] = [];
  for await (const s of app.client.schedule.list()) if (s.scheduleId.startsWith(`jobs:${tenant.id}:`)) orphans.push(s.scheduleId);
  expect(orphans).toHaveLength(1);

  // A worker serving the system queue makes sure of the reconciler's Schedule at boot (here every 2 s,
  // acting on intents older than 1 s), and serves the domains.
  spawnWorker({ WORKER_QUEUES: 'system,audit,approvals,approval-notifications,reminders,documents,imports,campaigns', RECONCILE_STARTS_EVERY_SECONDS: '2', RECONCILE_STARTS_GRACE_SECONDS: '1' });

  // The document and both batch items are rendered, the batch done; the flow asks its approver, whose signature approves the order;
  // the reminder falls due and is delivered in the app.
  await waitFor(async () => (await app.call('get', `/v1/audit-exports/${exportRow.id}`, admin).expect(200)).body.status === 'ready', { what: 'export ready', timeoutMs: 60_000 });
  await waitFor(async () => (await app.call('get', `/v1/documents/${doc.id}`, admin).expect(200)).body.status === 'ready', { what: 'document ready', timeoutMs: 60_000 });
  const done = await waitFor(async () => {
    const b = (await app.call('get', `/v1/document-batches/${batch.id}`, admin).expect(200)).body;
    return b.status === 'ready' ? b : undefined;
  }, { what: 'batch ready', timeoutMs: 60_000 });
  expect(done).toMatchObject({ total: 2, done: 2, failed: 0 });
  await waitFor(async () => (await app.call('get', `/v1/approval-flows/${flow.id}`, admin).expect(200)).body.stages[0].approvers.length > 0, { what: 'flow at its first stage', timeoutMs: 60_000 });
  await app.call('post', `/v1/approval-flows/${flow.id}/sign`, approverKey).send({ decision: 'approve' }).expect(200);
  await waitFor(async () => (await app.call('get', `/v1/purchase-orders/${po.id}`, admin).expect(200)).body.state === 'approved', { what: 'order approved', timeoutMs: 60_000 });
  await waitFor(async () => (await app.call('get', `/v1/reminders/${reminder.id}`, admin).expect(200)).body.status === 'completed', { what: 'reminder delivered', timeoutMs: 60_000 });
  expect(await Notification.count({ where: { tenantId: tenant.id, userId: user.id, sourceType: 'reminder' } })).toBe(1);
  await waitFor(async () => (await app.call('get', `/v1/imports/${run.id}`, admin).expect(200)).body.phase === 'finished', { what: 'import finished', timeoutMs: 60_000 });
  expect((await Subscriber.findAll({ where: { tenantId: tenant.id, importId: run.id } })).map((s) => s.email).sort()).toEqual(['ada@example.com', 'bob@example.com']);
  // The campaign is sent (the worker has no SMTP server: its mail is logged) to its one subscriber.
  const sent = await waitFor(async () => { const c = (await app.call('get', `/v1/campaigns/${campaign.id}`, admin).expect(200)).body; return c.status === 'finished' && c; }, { what: 'campaign finished', timeoutMs: 60_000 });
  expect(sent.stats).toMatchObject({ audienceSize: 1, sent: 1 });
  // The subscriber export is written (Cleo at least; the import's two too if it ran first).
  const exported = await waitFor(async () => { const x = (await app.call('get', `/v1/subscriber-exports/${subscribersOut.id}`, admin).expect(200)).body; return x.status === 'ready' && x; }, { what: 'subscriber export ready', timeoutMs: 60_000 });
  expect(exported.rowsWritten).toBeGreaterThanOrEqual(1);
  await waitFor(async () => app.client.schedule.getHandle(orphans[0]).describe().then(() => false, (err: unknown) => {
    if (err instanceof ScheduleNotFoundError) return true;
    throw err;
  }), { what: 'orphan job schedule deleted', timeoutMs: 30_000 });

  // Two more reconciler runs after all that: each row still has exactly one workflow execution, the
  // intents are gone, and each recovery was audited once, by the system.
  const schedule = app.client.schedule.getHandle(RECONCILE_STARTS_SCHEDULE_ID);
  const taken = (await schedule.describe()).info.numActionsTaken;
  await waitFor(async () => (await schedule.describe()).info.numActionsTaken >= taken + 2, { what: 'two more reconciler runs', timeoutMs: 30_000 });
  const last = (await schedule.describe()).info.recentActions.at(-1)!.action.workflow.workflowId;
  await app.client.workflow.getHandle(last).result();
  for (const id of workflowIds) expect(await executionsOf(id)).toHaveLength(1);
  expect(await WorkflowStartIntent.count({ where: { workflowId: workflowIds } })).toBe(0);
  const recovered = await AuditEvent.findAll({ where: { tenantId: tenant.id, action: 'system.workflow.start_recovered' } });
  expect(recovered.map((e) => e.workflowId).sort()).toEqual([...workflowIds].sort());
  expect(recovered.every((e) => e.actorType === 'system')).toBe(true);
  const removed = await AuditEvent.findAll({ where: { tenantId: tenant.id, action: 'system.job_schedule.orphan_removed' } });
  expect(removed.map((e) => [e.entityId, e.actorType])).toEqual([[orphans[0].split(':')[2], 'system']]);
}, 180_000);

it('starts the revert of an import whose start the API died before making: reverted once, its start audited as recovered', async () => {
  spawnWorker({ WORKER_QUEUES: 'system,imports', RECONCILE_STARTS_EVERY_SECONDS: '2', RECONCILE_STARTS_GRACE_SECONDS: '1' });
  const { tenant, key } = await buildCaller(['*']);
  const csv = (await app.call('post', '/v1/files', key).attach('file', Buffer.from('email,name\ndan@example.com,Dan\neve@example.com,Eve\n'), { filename: 'contacts.csv', contentType: 'text/csv' }).expect(201)).body as { id: string };
  const started = (await app.call('post', '/v1/imports', key).send({ fileId: csv.id, target: 'subscribers', columns: [{ source: 'email', field: 'email' }, { source: 'name', field: 'name' }] }).expect(202)).body as { id: string };
  await waitFor(async () => (await app.call('get', `/v1/imports/${started.id}`, key).expect(200)).body.phase === 'finished', { what: 'import finished', timeoutMs: 60_000 });

  await crashingRequest(`/v1/imports/${started.id}/revert`, key, {});
  const workflowId = `import-reverts:${tenant.id}:${started.id}`;
  // Committed before the crash: the revert asked for (and so refused again: 409 IMPORT_REVERT_RUNNING until it has an outcome).
  expect((await app.call('get', `/v1/imports/${started.id}`, key).expect(200)).body.revert).not.toBeNull();

  const done = await waitFor(async () => {
    const r = (await app.call('get', `/v1/imports/${started.id}`, key).expect(200)).body;
    return r.revert.status !== 'running' && r;
  }, { what: 'revert recovered', timeoutMs: 60_000 });
  expect(done.revert).toMatchObject({ status: 'reverted', deleted: 2, restored: 0 });
  expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(0);
  expect(await executionsOf(workflowId)).toHaveLength(1);
  const recovered = await AuditEvent.findAll({ where: { tenantId: tenant.id, action: 'system.workflow.start_recovered' } });
  expect(recovered.map((e) => e.workflowId)).toEqual([workflowId]);
  await waitFor(async () => (await WorkflowStartIntent.count({ where: { workflowId } })) === 0, { what: 'intent removed', timeoutMs: 30_000 });
}, 120_000);
