// A worker SIGKILLed in the middle of a 200,000-row import, once while staging and once while merging: another
// worker resumes from the heartbeated cursor and the committed merge chunks, and the import ends with exactly the
// expected rows and counts — nothing lost, nothing staged or merged twice.
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { AuditEvent, ImportRejection, ImportRun, Subscriber } from '../../db';
import { PermissionSet } from '../../domains/identity/permissions';
import { requestImport } from '../../domains/imports/commands';
import { DiskBlobStore } from '../../lib/blob-store';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, killWorker, spawnWorker } from '../helpers/worker-process';

let app: TestApp;
const ENV = {
  WORKER_QUEUES: 'imports', IMPORT_CHUNK_MS: '400', IMPORT_STAGE_CHUNK_ROWS: '2000', IMPORT_MERGE_CHUNK_ROWS: '2000', IMPORT_MERGE_CONCURRENCY: '1',
};
const startWorker = () => spawnWorker(ENV);

beforeAll(async () => { app = await startTestApp(); });
afterAll(async () => {
  killAllWorkers();
  await app.close();
});

const TOTAL = 200_000;

/** 200,000 rows: every 1,000th a bad address (rejected), every 2,000th a repeat of the row before it (DUPLICATE_ENTRY). */
function bigCsv(): { csv: string; valid: number; rejected: number } {
  const lines = ['email,name,plan'];
  let rejected = 0;
  for (let i = 1; i <= TOTAL; i++) {
    if (i % 1000 === 0) { lines.push(`not-an-address-${i},Bad,free`); rejected++; continue; }
    if (i % 2000 === 1 && i > 1) { lines.push(`user${i - 2}@example.com,Again,free`); rejected++; continue; }
    lines.push(`user${i}@example.com,User ${i},${i % 3 ? 'free' : 'pro'}`);
  }
  return { csv: lines.join('\n') + '\n', valid: TOTAL - rejected, rejected };
}

it('resumes staging and merging after SIGKILL with exactly the expected rows and counts', async () => {
  const { key, tenant, user } = await buildCaller(['*']);
  const { csv, valid, rejected } = bigCsv();
  const upload = await app.call('post', '/v1/files', key).attach('file', Buffer.from(csv), { filename: 'contacts.csv', contentType: 'text/csv' }).expect(201);

  let worker = startWorker();
  const run = await requestImport(
    { config: app.config, sequelize: app.sequelize, temporal: { client: app.client }, blobs: new DiskBlobStore(app.config.fileStoreDir), metrics: app.metrics },
    { tenantId: tenant.id, userId: user.id, roles: [], actor: { type: 'user', id: user.id }, requestId: null, permissions: new PermissionSet(['*'], null) },
    { fileId: upload.body.id, target: 'subscribers', columns: [{ source: 'email', field: 'email' }, { source: 'name', field: 'name' }, { source: 'plan', field: 'attributes.plan' }], mergeStrategy: 'merge' },
  );

  /** The attempt of that activity running now, if any. */
  const pendingActivities = async () => (await app.client.workflow.getHandle(run.workflowId).describe()).raw.pendingActivities ?? [];
  const runningNow = async (type: string) => (await pendingActivities())
    .find((a) => a.activityType?.name === type && a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED);
  /**
   * SIGKILLs the worker while an attempt of `type` runs and `ready` holds — a kill that lands inside the attempt, which
   * then stays pending for Temporal to retry. One that lands in the moment after the attempt ended (it is no longer
   * pending) proves nothing: a new worker takes over and the next attempt is awaited.
   */
  async function killInside(type: string, ready: () => Promise<boolean>, what: string): Promise<void> {
    for (let tries = 0; tries < 5; tries++) {
      const attempt = await waitFor(async () => (await ready()) && runningNow(type), { what, timeoutMs: 120_000, intervalMs: 10 });
      await killWorker(worker);
      if ((await pendingActivities()).some((a) => a.activityId === attempt.activityId)) return;
      worker = startWorker();
    }
    throw new Error(`no kill landed inside a ${type} attempt in 5 tries`);
  }

  // Mid-staging, past the first staging activity (so the retry has a heartbeated cursor to resume from).
  await killInside('stageImportChunk', async () => {
    const r = await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } });
    if (r && ['failed', 'finished'].includes(r.phase)) throw new Error(`ended too early: ${JSON.stringify(r.get())}`);
    return !!r && r.phase === 'parsing' && r.rowsRead >= 60_000 && r.rowsRead <= 160_000;
  }, 'staging part-way');
  const frozenStage = (await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } }))!;
  expect(frozenStage.rowsRead).toBeLessThan(TOTAL);
  worker = startWorker();
  // The retry reads on from the cursor its killed attempt heartbeated (the rows since it are read again, the
  // staging beyond it trimmed): its first committed chunk counts on from there, not from the start of the file.
  const resumedAt = await waitFor(async () => {
    const r = (await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } }))!;
    return r.rowsRead !== frozenStage.rowsRead && r.rowsRead;
  }, { what: 'staging resumed', timeoutMs: 60_000, intervalMs: 5 });
  expect(resumedAt).toBeGreaterThan(20_000);

  // Mid-merge: some rows created, far from all.
  await killInside('mergeImportChunk', async () => {
    const r = await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } });
    return !!r && r.phase === 'merging' && r.rowsCreated >= 10_000 && r.rowsCreated <= valid - 40_000;
  }, 'merging part-way');
  const frozenMerge = (await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } }))!;
  expect(frozenMerge.rowsCreated).toBeLessThan(valid);
  startWorker();

  const done = await waitFor(async () => {
    const r = await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } });
    return r && r.phase === 'finished' ? r : undefined;
  }, { what: 'import finished after two restarts', timeoutMs: 180_000, intervalMs: 200 });

  expect({ read: done.rowsRead, valid: done.rowsValid, rejected: done.rowsRejected, created: done.rowsCreated, updated: done.rowsUpdated, unchanged: done.rowsUnchanged, skipped: done.rowsSkipped })
    .toEqual({ read: TOTAL, valid, rejected, created: valid, updated: 0, unchanged: 0, skipped: 0 });
  expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(valid);
  expect(await Subscriber.count({ where: { tenantId: tenant.id, importId: run.id } })).toBe(valid);
  expect(await ImportRejection.count({ where: { tenantId: tenant.id, importId: run.id } })).toBe(rejected);
  expect(await ImportRejection.count({ where: { tenantId: tenant.id, importId: run.id, code: 'DUPLICATE_ENTRY' } })).toBe(TOTAL / 2000 - 1);

  // Both chunk activities really were retried after a kill (attempt ≥ 2), and the end was written once. The workflow
  // may have continued as new between the kills (more chunks on a slower machine), so every run of it is read: from
  // the last back through each run's predecessor.
  const retried = new Set<string>();
  for (let runId: string | undefined = (await app.client.workflow.getHandle(run.workflowId).describe()).runId; runId;) {
    const history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> = await app.client.workflow.getHandle(run.workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    const scheduled = new Map<string, string>();
    for (const e of events) {
      const a = e.activityTaskScheduledEventAttributes;
      if (a) scheduled.set(String(e.eventId), a.activityType?.name ?? '');
    }
    for (const e of events) {
      if ((e.activityTaskStartedEventAttributes?.attempt ?? 0) >= 2) retried.add(scheduled.get(String(e.activityTaskStartedEventAttributes!.scheduledEventId))!);
    }
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  expect(retried).toEqual(new Set(['stageImportChunk', 'mergeImportChunk']));
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'imports.import.finished', entityId: run.id } })).toBe(1);
}, 400_000);
