// An import's revert runs as its own workflow (`import-reverts:<tenant>:<id>`), one transaction in the worker: with
// IMPORT_REVERT_WAIT_MS=300 a revert held up by a locked row is answered 202 once the wait is over, and the import's `revert` says how it went — running
// (asked again: 409 IMPORT_REVERT_RUNNING), reverted with its counts, or refused with nothing changed. A worker
// SIGKILLed inside the revert's transaction leaves nothing half done, and the next worker reverts it exactly once.
import type { Transaction } from 'sequelize';
import { AuditEvent, Subscriber } from '../../db';
import { ENTITY_ID, STATUS } from '../../workflows/search-attributes';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, killWorker, spawnWorker } from '../helpers/worker-process';

let app: TestApp;
beforeAll(async () => { app = await startTestApp({ IMPORT_REVERT_WAIT_MS: '300' }); });
afterAll(async () => {
  killAllWorkers();
  await app.close();
});

const startWorker = () => spawnWorker({ WORKER_QUEUES: 'imports' });
const COLUMNS = [{ source: 'email', field: 'email' }, { source: 'name', field: 'name' }, { source: 'plan', field: 'attributes.plan' }];
const IMPORTER = ['imports.*', 'audience.*', 'files.*'];
const revertId = (tenantId: string, importId: string) => `import-reverts:${tenantId}:${importId}`;

async function get(key: string, id: string) {
  return (await app.call('get', `/v1/imports/${id}`, key).expect(200)).body;
}

/** Imports `rows` new subscribers (a@…, b@… by index) and replaces the name of `seeded`, if given; answers the finished run. */
async function importRows(key: string, rows: number, seeded?: string) {
  const lines = ['email,name,plan', ...Array.from({ length: rows }, (_, i) => `person${i}@example.com,Person ${i},free`), ...(seeded ? [`${seeded},Imported name,pro`] : [])];
  const file = await app.call('post', '/v1/files', key).attach('file', Buffer.from(lines.join('\n') + '\n'), { filename: 'people.csv', contentType: 'text/csv' }).expect(201);
  const started = await app.call('post', '/v1/imports', key).send({ fileId: file.body.id, target: 'subscribers', columns: COLUMNS, mergeStrategy: 'replace' }).expect(202);
  return waitFor(async () => {
    const run = await get(key, started.body.id);
    if (run.phase === 'failed') throw new Error(`import failed: ${JSON.stringify(run.error)}`);
    return run.phase === 'finished' && run;
  }, { what: 'import finished', timeoutMs: 60_000, intervalMs: 100 });
}

/** Holds one subscriber row locked (as a concurrent edit would) until `release`: the revert's DELETE waits on it. */
async function holdRow(id: string): Promise<() => Promise<void>> {
  const t: Transaction = await app.sequelize.transaction();
  await Subscriber.findOne({ where: { id }, lock: t.LOCK.UPDATE, transaction: t });
  return () => t.rollback();
}

/** The revert's DELETE is waiting on a row lock (so the revert is inside its transaction). */
const revertWaitingOnLock = async () => {
  const [rows] = await app.sequelize.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM subscribers s%'");
  return rows.length > 0;
};

const revertedEvents = (tenantId: string, importId: string) => AuditEvent.count({ where: { tenantId, action: 'imports.import.reverted', entityId: importId } });

describe('revert as a workflow', () => {
  let worker: ReturnType<typeof startWorker>;
  beforeAll(() => { worker = startWorker(); });
  afterAll(() => killWorker(worker));

  it('answers 202, runs as import-reverts:<tenant>:<id>, refuses a second ask while it runs, then shows the counts', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    const seed = await app.call('post', '/v1/subscribers', key).send({ email: 'seed@example.com', name: 'Seed', attributes: { plan: 'team' } }).expect(201);
    const run = await importRows(key, 3, 'seed@example.com');
    expect(run.counts).toMatchObject({ created: 3, updated: 1 });
    const created = await Subscriber.findOne({ where: { tenantId: tenant.id, email: 'person1@example.com' } });
    const release = await holdRow(created!.id);
    let released = false;
    try {
      const asked = Date.now();
      const res = await app.call('post', `/v1/imports/${run.id}/revert`, key).expect(202);
      expect(Date.now() - asked).toBeGreaterThanOrEqual(300);
      expect(Date.now() - asked).toBeLessThan(3_000);
      expect(res.headers.location).toBe(`/v1/imports/${run.id}`);
      expect(res.body.revert).toMatchObject({ status: 'running', requestedBy: run.createdBy, deleted: null, restored: null, error: null });
      expect(res.body.revertedAt).toBeNull();
      await waitFor(revertWaitingOnLock, { what: 'the revert inside its transaction', timeoutMs: 30_000, intervalMs: 50 });

      const again = await app.call('post', `/v1/imports/${run.id}/revert`, key).expect(409);
      expect(again.body.code).toBe('IMPORT_REVERT_RUNNING');
      const described = await app.client.workflow.getHandle(revertId(tenant.id, run.id)).describe();
      expect(described.status.name).toBe('RUNNING');
      expect(described.typedSearchAttributes.get(ENTITY_ID)).toBe(run.id);
      expect(described.typedSearchAttributes.get(STATUS)).toBe('reverting');
      expect((await get(key, run.id)).revert.status).toBe('running');
      expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(4);

      await release();
      released = true;
    } finally {
      if (!released) await release();
    }
    const done = await waitFor(async () => { const r = await get(key, run.id); return r.revert.status !== 'running' && r; }, { what: 'revert outcome', timeoutMs: 30_000, intervalMs: 100 });
    expect(done.revert).toMatchObject({ status: 'reverted', deleted: 3, restored: 1, error: null });
    expect(done.revertedAt).not.toBeNull();
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(1);
    expect((await app.call('get', `/v1/subscribers/${seed.body.id}`, key).expect(200)).body).toMatchObject({ name: 'Seed', attributes: { plan: 'team' } });
    expect(await revertedEvents(tenant.id, run.id)).toBe(1);
    const event = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'imports.import.reverted', entityId: run.id } });
    expect(event?.workflowId).toBe(revertId(tenant.id, run.id));
    await waitFor(async () => (await app.client.workflow.getHandle(revertId(tenant.id, run.id)).describe()).typedSearchAttributes.get(STATUS) === 'reverted',
      { what: 'Status reverted', timeoutMs: 10_000 });
    expect((await app.call('post', `/v1/imports/${run.id}/revert`, key).expect(409)).body.code).toBe('IMPORT_NOT_REVERTIBLE');
  });

  it('writes a refusal the worker finds on the import, changes nothing, and may be asked again', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    const run = await importRows(key, 2);
    const changed = await Subscriber.findOne({ where: { tenantId: tenant.id, email: 'person0@example.com' } });
    await app.call('patch', `/v1/subscribers/${changed!.id}`, key).send({ name: 'Edited since' }).expect(200);

    const other = await Subscriber.findOne({ where: { tenantId: tenant.id, email: 'person1@example.com' } });
    for (let ask = 1; ask <= 2; ask++) {
      // Held up past the wait, so the refusal is found after the answer and written on the import.
      const release = await holdRow(other!.id);
      try {
        expect((await app.call('post', `/v1/imports/${run.id}/revert`, key).expect(202)).body.revert.status).toBe('running');
      } finally {
        await release();
      }
      const done = await waitFor(async () => { const r = await get(key, run.id); return r.revert.status !== 'running' && r; }, { what: `outcome of ask ${ask}`, timeoutMs: 30_000, intervalMs: 100 });
      expect(done.revert).toMatchObject({ status: 'refused', deleted: null, restored: null, error: { code: 'IMPORT_CHANGED_SINCE' } });
      expect(done.revertedAt).toBeNull();
      expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(2);
      expect(await revertedEvents(tenant.id, run.id)).toBe(0);
      // Its workflow closes a moment after the refusal is written (asked again before that: 409 IMPORT_REVERT_RUNNING).
      await waitFor(async () => (await app.client.workflow.getHandle(revertId(tenant.id, run.id)).describe()).status.name === 'COMPLETED', { what: 'refused revert closed', timeoutMs: 10_000 });
    }
  });

  it('refuses at once what the run itself rules out, and 403 without the target\'s permission', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    const file = await app.call('post', '/v1/files', key).attach('file', Buffer.from('email,name,plan\nx@example.com,X,free\n'), { filename: 'x.csv', contentType: 'text/csv' }).expect(201);
    const dry = await app.call('post', '/v1/imports', key).send({ fileId: file.body.id, target: 'subscribers', columns: COLUMNS, dryRun: true }).expect(202);
    await waitFor(async () => (await get(key, dry.body.id)).phase === 'finished', { what: 'dry run finished', timeoutMs: 60_000, intervalMs: 100 });
    expect((await app.call('post', `/v1/imports/${dry.body.id}/revert`, key).expect(409)).body.code).toBe('IMPORT_NOT_REVERTIBLE');
    const { key: noTarget } = await buildCaller(['imports.*'], tenant);
    expect((await app.call('post', `/v1/imports/${dry.body.id}/revert`, noTarget).expect(403)).body.permission).toBe('audience.import');
    expect((await get(key, dry.body.id)).revert).toBeNull();
  });
});

it('a worker SIGKILLed inside the revert\'s transaction leaves nothing done; the next worker reverts it exactly once', async () => {
  let worker = startWorker();
  const { key, tenant } = await buildCaller(IMPORTER);
  const run = await importRows(key, 500);
  const held = await Subscriber.findOne({ where: { tenantId: tenant.id, email: 'person250@example.com' } });
  const release = await holdRow(held!.id);
  let released = false;
  try {
    await app.call('post', `/v1/imports/${run.id}/revert`, key).expect(202);
    await waitFor(revertWaitingOnLock, { what: 'the revert inside its transaction', timeoutMs: 30_000, intervalMs: 50 });
    await killWorker(worker);
    await release();
    released = true;
  } finally {
    if (!released) await release();
  }
  // The killed worker's transaction never committed: every row is there, and the revert is still running.
  await waitFor(async () => !(await revertWaitingOnLock()), { what: 'the dead worker\'s statement gone', timeoutMs: 30_000 });
  expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(500);
  expect((await get(key, run.id)).revert.status).toBe('running');
  const pending = (await app.client.workflow.getHandle(revertId(tenant.id, run.id)).describe()).raw.pendingActivities ?? [];
  expect(pending.map((a) => a.activityType?.name)).toEqual(['revertImport']);

  worker = startWorker();
  const done = await waitFor(async () => { const r = await get(key, run.id); return r.revert.status !== 'running' && r; }, { what: 'revert after the crash', timeoutMs: 90_000, intervalMs: 200 });
  expect(done.revert).toMatchObject({ status: 'reverted', deleted: 500, restored: 0 });
  expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(0);
  expect(await revertedEvents(tenant.id, run.id)).toBe(1);
  await killWorker(worker);
}, 180_000);
