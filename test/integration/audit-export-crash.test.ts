// A worker killed in the middle of an export: another worker resumes it from the heartbeat cursor (the
// retried chunk starts at the heartbeated lastId, not at the first event), and the CSV holds every event
// exactly once.
import { defaultPayloadConverter } from '@temporalio/common';
import { parse } from 'csv-parse/sync';
import { QueryTypes } from 'sequelize';
import { AuditEvent, AuditExport } from '../../db';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, killWorker, spawnWorker } from '../helpers/worker-process';

let app: TestApp;

const PAGE = 25;
const startWorker = () => spawnWorker({ WORKER_QUEUES: 'audit', AUDIT_EXPORT_PAGE_SIZE: String(PAGE), AUDIT_EXPORT_PAGE_PAUSE_MS: '150' });

interface Cursor { lastId: string; rows: number; bytes: number }

const ms = (t?: { seconds?: unknown; nanos?: number | null } | null) => (t ? Number(String(t.seconds ?? 0)) * 1000 + (t.nanos ?? 0) / 1e6 : 0);

/**
 * The export's chunk activity as the Temporal server holds it: its attempt, the last cursor it heartbeated
 * (what a retry is given; the batch kit heartbeats `{ cursor }`), and whether that heartbeat came from the
 * current attempt (a retry keeps the previous attempt's details until it heartbeats itself).
 */
async function heartbeated(workflowId: string): Promise<{ attempt: number; cursor?: Cursor | null; fromThisAttempt: boolean } | undefined> {
  const pending = (await app.client.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? [];
  const writer = pending.find((a) => a.activityType?.name === 'writeAuditExportChunk');
  if (!writer) return undefined;
  const payload = writer.heartbeatDetails?.payloads?.[0];
  return {
    attempt: writer.attempt ?? 1,
    cursor: payload ? defaultPayloadConverter.fromPayload<{ cursor: Cursor | null }>(payload).cursor : undefined,
    fromThisAttempt: ms(writer.lastHeartbeatTime) >= ms(writer.lastStartedTime) && ms(writer.lastStartedTime) > 0,
  };
}

beforeAll(async () => { app = await startTestApp(); });
afterAll(async () => {
  killAllWorkers();
  await app.close();
});

it('resumes after SIGKILL from the heartbeated cursor, with nothing lost and nothing written twice', async () => {
  const { key, tenant } = await buildCaller(['audit.*']);
  // Long enough (80 pages, ≥ 12 s) that the SDK's throttled heartbeats (every 8 s with a 10 s timeout)
  // bring the server a cursor well past the first page before the kill.
  const total = 2000;
  await AuditEvent.bulkCreate(Array.from({ length: total }, (_, i) => ({
    tenantId: tenant.id, actorType: 'system' as const, actorId: null, action: 'files.file.uploaded' as const, entityType: 'file',
    entityId: `f-${i}`, before: null, after: { i }, requestId: null, workflowId: null, eventKey: null,
  })));
  const first = startWorker();
  const started = await app.call('post', '/v1/audit-exports', key).send({ entityType: 'file' }).expect(202);
  const workflowId = started.body.workflowId as string;

  // Kill the worker once the server holds a cursor past the first few pages: mid-export, not before, not after.
  await waitFor(async () => ((await heartbeated(workflowId))?.cursor?.rows ?? 0) >= 4 * PAGE, { what: 'a heartbeated cursor part-way', timeoutMs: 60_000, intervalMs: 100 });
  await killWorker(first);
  const frozen = (await AuditExport.findByPk(started.body.id))!;
  expect(frozen.status).toBe('running');
  // What the retry will be given.
  const resumeFrom = (await heartbeated(workflowId))!.cursor!;
  expect(resumeFrom.rows).toBeGreaterThanOrEqual(4 * PAGE);
  expect(resumeFrom.rows % PAGE).toBe(0);
  expect(resumeFrom.rows).toBeLessThan(total);
  expect(frozen.rowsWritten).toBeLessThan(total);

  startWorker();
  // The retry's first heartbeat is the cursor it resumed from: the heartbeated one, not the start (null).
  const resumedAt = await waitFor(async () => {
    const h = await heartbeated(workflowId);
    return h && h.attempt >= 2 && h.fromThisAttempt && { cursor: h.cursor };
  }, { what: 'the retry heartbeating where it resumed', timeoutMs: 60_000, intervalMs: 100 });
  expect(resumedAt.cursor).toEqual(resumeFrom);
  const ids = (await AuditEvent.findAll({ attributes: ['id'], where: { tenantId: tenant.id, entityType: 'file' }, order: [['id', 'ASC']] })).map((e) => e.id);
  expect(ids.indexOf(resumeFrom.lastId)).toBe(resumeFrom.rows - 1);

  const done = await waitFor(async () => {
    const res = await app.call('get', `/v1/audit-exports/${started.body.id}`, key).expect(200);
    return res.body.status === 'ready' && res.body;
  }, { what: 'export finished after restart', timeoutMs: 90_000 });

  const csv = await app.call('get', done.downloadUrl, key).expect(200);
  const rows = parse(csv.text, { columns: true }) as Record<string, string>[];
  expect(rows).toHaveLength(total);
  expect(new Set(rows.map((r) => r.id)).size).toBe(total);
  expect(done.rowsWritten).toBe(total);
  // The activity really was retried (attempt 2).
  const history = await app.client.workflow.getHandle(done.workflowId).fetchHistory();
  const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
  expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audit.export.completed' } })).toBe(1);
}, 180_000);

it('cancelled in the Temporal UI mid-way: the export ends failed, not running, and keeps no parts', async () => {
  const { key, tenant } = await buildCaller(['audit.*']);
  const total = 1000;
  await AuditEvent.bulkCreate(Array.from({ length: total }, (_, i) => ({
    tenantId: tenant.id, actorType: 'system' as const, actorId: null, action: 'files.file.uploaded' as const, entityType: 'file',
    entityId: `g-${i}`, before: null, after: { i }, requestId: null, workflowId: null, eventKey: null,
  })));
  startWorker();
  const started = await app.call('post', '/v1/audit-exports', key).send({ entityType: 'file' }).expect(202);
  await waitFor(async () => ((await AuditExport.findByPk(started.body.id))?.rowsWritten ?? 0) >= 2 * PAGE, { what: 'an export part-way', timeoutMs: 60_000, intervalMs: 50 });

  // What the UI's "Request cancellation" does.
  const handle = app.client.workflow.getHandle(started.body.workflowId);
  await handle.cancel();
  await expect(handle.result()).rejects.toThrow();
  expect((await handle.describe()).status.name).toBe('CANCELLED');

  const shown = (await app.call('get', `/v1/audit-exports/${started.body.id}`, key).expect(200)).body;
  expect(shown).toMatchObject({ status: 'failed', error: 'cancelled in Temporal' });
  await app.call('get', `/v1/audit-exports/${started.body.id}/download`, key).expect(409);
  expect((await handle.describe()).searchAttributes.Status).toEqual(['failed']);
  // The input named its code's patches (the batch kit's, the cancelled write's): no patch marker in the history.
  expect(((await handle.fetchHistory()).events ?? []).filter((e) => e.markerRecordedEventAttributes)).toEqual([]);
  // The page being written when the cancel came is dropped or never written; later pages write nothing.
  await new Promise((r) => setTimeout(r, 2000));
  const [{ parts }] = await AuditEvent.sequelize!.query<{ parts: number }>('SELECT count(*)::int AS parts FROM audit_export_parts WHERE export_id = $1', { bind: [started.body.id], type: QueryTypes.SELECT });
  expect(parts).toBe(0);
  expect((await AuditExport.findByPk(started.body.id))!.status).toBe('failed');
}, 120_000);
