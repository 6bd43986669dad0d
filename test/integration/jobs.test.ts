// Scheduled jobs through the real API, Postgres and a Temporal dev server: schedules are real
// Temporal Schedules kept in step; runs happen on demand and at a one-off time, with their history;
// a running run is cancelled (a purge stops between batches before its run reads cancelled); housekeeping jobs purge
// what they should and nothing else.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ScheduleNotFoundError } from '@temporalio/client';
import { QueryTypes } from 'sequelize';
import { AuditEvent, Document, IdempotencyKey, JobSchedule, Role, StoredFile, SubscriberExport, UsedLink, UserRole } from '../../db';
import { up } from '../../db/migrations/0039_redact_job_header_audit';
import { createDueSoon } from '../helpers/due';
import { createRun } from '../helpers/imports';
import { buildApiKey, buildCaller } from '../helpers/factories';
import { TestApp } from '../helpers/app';
import { Stack, startStack } from '../helpers/stack';
import type { SmtpSink } from '../helpers/smtp-sink';
import type { WebhookReceiver } from '../helpers/webhook-receiver';
import { waitFor } from '../helpers/wait';

let stack: Stack;
let app: TestApp;
let hooks: WebhookReceiver;
let smtp: SmtpSink;
beforeAll(async () => { ({ app, hooks, smtp } = stack = await startStack()); });
afterAll(() => stack.close());

interface Run { id: string; status: string; startedAt: string; durationMs: number | null; error: string | null; result: Record<string, unknown> | null; workflowId: string }

async function runs(key: string, scheduleId: string): Promise<Run[]> {
  return (await app.call('get', `/v1/job-schedules/${scheduleId}/runs`, key).expect(200)).body.items;
}
async function finishedRun(key: string, scheduleId: string, what: string): Promise<Run> {
  return waitFor(async () => (await runs(key, scheduleId)).find((r) => r.status !== 'running'), { what, timeoutMs: 60_000 });
}
const httpJob = (path: string, over: Record<string, unknown> = {}) => ({
  name: `call ${path}`, jobType: 'http', params: { url: `${hooks.url}${path}`, method: 'POST', body: { hello: 'docket' } }, cron: '0 3 * * *', timezone: 'Europe/Berlin', ...over,
});

it('lists the job types with their parameter schemas', async () => {
  const { key } = await buildCaller(['jobs.read']);
  const items = (await app.call('get', '/v1/job-types', key).expect(200)).body.items;
  expect(items.map((t: { name: string }) => t.name)).toEqual(['audit.retention_purge', 'housekeeping.expired_keys', 'files.orphan_purge', 'audience.files_purge', 'http']);
  expect(items[0].parameters).toMatchObject({ required: ['olderThanDays'] });
  const { key: none } = await buildCaller([]);
  expect((await app.call('get', '/v1/job-types', none).expect(403)).body.code).toBe('PERMISSION_DENIED');
});

it('creates a cron schedule as a Temporal Schedule, runs it now, and keeps the run history', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const created = await app.call('post', '/v1/job-schedules', key).send(httpJob('/now', { overlapPolicy: 'buffer_one', catchupWindowSeconds: 600, retry: { maximumAttempts: 2 } })).expect(201);
  const s = created.body;
  expect(s).toMatchObject({ cron: '0 3 * * *', timezone: 'Europe/Berlin', paused: false, overlapPolicy: 'buffer_one', retry: { maximumAttempts: 2, initialIntervalSeconds: 10 } });
  expect(s.temporalScheduleId).toBe(`jobs:${tenant.id}:${s.id}`);
  const described = await app.client.schedule.getHandle(s.temporalScheduleId).describe();
  expect(described.spec.timezone).toBe('Europe/Berlin');
  expect(described.policies.overlap).toBe('BUFFER_ONE');
  expect(described.searchAttributes).toMatchObject({ TenantId: [tenant.id], EntityType: ['job_schedule'], EntityId: [s.id] });
  const got = (await app.call('get', `/v1/job-schedules/${s.id}`, key).expect(200)).body;
  // The next run is 03:00 Berlin time, i.e. 02:00Z or 01:00Z depending on DST.
  expect(new Date(got.nextRunTimes[0]).getUTCMinutes()).toBe(0);
  expect([1, 2]).toContain(new Date(got.nextRunTimes[0]).getUTCHours());

  await app.call('post', `/v1/job-schedules/${s.id}/run`, key).expect(202);
  const run = await finishedRun(key, s.id, 'run now finished');
  expect(run).toMatchObject({ status: 'completed', error: null, result: { status: 200 } });
  expect(run.durationMs).toBeGreaterThanOrEqual(0);
  expect(run.workflowId.startsWith(`jobs:${tenant.id}:${s.id}-`)).toBe(true);
  expect(hooks.received.filter((h) => h.path === '/now').map((h) => h.json)).toEqual([{ hello: 'docket' }]);
  expect((await app.call('get', `/v1/job-runs/${run.id}`, key).expect(200)).body.id).toBe(run.id);
  expect((await app.call('post', `/v1/job-runs/${run.id}/cancel`, key).expect(409)).body.code).toBe('JOB_RUN_FINISHED');
  expect((await app.call('get', '/v1/job-schedules', key).expect(200)).body.items.map((x: { id: string }) => x.id)).toEqual([s.id]);
});

it('runs a cron schedule on its own at the start of the minute its expression names', async () => {
  const { key } = await buildCaller(['*']);
  // Every minute: the next run is at most 60 s away and starts on the minute (the Schedule fires it, not us).
  const s = (await app.call('post', '/v1/job-schedules', key).send(httpJob('/cron', { cron: '* * * * *', timezone: 'UTC' })).expect(201)).body;
  const run = await waitFor(async () => (await runs(key, s.id)).find((r) => r.status === 'completed'), { what: 'a cron run', timeoutMs: 90_000 });
  const startedAt = new Date(run.startedAt);
  expect(startedAt.getUTCSeconds()).toBeLessThan(10);
  expect(hooks.received.filter((h) => h.path === '/cron').length).toBeGreaterThanOrEqual(1);
  await app.call('delete', `/v1/job-schedules/${s.id}`, key).expect(204);
}, 120_000);

/**
 * A caller allowed everything, and three users of its tenant: one to name, one on call as the only member of the
 * role "ops", and a bystander who is neither.
 */
async function castWithOps() {
  const { key, tenant } = await buildCaller(['*']);
  const [{ user: named }, { user: onCall }, { user: bystander }] = [await buildCaller([], tenant), await buildCaller([], tenant), await buildCaller([], tenant)];
  const ops = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'ops', title: 'Ops', permissions: [] });
  await UserRole.create({ userId: onCall.id, roleId: ops.id, tenantId: tenant.id });
  return { key, named, onCall, bystander };
}

it('runs a one-off schedule at its time; a failing job is retried by its policy, recorded as failed, and the people it names are told', async () => {
  // Told: a named user and the members of the role "ops"; not told: anyone else.
  const { key, named, onCall, bystander } = await castWithOps();
  hooks.respondWith(500, 500);
  // Due in a moment (the schedule must exist in Temporal before its time, so not less than 2 s ahead).
  const created = await createDueSoon((runAt) => app.call('post', '/v1/job-schedules', key).send(httpJob('/once', {
    cron: undefined, runAt, retry: { maximumAttempts: 2, initialIntervalSeconds: 1 }, notifyOnFailure: { users: [named.id], roles: ['ops'] },
  })), [2000, 5000, 10_000]);
  expect(created.status).toBe(201);
  const s = created.body;
  expect(s).toMatchObject({ cron: null, runAt: expect.any(String), notifyOnFailure: { users: [named.id], roles: ['ops'] } });
  const run = await finishedRun(key, s.id, 'one-off run finished');
  expect(run.status).toBe('failed');
  expect(run.error).toContain('HTTP 500');
  expect(hooks.received.filter((h) => h.path === '/once')).toHaveLength(2);
  for (const u of [named, onCall]) {
    const mail = await smtp.waitFor((m) => m.to.includes(u.email) && m.subject === `Job failed: ${s.name}`);
    expect(mail.text).toContain('HTTP 500');
    expect(mail.text).toContain(run.id);
  }
  await new Promise((r) => setTimeout(r, 300));
  expect(smtp.messages.filter((m) => m.subject === `Job failed: ${s.name}`).map((m) => m.to[0]).sort()).toEqual([named.email, onCall.email].sort());
  expect(smtp.messages.some((m) => m.to.includes(bystander.email))).toBe(false);
});

it('tells the people a schedule names once a run is still going past its long-run alert, and when it succeeds', async () => {
  const { key, named: fan, onCall, bystander } = await castWithOps();
  // Refused and writing nothing: an alert too soon, people not of the tenant.
  for (const [over, status, path] of [
    [{ longRunAlert: { afterSeconds: 4, roles: ['ops'] } }, 400, null],
    [{ longRunAlert: { roles: ['ops'] } }, 400, null],
    [{ longRunAlert: { afterSeconds: 60, roles: ['no-such-role'] } }, 422, '/requestBody/longRunAlert/roles/0'],
    [{ notifyOnSuccess: { users: [randomUUID()] } }, 422, '/requestBody/notifyOnSuccess/users/0'],
  ] as const) {
    const res = await app.call('post', '/v1/job-schedules', key).send(httpJob('/nope', over)).expect(status);
    if (path) expect([res.body.code, res.body.detail]).toEqual(['INVALID_JOB', expect.stringContaining(path)]);
  }
  expect((await app.call('get', '/v1/job-schedules', key).expect(200)).body.items).toEqual([]);

  hooks.delay(8_000); // the job's call is held for 8 s: past the alert's 5 s
  try {
    const s = (await app.call('post', '/v1/job-schedules', key).send(httpJob('/long', {
      params: { url: `${hooks.url}/long`, method: 'POST', timeoutSeconds: 60 }, paused: true,
      notifyOnSuccess: { users: [fan.id] }, longRunAlert: { afterSeconds: 5, roles: ['ops'] },
    })).expect(201)).body;
    expect(s).toMatchObject({ notifyOnSuccess: { users: [fan.id], roles: [] }, longRunAlert: { afterSeconds: 5, users: [], roles: ['ops'] } });
    await app.call('post', `/v1/job-schedules/${s.id}/run`, key).expect(202);
    const long = await smtp.waitFor((m) => m.to.includes(onCall.email) && m.subject === `Job still running: ${s.name}`, 20_000);
    const run = await finishedRun(key, s.id, 'slow run finished');
    expect(run.status).toBe('completed');
    expect(long.text).toContain(run.id);
    const done = await smtp.waitFor((m) => m.to.includes(fan.email) && m.subject === `Job succeeded: ${s.name}`);
    expect(done.text).toContain(run.id);
    await new Promise((r) => setTimeout(r, 300));
    // Each told once, of their own kind; nobody else.
    expect(smtp.messages.filter((m) => m.subject.endsWith(`: ${s.name}`)).map((m) => `${m.to[0]} ${m.subject.split(':')[0]}`).sort())
      .toEqual([`${fan.email} Job succeeded`, `${onCall.email} Job still running`].sort());
    expect(smtp.messages.some((m) => m.to.includes(bystander.email))).toBe(false);
    // An integrator hears of it too: one job.run.long_running event, before the run's job.run.succeeded.
    const events = (await app.call('get', '/v1/events?type=job.run.*&order=asc', key).expect(200)).body.items;
    expect(events.map((e: { type: string }) => e.type)).toEqual(['job.run.long_running', 'job.run.succeeded']);
    expect(events[0]).toMatchObject({ subject: { type: 'job_run', id: run.id } });
    expect(events[0].data).toEqual({ runId: run.id, jobType: 'http', scheduleId: s.id, startedAt: run.startedAt, runningForMs: expect.any(Number), alertAfterSeconds: 5 });
    expect(events[0].data.runningForMs).toBeGreaterThanOrEqual(5_000);

    // Turned off with null; the rest kept.
    const off = (await app.call('patch', `/v1/job-schedules/${s.id}`, key).send({ longRunAlert: null }).expect(200)).body;
    expect(off).toMatchObject({ longRunAlert: null, notifyOnSuccess: { users: [fan.id] } });
  } finally {
    hooks.delay(0);
  }
});

it('pauses, unpauses and changes a schedule in step with Temporal; deletes it', async () => {
  const { key } = await buildCaller(['*']);
  const s = (await app.call('post', '/v1/job-schedules', key).send(httpJob('/edit')).expect(201)).body;
  const handle = app.client.schedule.getHandle(s.temporalScheduleId);
  expect((await app.call('patch', `/v1/job-schedules/${s.id}`, key).send({ paused: true }).expect(200)).body.paused).toBe(true);
  expect((await handle.describe()).state.paused).toBe(true);
  const changed = (await app.call('patch', `/v1/job-schedules/${s.id}`, key).send({ paused: false, cron: '*/15 * * * *', timezone: 'UTC' }).expect(200)).body;
  expect(changed).toMatchObject({ paused: false, cron: '*/15 * * * *', timezone: 'UTC' });
  const d = await handle.describe();
  expect(d.state.paused).toBe(false);
  expect(d.spec.timezone).toBe('UTC');
  expect((await app.call('patch', `/v1/job-schedules/${s.id}`, key).send({ cron: '61 * * * *' }).expect(422)).body.code).toBe('INVALID_CRON');
  expect((await app.call('get', `/v1/job-schedules/${s.id}`, key).expect(200)).body.cron).toBe('*/15 * * * *');
  await app.call('patch', `/v1/job-schedules/${s.id}`, key).send({}).expect(400);
  await app.call('delete', `/v1/job-schedules/${s.id}`, key).expect(204);
  await expect(handle.describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  expect((await app.call('get', `/v1/job-schedules/${s.id}`, key).expect(404)).body.code).toBe('NOT_FOUND');
  await app.call('delete', `/v1/job-schedules/${s.id}`, key).expect(404);
});

it('cancels a running run', async () => {
  const { key } = await buildCaller(['*']);
  hooks.delay(60_000);
  try {
    const s = (await app.call('post', '/v1/job-schedules', key).send(httpJob('/slow', { params: { url: `${hooks.url}/slow`, timeoutSeconds: 120 } })).expect(201)).body;
    await app.call('post', `/v1/job-schedules/${s.id}/run`, key).expect(202);
    const running = await waitFor(async () => (await runs(key, s.id)).find((r) => r.status === 'running'), { what: 'run started' });
    await waitFor(async () => hooks.received.some((h) => h.path === '/slow'), { what: 'job called the slow endpoint' });
    expect((await app.call('post', `/v1/job-runs/${running.id}/cancel`, key).expect(202)).body.status).toBe('running');
    const run = await finishedRun(key, s.id, 'run cancelled');
    expect(run.status).toBe('cancelled');
  } finally {
    hooks.delay(0);
  }
});

it('a cancelled purge stops between batches: its run reads cancelled once nothing more is deleted, with what it deleted', async () => {
  const { key, tenant } = await buildCaller(['*']);
  const sequelize = AuditEvent.sequelize!;
  const rows = 30_000;
  await sequelize.query(
    `INSERT INTO audit_events (tenant_id, actor_type, action, entity_type, entity_id, created_at)
     SELECT :tenantId, 'system', 'test.purged', 'file', g::text, now() - interval '400 days' FROM generate_series(1, :rows) g`,
    { replacements: { tenantId: tenant.id, rows } },
  );
  const left = () => AuditEvent.count({ where: { tenantId: tenant.id, action: 'test.purged' } });
  // Each of this tenant's rows takes a millisecond to delete: a batch of 1000 about a second, the purge half a minute.
  const fn = `test_slow_purge_${tenant.id.replace(/-/g, '')}`;
  await sequelize.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN OLD; END $$`);
  await sequelize.query(`CREATE TRIGGER ${fn} BEFORE DELETE ON audit_events FOR EACH ROW WHEN (OLD.tenant_id = '${tenant.id}') EXECUTE FUNCTION ${fn}()`);
  try {
    const runId = (await app.call('post', '/v1/job-runs', key).send({ jobType: 'audit.retention_purge', params: { olderThanDays: 1 } }).expect(202)).body.id;
    await waitFor(async () => (await left()) < rows, { what: 'the purge\'s first batch', intervalMs: 100 });
    expect((await app.call('post', `/v1/job-runs/${runId}/cancel`, key).expect(202)).body.status).toBe('running');
    const run: Run = await waitFor(async () => { const r = (await app.call('get', `/v1/job-runs/${runId}`, key).expect(200)).body; return r.status !== 'running' && r; }, { what: 'the run to end', timeoutMs: 60_000, intervalMs: 100 });
    const whenCancelled = await left();
    await new Promise((r) => setTimeout(r, 3_000));
    expect(run.status).toBe('cancelled');
    expect(await left()).toBe(whenCancelled);
    // It stopped part way, and says how many it deleted.
    expect(whenCancelled).toBeGreaterThan(0);
    expect(run.result).toEqual({ deleted: rows - whenCancelled });
  } finally {
    await sequelize.query(`DROP TRIGGER IF EXISTS ${fn} ON audit_events`);
    await sequelize.query(`DROP FUNCTION IF EXISTS ${fn}()`);
    await AuditEvent.destroy({ where: { tenantId: tenant.id, action: 'test.purged' } });
  }
});

it('runs a job type once without a schedule, and lists the tenant\'s runs by status, type, schedule and time', async () => {
  const { key, tenant } = await buildCaller(['*']);
  const body = { jobType: 'http', params: { url: `${hooks.url}/adhoc`, method: 'POST', body: { once: true }, timeoutSeconds: 120 } };
  // The endpoint holds the call for a few seconds: long enough to see the run among the active ones.
  hooks.delay(4_000);
  let runId = '';
  try {
    const started = await app.call('post', '/v1/job-runs', key).send(body).expect(202);
    runId = started.body.id;
    expect(started.headers.location).toBe(`/v1/job-runs/${runId}`);
    expect(started.body).toMatchObject({ scheduleId: null, jobType: 'http', status: 'running', workflowId: `jobs:${tenant.id}:${runId}` });
    // The active runs: it is there while the endpoint holds the call.
    await waitFor(async () => hooks.received.some((h) => h.path === '/adhoc'), { what: 'the job called' });
    const active = (await app.call('get', '/v1/job-runs?status=running', key).expect(200)).body.items;
    expect(active.map((r: Run) => r.id)).toEqual([runId]);
  } finally {
    hooks.delay(0);
  }
  const done = await waitFor(async () => { const r = (await app.call('get', `/v1/job-runs/${runId}`, key).expect(200)).body; return r.status !== 'running' && r; }, { what: 'run ended', timeoutMs: 90_000 });
  expect(done).toMatchObject({ status: 'completed', result: { status: 200 } });
  expect(hooks.received.filter((h) => h.path === '/adhoc')).toHaveLength(1);
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'jobs.run.requested', entityId: runId } })).toBe(1);

  // The tenant-wide history with its filters, next to a schedule's run.
  const s = (await app.call('post', '/v1/job-schedules', key).send(httpJob('/scheduled')).expect(201)).body;
  await app.call('post', `/v1/job-schedules/${s.id}/run`, key).expect(202);
  const scheduled = await finishedRun(key, s.id, 'scheduled run ended');
  const ids = async (q: string) => (await app.call('get', `/v1/job-runs${q}`, key).expect(200)).body.items.map((r: Run) => r.id);
  expect(await ids('')).toEqual([scheduled.id, runId]);
  expect(await ids('?status=running')).toEqual([]);
  expect(await ids(`?scheduleId=${s.id}`)).toEqual([scheduled.id]);
  expect(await ids('?jobType=audit.retention_purge')).toEqual([]);
  expect(await ids(`?until=${encodeURIComponent(scheduled.startedAt)}`)).toEqual([runId]);
  expect(await ids(`?since=${encodeURIComponent(scheduled.startedAt)}`)).toEqual([scheduled.id]);
  const first = (await app.call('get', '/v1/job-runs?limit=1', key).expect(200)).body;
  expect((await app.call('get', `/v1/job-runs?limit=1&cursor=${encodeURIComponent(first.nextCursor)}`, key).expect(200)).body.items.map((r: Run) => r.id)).toEqual([runId]);
  expect((await app.call('get', `/v1/job-runs?since=${encodeURIComponent(done.finishedAt)}&until=${encodeURIComponent(done.startedAt)}`, key).expect(422)).body.code).toBe('INVALID_RANGE');
  await app.call('get', '/v1/job-runs?status=sleeping', key).expect(400);
  await app.call('get', '/v1/job-runs?since=yesterday', key).expect(400);

  // Another tenant sees none of it.
  const { key: stranger } = await buildCaller(['*']);
  expect((await app.call('get', '/v1/job-runs', stranger).expect(200)).body.items).toEqual([]);
  await app.call('get', `/v1/job-runs/${runId}`, stranger).expect(404);
});

it('needs jobs.run and jobs.write to run a job without a schedule, and refuses bad jobs, starting nothing', async () => {
  const { key: admin, tenant } = await buildCaller(['*']);
  const body = { jobType: 'http', params: { url: `${hooks.url}/never`, method: 'POST' } };
  const as = async (perms: string[]) => (await buildCaller(perms, tenant)).key;
  expect((await app.call('post', '/v1/job-runs', await as(['jobs.run', 'jobs.read'])).send(body).expect(403)).body.permission).toBe('jobs.write');
  expect((await app.call('post', '/v1/job-runs', await as(['jobs.write', 'jobs.read'])).send(body).expect(403)).body.permission).toBe('jobs.run');
  expect((await app.call('get', '/v1/job-runs', await as([])).expect(403)).body.permission).toBe('jobs.read');
  await app.call('get', '/v1/job-runs', await as(['jobs.read'])).expect(200);
  expect((await app.call('post', '/v1/job-runs', admin).send({ jobType: 'mine.bitcoin' }).expect(422)).body.code).toBe('INVALID_JOB');
  expect((await app.call('post', '/v1/job-runs', admin).send({ jobType: 'http', params: { url: 'not a url' } }).expect(422)).body.detail).toContain('params.url');
  await app.call('post', '/v1/job-runs', admin).send({ ...body, extra: 1 }).expect(400);
  await app.call('post', '/v1/job-runs', admin).send({ ...body, retry: { maximumAttempts: 0 } }).expect(400);
  expect((await app.call('get', '/v1/job-runs', admin).expect(200)).body.items).toEqual([]);
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'jobs.run.requested' } })).toBe(0);
  expect(hooks.received.some((h) => h.path === '/never')).toBe(false);
});

it('takes the cron shorthands (@hourly, @daily …) as the five fields they mean, and keeps what was written', async () => {
  const { key } = await buildCaller(['*']);
  const created = (await app.call('post', '/v1/job-schedules', key).send(httpJob('/hourly', { cron: '@hourly', timezone: 'UTC' })).expect(201)).body;
  expect(created.cron).toBe('@hourly');
  // The next runs are Temporal's own: on the hour, an hour apart.
  const hourly = (await app.call('get', `/v1/job-schedules/${created.id}`, key).expect(200)).body;
  expect(hourly.cron).toBe('@hourly');
  const [a, b] = hourly.nextRunTimes.map((t: string) => new Date(t));
  expect([a.getUTCMinutes(), a.getUTCSeconds(), b.getTime() - a.getTime()]).toEqual([0, 0, 3_600_000]);
  const weeklyId = (await app.call('post', '/v1/job-schedules', key).send(httpJob('/weekly', { cron: '@WEEKLY', timezone: 'Asia/Tokyo' })).expect(201)).body.id;
  const next = new Date((await app.call('get', `/v1/job-schedules/${weeklyId}`, key).expect(200)).body.nextRunTimes[0]);
  // Sunday 00:00 in Tokyo is Saturday 15:00Z.
  expect([next.getUTCDay(), next.getUTCHours(), next.getUTCMinutes()]).toEqual([6, 15, 0]);
  for (const cron of ['@every 5m', '@reboot', '@ hourly']) {
    expect((await app.call('post', '/v1/job-schedules', key).send(httpJob('/bad', { cron })).expect(422)).body.code).toBe('INVALID_CRON');
  }
});

it('refuses bad schedules with the reason, creating nothing', async () => {
  const { key } = await buildCaller(['*']);
  const cases: [Record<string, unknown>, number, string, string?][] = [
    [{ cron: '61 * * * *' }, 422, 'INVALID_CRON', 'cron:'],
    [{ cron: '0 0 * * * *' }, 422, 'INVALID_CRON', '5 fields'],
    [{ cron: 'every day' }, 422, 'INVALID_CRON'],
    [{ runAt: new Date(Date.now() + 60_000).toISOString() }, 422, 'INVALID_JOB', 'exactly one'],
    [{ cron: undefined, runAt: '2020-01-01T00:00:00Z' }, 422, 'TIME_IN_PAST'],
    // Too close to exist in Temporal before its second comes: refused rather than silently never run.
    [{ cron: undefined, runAt: new Date(Date.now() + 800).toISOString() }, 422, 'TIME_IN_PAST', 'less than 2 s ahead'],
    [{ jobType: 'mine.bitcoin' }, 422, 'INVALID_JOB', 'unknown job type'],
    [{ params: { url: 'not a url' } }, 422, 'INVALID_JOB', 'params.url'],
    [{ jobType: 'audit.retention_purge', params: {} }, 422, 'INVALID_JOB', 'params.olderThanDays'],
    [{ jobType: 'audit.retention_purge', params: { olderThanDays: 0 } }, 422, 'INVALID_JOB'],
    [{ timezone: 'Atlantis/Capital' }, 422, 'INVALID_JOB', 'timezone'],
    [{ notifyOnFailure: { roles: ['no-such-role'] } }, 422, 'INVALID_JOB', 'notifyOnFailure/roles/0'],
    [{ notifyOnFailure: { users: [randomUUID()] } }, 422, 'INVALID_JOB', 'notifyOnFailure/users/0'],
    [{ notifyOnFailure: { groups: [] } }, 400, 'VALIDATION_FAILED'],
    [{ overlapPolicy: 'sometimes' }, 400, 'VALIDATION_FAILED'],
    [{ name: '' }, 400, 'VALIDATION_FAILED'],
  ];
  for (const [over, status, code, detail] of cases) {
    const res = await app.call('post', '/v1/job-schedules', key).send(httpJob('/bad', over));
    expect([JSON.stringify(over), res.status, res.body.code]).toEqual([JSON.stringify(over), status, code]);
    if (detail) expect(res.body.detail).toContain(detail);
  }
  expect((await app.call('get', '/v1/job-schedules', key).expect(200)).body.items).toEqual([]);
  const { key: reader } = await buildCaller(['jobs.read']);
  expect((await app.call('post', '/v1/job-schedules', reader).send(httpJob('/x')).expect(403)).body.code).toBe('PERMISSION_DENIED');
  await app.call('get', `/v1/job-runs/${randomUUID()}`, key).expect(404);
  await app.call('post', `/v1/job-runs/${randomUUID()}/cancel`, key).expect(404);
  await app.call('post', `/v1/job-schedules/${randomUUID()}/run`, key).expect(404);
  await app.call('get', `/v1/job-schedules/${randomUUID()}/runs`, key).expect(404);
  for (const url of ['/v1/job-schedules/not-a-uuid', '/v1/job-runs/not-a-uuid', '/v1/job-schedules?limit=0', '/v1/job-schedules?cursor=garbage', `/v1/job-schedules/${randomUUID()}/runs?limit=500`]) {
    expect([url, (await app.call('get', url, key)).status]).toEqual([url, 400]);
  }
  await app.call('post', '/v1/job-runs/not-a-uuid/cancel', key).expect(400);
  await app.call('post', '/v1/job-schedules/not-a-uuid/run', key).expect(400);
  await app.call('delete', '/v1/job-schedules/not-a-uuid', key).expect(400);
});

it('housekeeping jobs purge only the tenant\'s old audit events, expired keys, used links and orphaned files', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const other = await buildCaller(['*']);
  const old = new Date(Date.now() - 400 * 86_400_000);
  const audit = async (tenantId: string, createdAt: Date) => {
    const e = await AuditEvent.create({ tenantId, actorType: 'system', actorId: null, action: 'files.file.uploaded', entityType: 'file', entityId: randomUUID(), before: null, after: null, requestId: null, workflowId: null, eventKey: null });
    await AuditEvent.update({ createdAt }, { where: { id: e.id } });
    return e.id;
  };
  const [oldMine, newMine, oldTheirs] = [await audit(tenant.id, old), await audit(tenant.id, new Date()), await audit(other.tenant.id, old)];
  await IdempotencyKey.create({ tenantId: tenant.id, principal: 'user:someone', key: 'k-old', operationId: 'createReminder', requestHash: 'x', statusCode: 201, responseHeaders: null, responseBody: null });
  await IdempotencyKey.update({ createdAt: old }, { where: { tenantId: tenant.id, key: 'k-old' } });
  await IdempotencyKey.create({ tenantId: tenant.id, principal: 'user:someone', key: 'k-new', operationId: 'createReminder', requestHash: 'x', statusCode: 201, responseHeaders: null, responseBody: null });
  await UsedLink.create({ nonce: `n-${randomUUID()}`, tenantId: tenant.id, usedAt: old });
  const orphan = await StoredFile.create({ tenantId: tenant.id, sha256: 'a'.repeat(64), size: 1, contentType: 'text/csv', filename: 'x.csv', createdBy: null, originKey: `audit-export:${randomUUID()}` });
  // A subscriber export's CSV whose export is gone; a ready export's own file stays.
  const exportOrphan = await StoredFile.create({ tenantId: tenant.id, sha256: 'b'.repeat(64), size: 1, contentType: 'text/csv', filename: 'y.csv', createdBy: null, originKey: `subscriber-export:${randomUUID()}` });
  const kept = await StoredFile.create({ tenantId: tenant.id, sha256: 'c'.repeat(64), size: 1, contentType: 'text/csv', filename: 'z.csv', createdBy: null, originKey: `subscriber-export:${randomUUID()}` });
  await SubscriberExport.create({ id: kept.originKey!.split(':')[1], tenantId: tenant.id, status: 'ready', filters: {}, workflowId: 'subscriber-exports:test', requestedBy: null, fileId: kept.id });
  // An orphaned export CSV that an import is still reading stays until the import has read it.
  const reading = await StoredFile.create({ tenantId: tenant.id, sha256: 'd'.repeat(64), size: 1, contentType: 'text/csv', filename: 'r.csv', createdBy: null, originKey: `subscriber-export:${randomUUID()}` });
  const importing = await createRun(tenant, { columns: [{ source: 'email', field: 'email' }] });
  await importing.update({ fileId: reading.id });
  // A document's PDF stored by a render that finished after the document was failed (its batch cancelled); a ready one's stays.
  const template = (await app.call('post', '/v1/document-templates', key).send({ code: 'orphans', name: 'Orphans', parts: { base: '<p>x</p>' } }).expect(201)).body;
  const docFile = async (sha: string, status: 'ready' | 'failed') => {
    const docId = randomUUID();
    const f = await StoredFile.create({ tenantId: tenant.id, sha256: sha.repeat(64), size: 1, contentType: 'application/pdf', filename: `${status}.pdf`, createdBy: null, originKey: `document:${docId}` });
    await Document.create({
      id: docId, tenantId: tenant.id, templateId: template.id, templateCode: 'orphans', templateVersion: 1, batchId: null, batchIndex: null, output: 'pdf', fileName: `${status}.pdf`,
      objectType: null, objectId: null, data: {}, status, error: status === 'failed' ? 'cancelled in Temporal' : null, fileId: status === 'ready' ? f.id : null,
      contentHash: null, originKey: null, workflowId: `documents:test:${docId}`, createdBy: null, completedAt: new Date(),
    });
    return f;
  };
  const [docOrphan, docKept] = [await docFile('e', 'failed'), await docFile('f', 'ready')];
  await StoredFile.update({ createdAt: old }, { where: { id: [orphan.id, exportOrphan.id, kept.id, reading.id, docOrphan.id, docKept.id] } });

  const run = async (jobType: string, params: Record<string, unknown>) => {
    const s = (await app.call('post', '/v1/job-schedules', key).send({ name: jobType, jobType, params, cron: '0 4 * * 0', paused: true }).expect(201)).body;
    await app.call('post', `/v1/job-schedules/${s.id}/run`, key).expect(202);
    return finishedRun(key, s.id, `${jobType} finished`);
  };
  expect(await run('audit.retention_purge', { olderThanDays: 365 })).toMatchObject({ status: 'completed', result: { deleted: 1 } });
  expect(await AuditEvent.findByPk(oldMine)).toBeNull();
  expect(await AuditEvent.findByPk(newMine)).not.toBeNull();
  expect(await AuditEvent.findByPk(oldTheirs)).not.toBeNull();
  expect(await run('housekeeping.expired_keys', {})).toMatchObject({ status: 'completed', result: { idempotencyKeys: 1, usedLinks: 1 } });
  expect(await IdempotencyKey.count({ where: { tenantId: tenant.id } })).toBe(1);
  expect(await run('files.orphan_purge', { olderThanHours: 1 })).toMatchObject({ status: 'completed', result: { files: 3 } });
  expect(await StoredFile.findByPk(orphan.id)).toBeNull();
  expect(await StoredFile.findByPk(exportOrphan.id)).toBeNull();
  expect(await StoredFile.findByPk(docOrphan.id)).toBeNull();
  expect(await StoredFile.findByPk(docKept.id)).not.toBeNull();
  expect(await StoredFile.findByPk(kept.id)).not.toBeNull();
  expect(await StoredFile.findByPk(reading.id)).not.toBeNull();
  await importing.update({ phase: 'merging' });
  expect(await run('files.orphan_purge', { olderThanHours: 1 })).toMatchObject({ status: 'completed', result: { files: 1 } });
  expect(await StoredFile.findByPk(reading.id)).toBeNull();
  expect(await StoredFile.findByPk(kept.id)).not.toBeNull();
});

it('the audit purge needs audit.purge besides jobs.write, to schedule, change or run it; anyone with jobs.write may pause it', async () => {
  const { tenant, key: admin } = await buildCaller(['*']);
  const purge = { name: 'retention', jobType: 'audit.retention_purge', params: { olderThanDays: 1 }, cron: '0 4 * * 0', paused: true };
  // The refused first: the old event must still be there after each of them.
  const callers: [string, string[], string[] | undefined, boolean][] = [
    ['jobs only', ['jobs.read', 'jobs.write', 'jobs.run'], undefined, false],
    ['jobs and reading the audit log', ['jobs.*', 'audit.read', 'audit.export'], undefined, false],
    ['an admin whose key is scoped to jobs', ['*'], ['jobs.*'], false],
    ['jobs and audit.purge', ['jobs.*', 'audit.purge'], undefined, true],
    ['jobs and audit.*', ['jobs.*', 'audit.*'], undefined, true],
    ['an admin', ['*'], undefined, true],
  ];
  const kept = await AuditEvent.create({ tenantId: tenant.id, actorType: 'system', actorId: null, action: 'files.file.uploaded', entityType: 'file', entityId: randomUUID(), before: null, after: null, requestId: null, workflowId: null, eventKey: null });
  await AuditEvent.update({ createdAt: new Date(Date.now() - 10 * 86_400_000) }, { where: { id: kept.id } });
  const existing = (await app.call('post', '/v1/job-schedules', admin).send(purge).expect(201)).body;
  for (const [who, permissions, scopes, allowed] of callers) {
    const { user } = await buildCaller(permissions, tenant);
    const key = await buildApiKey(user, { scopes });
    const created = await app.call('post', '/v1/job-schedules', key).send(purge);
    const changed = await app.call('patch', `/v1/job-schedules/${existing.id}`, key).send({ params: { olderThanDays: 2 } });
    const ran = await app.call('post', '/v1/job-runs', key).send({ jobType: 'audit.retention_purge', params: { olderThanDays: 1 } });
    // Running the (paused) schedule now: Temporal would run it.
    const triggered = await app.call('post', `/v1/job-schedules/${existing.id}/run`, key);
    const expected = allowed ? [201, 200, 202, 202] : [403, 403, 403, 403];
    expect([who, created.status, changed.status, ran.status, triggered.status]).toEqual([who, ...expected]);
    if (!allowed) {
      for (const res of [created, changed, ran, triggered]) expect(res.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'audit.purge' });
      // Nothing written: no schedule, no run, the old event still there.
      expect(await AuditEvent.findByPk(kept.id)).not.toBeNull();
      // Pausing only stops what the schedule does: jobs.write is enough.
      await app.call('patch', `/v1/job-schedules/${existing.id}`, key).send({ paused: true }).expect(200);
    } else {
      await app.call('delete', `/v1/job-schedules/${created.body.id}`, key).expect(204);
      await waitFor(async () => (await app.call('get', `/v1/job-runs/${ran.body.id}`, key).expect(200)).body.status === 'completed', { what: 'the purge run' });
    }
  }
  expect(await AuditEvent.findByPk(kept.id)).toBeNull();
  // Other job types need only jobs.write.
  const { key: jobsOnly } = await buildCaller(['jobs.*'], tenant);
  await app.call('post', '/v1/job-schedules', jobsOnly).send({ ...purge, name: 'keys', jobType: 'housekeeping.expired_keys', params: {} }).expect(201);
  const types = (await app.call('get', '/v1/job-types', jobsOnly).expect(200)).body.items as { name: string; permission?: string }[];
  expect(Object.fromEntries(types.map((t) => [t.name, t.permission ?? null]))).toEqual({
    'audit.retention_purge': 'audit.purge', 'housekeeping.expired_keys': null, 'files.orphan_purge': null, 'audience.files_purge': 'audience.erase', http: null,
  });
});

it('used link nonces are kept while their link could still be valid, however short usedLinkDays is', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const usedAt = (hours: number) => new Date(Date.now() - hours * 3_600_000);
  const young = await UsedLink.create({ nonce: `n-${randomUUID()}`, tenantId: tenant.id, usedAt: usedAt(48) });
  const old = await UsedLink.create({ nonce: `n-${randomUUID()}`, tenantId: tenant.id, usedAt: usedAt(80) });
  const ran = (await app.call('post', '/v1/job-runs', key).send({ jobType: 'housekeeping.expired_keys', params: { usedLinkDays: 1 } }).expect(202)).body;
  const done = await waitFor(async () => {
    const r = (await app.call('get', `/v1/job-runs/${ran.id}`, key).expect(200)).body;
    return r.status === 'running' ? undefined : r;
  }, { what: 'the housekeeping run' });
  expect(done).toMatchObject({ status: 'completed', result: { usedLinks: 1 } });
  expect(await UsedLink.findByPk(young.nonce)).not.toBeNull(); // used 48 h ago: its link (72 h) may still be valid
  expect(await UsedLink.findByPk(old.nonce)).toBeNull();
});

describe('an http job\'s header values (credentials for the service it calls)', () => {
  const SECRET = `Bearer s3cr3t-${randomUUID()}`;
  const TRACE = `trace-${randomUUID()}`;
  const headersOf = (path: string) => hooks.received.filter((h) => h.path === path).map((h) => ({ authorization: h.headers.authorization, trace: h.headers['x-trace'] }));
  const secretIn = (x: unknown) => JSON.stringify(x).includes(SECRET.slice('Bearer '.length)) || JSON.stringify(x).includes(TRACE);

  it('are sealed at rest, shown and audited as "***", and sent as given; "***" sent back keeps the stored value', async () => {
    const { key, tenant } = await buildCaller(['*']);
    const params = { url: `${hooks.url}/secret`, method: 'POST', body: { hello: 'docket' }, headers: { Authorization: SECRET, 'X-Trace': TRACE } };
    // buffer_one: the second trigger below is not skipped should the first run's workflow still be finishing.
    const created = (await app.call('post', '/v1/job-schedules', key).send(httpJob('/secret', { params, overlapPolicy: 'buffer_one' })).expect(201)).body;
    expect(created.params).toEqual({ ...params, headers: { Authorization: '***', 'X-Trace': '***' } });
    // Readers see the names only: one schedule, the list.
    const got = (await app.call('get', `/v1/job-schedules/${created.id}`, key).expect(200)).body;
    expect(got.params.headers).toEqual({ Authorization: '***', 'X-Trace': '***' });
    expect(secretIn((await app.call('get', '/v1/job-schedules', key).expect(200)).body)).toBe(false);
    // At rest: the row holds sealed values, and so does the Temporal Schedule's action (the runs' input).
    const row = await JobSchedule.findByPk(created.id);
    expect(row!.params.headers).toEqual({ Authorization: expect.stringMatching(/^enc:v1:/), 'X-Trace': expect.stringMatching(/^enc:v1:/) });
    const [{ raw }] = await JobSchedule.sequelize!.query<{ raw: string }>('SELECT params::text AS raw FROM job_schedules WHERE id = :id', { replacements: { id: created.id }, type: QueryTypes.SELECT });
    expect(secretIn(raw)).toBe(false);
    expect(secretIn(await app.client.schedule.getHandle(created.temporalScheduleId).describe())).toBe(false);

    // A run sends the real values.
    await app.call('post', `/v1/job-schedules/${created.id}/run`, key).expect(202);
    const first = await finishedRun(key, created.id, 'the first run');
    expect(first).toMatchObject({ status: 'completed', result: { status: 200 } });
    expect(headersOf('/secret')).toEqual([{ authorization: SECRET, trace: TRACE }]);

    // Changing only the cron keeps them; params sent back with "***" (any case) keep a stored value, a header left out
    // is removed, and "***" for a header the schedule does not have is refused.
    await app.call('patch', `/v1/job-schedules/${created.id}`, key).send({ cron: '0 4 * * *' }).expect(200);
    const changed = (await app.call('patch', `/v1/job-schedules/${created.id}`, key)
      .send({ params: { ...params, url: `${hooks.url}/secret-2`, headers: { authorization: '***' } } }).expect(200)).body;
    expect(changed.params.headers).toEqual({ authorization: '***' });
    const refused = await app.call('patch', `/v1/job-schedules/${created.id}`, key).send({ params: { ...params, headers: { 'X-Other': '***' } } }).expect(422);
    expect([refused.body.code, refused.body.detail]).toEqual(['INVALID_JOB', expect.stringContaining('params.headers.X-Other')]);
    await app.call('post', `/v1/job-schedules/${created.id}/run`, key).expect(202);
    // (Waited for at the receiver: two runs triggered within one second share a workflow id, and so a run row.)
    await hooks.waitFor((h) => h.path === '/secret-2', 60_000);
    expect(headersOf('/secret-2')).toEqual([{ authorization: SECRET, trace: undefined }]);
    // A new schedule or run has no stored value for "***" to keep; a header value fetch() would refuse is refused (never quoted).
    expect((await app.call('post', '/v1/job-schedules', key).send(httpJob('/x', { params: { ...params, headers: { Authorization: '***' } } })).expect(422)).body.code).toBe('INVALID_JOB');
    const bad = await app.call('post', '/v1/job-runs', key).send({ jobType: 'http', params: { ...params, headers: { Authorization: `${SECRET}\r\nX-Injected: 1` } } }).expect(422);
    expect([bad.body.code, secretIn(bad.body)]).toEqual(['INVALID_JOB', false]);

    // A run without a schedule: sent as given, its audit event and Temporal input hold no secret.
    const once = (await app.call('post', '/v1/job-runs', key).send({ jobType: 'http', params: { ...params, url: `${hooks.url}/secret-once` } }).expect(202)).body;
    const ended = await waitFor(async () => { const r = (await app.call('get', `/v1/job-runs/${once.id}`, key).expect(200)).body; return r.status !== 'running' && r; }, { what: 'the run without a schedule' });
    expect(ended).toMatchObject({ status: 'completed', result: { status: 200 } });
    expect(headersOf('/secret-once')).toEqual([{ authorization: SECRET, trace: TRACE }]);
    expect(secretIn(await app.client.workflow.getHandle(once.workflowId).fetchHistory())).toBe(false);

    // The audit log (what audit.read and its exports show): every event names the headers, none holds a value.
    await app.call('delete', `/v1/job-schedules/${created.id}`, key).expect(204);
    const events = (await app.call('get', '/v1/audit-events?limit=100', key).expect(200)).body.items as { action: string; before: { params: { headers: unknown } }; after: { params: { headers: unknown } } }[];
    const byAction = (a: string) => events.filter((e) => e.action === a);
    expect(byAction('jobs.schedule.created')[0].after.params.headers).toEqual({ Authorization: '***', 'X-Trace': '***' });
    expect(byAction('jobs.schedule.updated').map((e) => e.after.params.headers)).toEqual([{ authorization: '***' }, { Authorization: '***', 'X-Trace': '***' }]);
    expect(byAction('jobs.schedule.deleted')[0].before.params.headers).toEqual({ authorization: '***' });
    expect(byAction('jobs.run.requested')[0].after.params.headers).toEqual({ Authorization: '***', 'X-Trace': '***' });
    expect(secretIn(events)).toBe(false);
    const [{ n }] = await AuditEvent.sequelize!.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_events WHERE tenant_id = :tenantId AND (coalesce(before::text, '') LIKE :like OR coalesce(after::text, '') LIKE :like)`,
      { replacements: { tenantId: tenant.id, like: `%${TRACE}%` }, type: QueryTypes.SELECT },
    );
    expect(n).toBe(0);
    // Nor do the runs' results and errors.
    expect(secretIn((await app.call('get', '/v1/job-runs', key).expect(200)).body)).toBe(false);
  });

  it('stored before sealing still work, and are sealed when the schedule is next changed; an answer echoing one has it replaced', async () => {
    const { key } = await buildCaller(['*']);
    // An echo service: answers with the Authorization header it was sent (500 on /fail).
    const echo = http.createServer((req, res) => { res.writeHead(req.url === '/fail' ? 500 : 200).end(`you sent: ${req.headers.authorization}`); });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    try {
      const params = { url: `${hooks.url}/legacy`, method: 'POST', headers: { Authorization: SECRET } };
      const s = (await app.call('post', '/v1/job-schedules', key).send(httpJob('/legacy', { params })).expect(201)).body;
      // As a schedule written before header values were sealed: plain in its row and in its Temporal Schedule.
      await JobSchedule.update({ params }, { where: { id: s.id } });
      const handle = app.client.schedule.getHandle(s.temporalScheduleId);
      await handle.update((d) => {
        const action = d.action as unknown as { args: [{ params: Record<string, unknown> }] };
        action.args[0].params = params;
        return d as never;
      });
      expect(JSON.stringify(await handle.describe())).toContain(SECRET);
      expect((await app.call('get', `/v1/job-schedules/${s.id}`, key).expect(200)).body.params.headers).toEqual({ Authorization: '***' });
      await app.call('post', `/v1/job-schedules/${s.id}/run`, key).expect(202);
      expect(await finishedRun(key, s.id, 'the legacy run')).toMatchObject({ status: 'completed' });
      expect(headersOf('/legacy')).toEqual([{ authorization: SECRET, trace: undefined }]);
      // Any change seals them, in the row and in Temporal.
      await app.call('patch', `/v1/job-schedules/${s.id}`, key).send({ paused: true }).expect(200);
      expect((await JobSchedule.findByPk(s.id))!.params.headers).toEqual({ Authorization: expect.stringMatching(/^enc:v1:/) });
      expect(secretIn(await handle.describe())).toBe(false);

      // The answer of a service that echoes the header: its value is "***" in the run's result and error.
      for (const path of ['/ok', '/fail']) {
        const run = (await app.call('post', '/v1/job-runs', key).send({ jobType: 'http', params: { ...params, url: `${echoUrl}${path}` } }).expect(202)).body;
        const done = await waitFor(async () => { const r = (await app.call('get', `/v1/job-runs/${run.id}`, key).expect(200)).body; return r.status !== 'running' && r; }, { what: `the echo run ${path}` });
        expect(secretIn(done)).toBe(false);
        if (path === '/ok') expect(done).toMatchObject({ status: 'completed', result: { status: 200, body: 'you sent: ***' } });
        else expect(done).toMatchObject({ status: 'failed', error: expect.stringContaining('you sent: ***') });
      }
    } finally {
      await new Promise((resolve) => echo.close(resolve));
    }
  });

  it('recorded in the clear by audit events before they were sealed are replaced by "***" (migration 0039)', async () => {
    const { tenant } = await buildCaller(['*']);
    const event = (action: string, before: object | null, after: object | null) => AuditEvent.create({
      tenantId: tenant.id, actorType: 'system', actorId: null, action, entityType: 'job_schedule', entityId: randomUUID(), before, after, requestId: null, workflowId: null, eventKey: null,
    });
    const http = (headers: object) => ({ jobType: 'http', params: { url: 'https://example.com/', headers } });
    const created = await event('jobs.schedule.created', null, http({ Authorization: SECRET, 'X-Trace': TRACE }));
    const updated = await event('jobs.schedule.updated', http({ Authorization: SECRET }), http({ Authorization: '***', Accept: 'json' }));
    const requested = await event('jobs.run.requested', null, http({}));
    const purge = await event('jobs.schedule.created', null, { jobType: 'audit.retention_purge', params: { olderThanDays: 3 } });
    await up({ context: AuditEvent.sequelize!.getQueryInterface() });
    const read = async (e: AuditEvent) => { const r = (await AuditEvent.findByPk(e.id))!; return [r.before, r.after]; };
    expect(await read(created)).toEqual([null, http({ Authorization: '***', 'X-Trace': '***' })]);
    expect(await read(updated)).toEqual([http({ Authorization: '***' }), http({ Authorization: '***', Accept: '***' })]);
    expect(await read(requested)).toEqual([null, http({})]);
    expect(await read(purge)).toEqual([null, { jobType: 'audit.retention_purge', params: { olderThanDays: 3 } }]);
  });
});
