// http job header values stored before they were sealed — plain in the schedule's row and in its Temporal Schedule's
// action, as the code before sealing wrote them — are sealed by the start reconciler (domains/jobs/seal-stored-headers.ts)
// on the real stack: in both places, nothing else about the schedule changed, the job still sending the real value; a
// second run changes nothing; while Temporal is unreachable the row stays plain; two backfills at once seal each
// schedule once.
import { randomUUID } from 'node:crypto';
import { Client, ScheduleDescription } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { QueryTypes } from 'sequelize';
import { withActivityRetries } from '../../activities';
import { createSystemActivities } from '../../activities/system';
import { AuditEvent, JobSchedule } from '../../db';
import { PLAIN_HEADERS_PATH, PLAIN_ROWS, ScheduleUnansweredError, sealStoredJobHeaders } from '../../domains/jobs/seal-stored-headers';
import { isInfrastructureError } from '../../lib/dependency-errors';
import { openJobParams, plainHeaderNames } from '../../domains/jobs/secret-params';
import { connectTemporal } from '../../lib/temporal';
import type { ReconcileStartsResult } from '../../workflows/system.api';
import { buildCaller } from '../helpers/factories';
import { Stack, startStack } from '../helpers/stack';
import { hostPort, startTcpProxy } from '../helpers/tcp-proxy';
import { waitFor } from '../helpers/wait';

let stack: Stack;
// The reconciler's workflow and its activities on a queue of this file's own (the real bundle and activities; no start
// intents and a day's grace, so its other steps do nothing here).
let reconcilerConnection: NativeConnection;
let reconciler: Worker;
let reconcilerRunning: Promise<void>;
const reconcilerQueue = `test-reconcile-${randomUUID()}`;

beforeAll(async () => {
  stack = await startStack();
  const { config } = stack.app;
  reconcilerConnection = await NativeConnection.connect({ address: config.temporal.address });
  reconciler = await Worker.create({
    connection: reconcilerConnection, namespace: config.temporal.namespace, taskQueue: reconcilerQueue,
    workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! },
    activities: withActivityRetries(createSystemActivities({ secretsKey: config.secretsKey, startIntents: {}, reconcileStartsGraceMs: 86_400_000 })),
  });
  reconcilerRunning = reconciler.run();
});
afterAll(async () => {
  reconciler.shutdown();
  await reconcilerRunning;
  await reconcilerConnection.close();
  await stack.close();
});

const SECRET = `Bearer s3cr3t-${randomUUID()}`;
const TRACE = `trace-${randomUUID()}`;
const PLAIN_HEADERS = { Authorization: SECRET, 'X-Trace': TRACE };
const SEALED_HEADERS = { Authorization: expect.stringMatching(/^enc:v1:/), 'X-Trace': expect.stringMatching(/^enc:v1:/) };
const holdsSecret = (x: unknown) => { const s = JSON.stringify(x); return s.includes(SECRET.slice('Bearer '.length)) || s.includes(TRACE); };

/** One run of the start reconciler's workflow, as its Schedule starts it. */
const reconcile = () => stack.app.client.workflow.execute('reconcileStartsWorkflow', { taskQueue: reconcilerQueue, workflowId: `test-reconcile-${randomUUID()}`, args: [] }) as Promise<ReconcileStartsResult>;

const paramsFor = (path: string) => ({ url: `${stack.hooks.url}${path}`, method: 'POST', body: { hello: 'docket' }, headers: PLAIN_HEADERS });

interface Created { id: string; temporalScheduleId: string }

/** An http schedule made through the API (its header values sealed in the row and in Temporal). */
async function create(key: string, path: string, over: Record<string, unknown> = {}): Promise<Created> {
  return (await stack.app.call('post', '/v1/job-schedules', key).send({
    name: `call ${path}`, jobType: 'http', params: paramsFor(path), cron: '0 3 * * *', timezone: 'Europe/Berlin', ...over,
  }).expect(201)).body;
}

/** The row as the code before sealing wrote it: its header values plain (nothing else touched, updated_at neither). */
async function writePlainRow(s: Created, path: string): Promise<void> {
  await JobSchedule.sequelize!.query('UPDATE job_schedules SET params = $1::jsonb WHERE id = $2', { bind: [JSON.stringify(paramsFor(path)), s.id] });
}

/** The Temporal Schedule's action as the code before sealing wrote it: the run's input with the header values plain. */
async function writePlainArgs(s: Created, path: string): Promise<void> {
  await stack.app.client.schedule.getHandle(s.temporalScheduleId).update((d) => {
    const action = d.action as unknown as { args: [{ params: Record<string, unknown> }] };
    action.args[0].params = paramsFor(path);
    return d as never;
  });
}

/** A schedule as one made before header values were sealed: plain in its row and in its Temporal Schedule. */
async function legacy(key: string, path: string, over: Record<string, unknown> = {}): Promise<Created> {
  const s = await create(key, path, over);
  await writePlainRow(s, path);
  await writePlainArgs(s, path);
  return s;
}

const rowOf = async (id: string) => (await JobSchedule.sequelize!.query<{ rest: Record<string, unknown>; params: Record<string, unknown>; raw: string }>(
  `SELECT to_jsonb(j) - 'params' AS rest, params, params::text AS raw FROM job_schedules j WHERE id = $1`, { bind: [id], type: QueryTypes.SELECT },
))[0];
const describe = (s: Created, client: Client = stack.app.client) => client.schedule.getHandle(s.temporalScheduleId).describe();
const argsOf = (d: ScheduleDescription) => (d.action.args as [{ params: Record<string, unknown> & { headers: Record<string, string> } }])[0];
/** Everything about a Temporal Schedule but its args and its run history. */
const shapeOf = (d: ScheduleDescription) => ({
  spec: d.spec, policies: d.policies, state: d.state, memo: d.memo, searchAttributes: d.searchAttributes,
  action: { ...d.action, args: undefined }, nextActionTimes: d.info.nextActionTimes, createdAt: d.info.createdAt,
});
const sealedEvents = (tenantId: string) => AuditEvent.findAll({ where: { tenantId, action: 'system.job_schedule.headers_sealed' }, order: [['entityId', 'ASC']] });

it('seals plain header values in the row and the Temporal Schedule and nothing else; the job sends them; a second run changes nothing', async () => {
  const { key, tenant } = await buildCaller(['*']);
  // A paused cron schedule with an operator's note in Temporal, and a single run far ahead (one action left).
  const cron = await legacy(key, '/backfill-cron', { paused: true, overlapPolicy: 'buffer_one', catchupWindowSeconds: 600, retry: { maximumAttempts: 2, initialIntervalSeconds: 1 } });
  await stack.app.client.schedule.getHandle(cron.temporalScheduleId).update((d) => ({ ...d, state: { ...d.state, note: 'paused by ops: vendor maintenance' } }) as never);
  const once = await legacy(key, '/backfill-once', { cron: undefined, runAt: '2099-06-01T12:00:00Z', timezone: 'UTC' });
  // Left alone: a schedule already sealed, and one of another job type.
  const sealed = await create(key, '/backfill-sealed');
  const purge = (await stack.app.call('post', '/v1/job-schedules', key).send({ name: 'keys', jobType: 'housekeeping.expired_keys', params: { usedLinkDays: 40 }, cron: '0 4 * * *' }).expect(201)).body as Created;

  const rowsBefore = Object.fromEntries(await Promise.all([cron, once, sealed, purge].map(async (s) => [s.id, await rowOf(s.id)])));
  const before = Object.fromEntries(await Promise.all([cron, once, sealed, purge].map(async (s) => [s.id, await describe(s)])));
  for (const s of [cron, once]) {
    expect(rowsBefore[s.id].params.headers).toEqual(PLAIN_HEADERS);
    expect(argsOf(before[s.id]).params.headers).toEqual(PLAIN_HEADERS);
  }
  expect(before[cron.id].state).toEqual({ paused: true, note: 'paused by ops: vendor maintenance', remainingActions: undefined });
  expect(before[once.id].state).toMatchObject({ paused: false, remainingActions: 1 });
  const got = async (s: Created) => (await stack.app.call('get', `/v1/job-schedules/${s.id}`, key).expect(200)).body;
  const shownBefore = await got(cron);

  const first = await reconcile();
  expect(first).toMatchObject({ started: 0, dropped: 0, schedulesRemoved: 0 });
  expect(first.jobHeadersSealed).toBeGreaterThanOrEqual(2);

  for (const s of [cron, once]) {
    // The row: its header values sealed, the rest of params and every other column (version, updated_at …) as they were.
    const row = await rowOf(s.id);
    expect(row.params).toEqual({ ...rowsBefore[s.id].params, headers: SEALED_HEADERS });
    expect(row.rest).toEqual(rowsBefore[s.id].rest);
    expect(holdsSecret(row.raw)).toBe(false);
    // The Temporal Schedule: no plain value anywhere in it, the args sealed (opening to the values) and the rest of its
    // input, its spec, state (paused, note, remaining actions), policies and action as they were.
    const after = await describe(s);
    expect(holdsSecret(after)).toBe(false);
    const args = argsOf(after);
    expect(args).toEqual({ ...argsOf(before[s.id]), params: { ...argsOf(before[s.id]).params, headers: SEALED_HEADERS } });
    expect(openJobParams('http', args.params, stack.app.config.secretsKey).headers).toEqual(PLAIN_HEADERS);
    expect(shapeOf(after)).toEqual(shapeOf(before[s.id]));
  }
  // The others were not touched, in Postgres or in Temporal.
  for (const s of [sealed, purge]) {
    expect(await rowOf(s.id)).toEqual(rowsBefore[s.id]);
    const after = await describe(s);
    expect([after.info.lastUpdatedAt, after.action.args]).toEqual([before[s.id].info.lastUpdatedAt, before[s.id].action.args]);
  }
  // What the API shows is the same; the audit log has one event per schedule sealed, naming the headers, no value.
  expect(await got(cron)).toEqual(shownBefore);
  const events = await sealedEvents(tenant.id);
  expect(events.map((e) => [e.entityId, e.actorType, e.after])).toEqual([cron.id, once.id].sort().map((id) => [id, 'system', { headers: ['Authorization', 'X-Trace'] }]));
  expect(holdsSecret(await AuditEvent.findAll({ where: { tenantId: tenant.id } }))).toBe(false);

  // The job still sends the real values (run now: a paused schedule runs when triggered).
  await stack.app.call('post', `/v1/job-schedules/${cron.id}/run`, key).expect(202);
  const received = await stack.hooks.waitFor((h) => h.path === '/backfill-cron', 60_000);
  expect([received.headers.authorization, received.headers['x-trace']]).toEqual([SECRET, TRACE]);
  const run = await waitFor(async () => (await stack.app.call('get', `/v1/job-schedules/${cron.id}/runs`, key).expect(200)).body.items.find((r: { status: string }) => r.status !== 'running'), { what: 'the run after the backfill', timeoutMs: 60_000 });
  expect(run).toMatchObject({ status: 'completed', result: { status: 200 } });

  // A second run changes nothing: the same rows (the same sealed bytes), the Schedules not updated again, no new event.
  const rowsAfter = await Promise.all([cron, once].map((s) => rowOf(s.id)));
  const describedAfter = await Promise.all([cron, once].map((s) => describe(s)));
  expect((await reconcile()).jobHeadersSealed).toBe(0);
  expect(await Promise.all([cron, once].map((s) => rowOf(s.id)))).toEqual(rowsAfter);
  for (const [i, s] of [cron, once].entries()) {
    const again = await describe(s);
    expect([again.info.lastUpdatedAt, again.action.args, shapeOf(again)]).toEqual([describedAfter[i].info.lastUpdatedAt, describedAfter[i].action.args, shapeOf(describedAfter[i])]);
  }
  expect(await sealedEvents(tenant.id)).toHaveLength(2);
});

it('leaves the row plain while Temporal cannot be reached, and seals both once it can', async () => {
  const { key, tenant } = await buildCaller(['*']);
  const s = await legacy(key, '/backfill-outage');
  const t = hostPort(process.env.TEMPORAL_ADDRESS!);
  const proxy = await startTcpProxy(t.host, t.port);
  const { connection, client } = await connectTemporal(proxy.address, stack.app.config.temporal.namespace);
  try {
    await proxy.cut();
    const down = await sealStoredJobHeaders({ client, key: stack.app.config.secretsKey });
    expect(down.sealed).toBe(0);
    expect(down.errors).toHaveLength(1);
    // Neither side sealed, nothing recorded: the next run tries again.
    expect((await rowOf(s.id)).params.headers).toEqual(PLAIN_HEADERS);
    expect(argsOf(await describe(s)).params.headers).toEqual(PLAIN_HEADERS);
    expect(await sealedEvents(tenant.id)).toHaveLength(0);

    await proxy.restore();
    const up = await waitFor(async () => { const r = await sealStoredJobHeaders({ client, key: stack.app.config.secretsKey }); return r.errors.length === 0 && r; }, { what: 'a backfill with Temporal back' });
    expect(up.sealed).toBe(1);
    expect((await rowOf(s.id)).params.headers).toEqual(SEALED_HEADERS);
    expect(holdsSecret(await describe(s))).toBe(false);
    expect(await sealedEvents(tenant.id)).toHaveLength(1);
  } finally {
    await connection.close();
    await proxy.close();
  }
});

it('seals a row whose Temporal Schedule is sealed already (a commit lost after the update) or gone, updating no Schedule', async () => {
  const { key } = await buildCaller(['*']);
  const lostCommit = await create(key, '/backfill-lost-commit');
  await writePlainRow(lostCommit, '/backfill-lost-commit');
  const gone = await legacy(key, '/backfill-gone');
  await stack.app.client.schedule.getHandle(gone.temporalScheduleId).delete();
  const before = await describe(lostCommit);

  const { sealed, errors } = await sealStoredJobHeaders({ client: stack.app.client, key: stack.app.config.secretsKey });
  expect([sealed, errors]).toEqual([2, []]);
  for (const s of [lostCommit, gone]) expect((await rowOf(s.id)).params.headers).toEqual(SEALED_HEADERS);
  const after = await describe(lostCommit);
  expect([after.info.lastUpdatedAt, after.action.args]).toEqual([before.info.lastUpdatedAt, before.action.args]);
});

it('two backfills at once (two workers) seal each schedule once', async () => {
  const { key, tenant } = await buildCaller(['*']);
  const all = [];
  for (let i = 0; i < 6; i++) all.push(await legacy(key, `/backfill-twice-${i}`));
  const backfill = () => sealStoredJobHeaders({ client: stack.app.client, key: stack.app.config.secretsKey });
  const [a, b] = await Promise.all([backfill(), backfill()]);
  expect([a.errors, b.errors, a.sealed + b.sealed]).toEqual([[], [], all.length]);
  for (const s of all) {
    expect((await rowOf(s.id)).params.headers).toEqual(SEALED_HEADERS);
    expect(holdsSecret(await describe(s))).toBe(false);
  }
  expect((await sealedEvents(tenant.id)).map((e) => e.entityId).sort()).toEqual(all.map((s) => s.id).sort());
});

it('a Schedule Temporal does not answer about in time is that schedule\'s failure, not an outage: the run goes on, the row stays plain', async () => {
  const { key } = await buildCaller(['*']);
  const s = await legacy(key, '/backfill-unanswered');
  // No time at all: every call fails as DEADLINE_EXCEEDED, which alone would read as Temporal being down.
  const late = await sealStoredJobHeaders({ client: stack.app.client, key: stack.app.config.secretsKey, deadlineMs: 0 });
  expect(late.errors.length).toBeGreaterThanOrEqual(1);
  for (const e of late.errors) {
    expect(e).toBeInstanceOf(ScheduleUnansweredError);
    expect(isInfrastructureError(e)).toBe(false);
  }
  expect(late.errors.map((e) => (e as Error).message).join('\n')).toContain(s.temporalScheduleId);
  expect((await rowOf(s.id)).params.headers).toEqual(PLAIN_HEADERS);
  const again = await sealStoredJobHeaders({ client: stack.app.client, key: stack.app.config.secretsKey });
  expect(again.errors).toEqual([]);
  expect((await rowOf(s.id)).params.headers).toEqual(SEALED_HEADERS);
});

it('the reconciler\'s step seals the schedules it can and leaves one that fails plain for the next run, without failing', async () => {
  const { key } = await buildCaller(['*']);
  const failing = await legacy(key, '/backfill-step-fails');
  const fine = await legacy(key, '/backfill-step-fine');
  // Temporal refusing one Schedule (not an outage): every call about it fails, the others are answered.
  const real = stack.app.client;
  const schedule = new Proxy(real.schedule, {
    get: (target, prop) => (prop === 'getHandle'
      ? (id: string) => (id === failing.temporalScheduleId ? { describe: async () => { throw new Error('the scheduler refused this one'); } } : target.getHandle(id))
      : Reflect.get(target, prop)),
  });
  const client = new Proxy(real, { get: (target, prop) => (prop === 'schedule' ? schedule : Reflect.get(target, prop)) });
  const step = createSystemActivities({ secretsKey: stack.app.config.secretsKey }).sealStoredJobHeaders;
  const warned: { message: string; meta?: Record<string, unknown> }[] = [];
  const logger = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, error: () => undefined,
    warn: (message: string, meta?: Record<string, unknown>) => { warned.push({ message, meta }); } };
  expect(await new MockActivityEnvironment({}, { client, logger }).run(step)).toBeGreaterThanOrEqual(1);
  expect((await rowOf(fine.id)).params.headers).toEqual(SEALED_HEADERS);
  expect((await rowOf(failing.id)).params.headers).toEqual(PLAIN_HEADERS);
  // Logged by the error's name (its message is not quoted: it could hold what the statement or the Schedule held).
  expect(warned).toEqual([{ message: expect.stringMatching(/plain header values/), meta: expect.objectContaining({ failed: 1, errors: ['Error'] }) }]);
  // The next run, Temporal answering, seals it.
  expect(await new MockActivityEnvironment({}, { client: real }).run(step)).toBe(1);
  expect((await rowOf(failing.id)).params.headers).toEqual(SEALED_HEADERS);
});

it('finds the plain schedules as plainHeaderNames does, through a partial index that is empty once none is left', async () => {
  const sealed = 'enc:v1:AAAA.BBBB.CCCC';
  const shapes = [
    { headers: { Authorization: 'Bearer x' } }, { headers: { Authorization: sealed, Accept: 'json' } }, { headers: { Authorization: sealed } },
    { headers: {} }, {}, { headers: { 'X-Count': 3, 'X-On': true, 'X-None': null } }, { headers: { A: sealed, B: 'enc:v2:not-ours' } }, { url: 'https://example.com/' },
  ];
  for (const params of shapes) {
    const [{ plain }] = await JobSchedule.sequelize!.query<{ plain: boolean }>(`SELECT $1::jsonb @? '${PLAIN_HEADERS_PATH}' AS plain`, { bind: [JSON.stringify(params)], type: QueryTypes.SELECT });
    expect({ params, plain }).toEqual({ params, plain: plainHeaderNames('http', params).length > 0 });
  }
  // The backfill's query can be answered from the index (its condition is the index's, word for word).
  await JobSchedule.sequelize!.transaction(async (transaction) => {
    await JobSchedule.sequelize!.query('SET LOCAL enable_seqscan = off', { transaction });
    const plan = await JobSchedule.sequelize!.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${PLAIN_ROWS}`, { bind: ['00000000-0000-0000-0000-000000000000', 200], type: QueryTypes.SELECT, transaction });
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('job_schedules_plain_headers');
  });
});
