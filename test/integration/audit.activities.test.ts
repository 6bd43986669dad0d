// The export writer alone (a batch-kit chunk): it pages (bounded memory), heartbeats its cursor, and a
// retry that is handed the last heartbeat — on this host or another — continues the same CSV instead of starting over.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { parse } from 'csv-parse/sync';
import { QueryTypes } from 'sequelize';
import { createAuditActivities } from '../../activities/audit';
import { AuditEvent, AuditExport, createSequelize, StoredFile } from '../../db';
import { DiskBlobStore } from '../../lib/blob-store';
import { buildTenant } from '../helpers/factories';

const sequelize = createSequelize(process.env.DATABASE_URL!);
const blobs = new DiskBlobStore(fs.mkdtempSync(path.join(os.tmpdir(), 'docket-blobs-')));
const activities = createAuditActivities({ blobs, exportPageSize: 10 });
afterAll(() => sequelize.close());

async function exportOf(n: number) {
  const tenant = await buildTenant();
  await AuditEvent.bulkCreate(Array.from({ length: n }, (_, i) => ({
    tenantId: tenant.id, actorType: 'system' as const, actorId: null, action: 'files.file.uploaded' as const, entityType: 'file',
    entityId: `f-${i}`, before: null, after: null, requestId: null, workflowId: null, eventKey: null,
  })));
  const id = randomUUID();
  await AuditExport.create({ id, tenantId: tenant.id, status: 'running', filters: {}, workflowId: `audit-export:${tenant.id}:${id}`, requestedBy: null });
  return { exportId: id, tenantId: tenant.id, filters: {} };
}

async function csvRows(fileId: string) {
  const file = (await StoredFile.findByPk(fileId))!;
  const chunks: Buffer[] = [];
  for await (const c of blobs.open(file.sha256)) chunks.push(c as Buffer);
  return parse(Buffer.concat(chunks).toString('utf8'), { columns: true }) as Record<string, string>[];
}

/** Runs an activity in a mock environment, typed by the activity's own signature. */
const runIn = <A, R>(env: MockActivityEnvironment, fn: (a: A) => Promise<R>, a: A) => env.run(fn, a) as Promise<R>;

type Beat = { cursor: { lastId: string | null; rows: number; bytes: number } | null };
/** The rows each heartbeat's cursor had written (a beat repeated by the keep-alive timer counted once). */
const rowsOf = (beats: Beat[]) => beats.map((b) => b.cursor?.rows).filter((r, i, all) => r !== all[i - 1]);

it('writes page by page, heartbeating a cursor after each page', async () => {
  const input = await exportOf(35);
  const env = new MockActivityEnvironment();
  const beats: Beat[] = [];
  env.on('heartbeat', (d: Beat) => beats.push(d));
  const report = await runIn(env, activities.writeAuditExportChunk, { ...input, cursor: null });
  expect(report.done).toBe(true);
  expect(report.cursor!.rows).toBe(35);
  expect(rowsOf(beats)).toEqual([0, 10, 20, 30, 35]);
  expect((await AuditExport.findByPk(input.exportId))!.rowsWritten).toBe(35);
  const { fileId, rows } = await runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...input, cursor: report.cursor! });
  expect(rows).toBe(35);
  expect((await csvRows(fileId)).map((r) => r.entity_id)).toEqual(Array.from({ length: 35 }, (_, i) => `f-${i}`));
});

it('continues from the last heartbeat on retry: every row once', async () => {
  const input = await exportOf(25);
  // First attempt: stop it after its second page, as a crash would.
  const first = new MockActivityEnvironment();
  let second: Beat | undefined;
  first.on('heartbeat', (d: Beat) => { if (d.cursor?.rows === 20 && !second) { second = d; first.cancel(); } });
  await expect(runIn(first, activities.writeAuditExportChunk, { ...input, cursor: null })).rejects.toThrow();
  expect(second).toBeDefined();
  // The retry is handed the heartbeat, as Temporal does, and appends only the rest.
  const retry = new MockActivityEnvironment({ heartbeatDetails: second, attempt: 2 });
  const beats: Beat[] = [];
  retry.on('heartbeat', (d: Beat) => beats.push(d));
  const report = await runIn(retry, activities.writeAuditExportChunk, { ...input, cursor: null });
  expect(rowsOf(beats)).toEqual([20, 25]);
  const { fileId, rows } = await runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...input, cursor: report.cursor! });
  expect(rows).toBe(25);
  const ids = (await csvRows(fileId)).map((r) => r.entity_id);
  expect(ids).toEqual(Array.from({ length: 25 }, (_, i) => `f-${i}`));
});

/** Runs the writer until it has heartbeated `rows`, then cancels it there, as a crash would; answers that heartbeat. */
async function crashAt(input: Awaited<ReturnType<typeof exportOf>>, rows: number, on = activities): Promise<Beat[]> {
  const env = new MockActivityEnvironment();
  const beats: Beat[] = [];
  env.on('heartbeat', (d: Beat) => { beats.push(d); if (d.cursor?.rows === rows) env.cancel(); });
  await expect(runIn(env, on.writeAuditExportChunk, { ...input, cursor: null })).rejects.toThrow();
  return beats;
}

const partsOf = async (exportId: string) => (await sequelize.query<{ from_rows: number }>('SELECT from_rows FROM audit_export_parts WHERE export_id = $1 ORDER BY from_rows',
  { bind: [exportId], type: QueryTypes.SELECT })).map((p) => p.from_rows);

it('a retry on another host, sharing no disk with the first, goes on from the heartbeat; the parts are dropped once stored', async () => {
  const input = await exportOf(25);
  const beats = await crashAt(input, 20);
  // Host B: its own store folder (and so its own scratch folder); only Postgres is shared.
  const hostB = createAuditActivities({ blobs: new DiskBlobStore(fs.mkdtempSync(path.join(os.tmpdir(), 'docket-blobs-b-'))), exportPageSize: 10 });
  const retry = new MockActivityEnvironment({ heartbeatDetails: beats.find((b) => b.cursor?.rows === 20), attempt: 2 });
  const seen: Beat[] = [];
  retry.on('heartbeat', (d: Beat) => seen.push(d));
  const report = await runIn(retry, hostB.writeAuditExportChunk, { ...input, cursor: null });
  expect(rowsOf(seen)).toEqual([20, 25]);
  expect(await partsOf(input.exportId)).toEqual([0, 10, 20]);
  const { fileId } = await runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...input, cursor: report.cursor! });
  expect((await csvRows(fileId)).map((r) => r.entity_id)).toEqual(Array.from({ length: 25 }, (_, i) => `f-${i}`));
  expect(await partsOf(input.exportId)).toEqual([]);
});

it('a retry handed an older heartbeat than the pages written writes them again over themselves: every row once', async () => {
  const input = await exportOf(35);
  const beats = await crashAt(input, 30);
  expect(await partsOf(input.exportId)).toEqual([0, 10, 20]);
  // The server last heard of 10 rows (the later heartbeats were lost with the worker).
  const older = beats.find((b) => b.cursor?.rows === 10)!;
  const report = await runIn(new MockActivityEnvironment({ heartbeatDetails: older, attempt: 2 }), activities.writeAuditExportChunk, { ...input, cursor: null });
  const { fileId } = await runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...input, cursor: report.cursor! });
  expect((await csvRows(fileId)).map((r) => r.entity_id)).toEqual(Array.from({ length: 35 }, (_, i) => `f-${i}`));
});

it('starts over when the parts do not hold what the cursor promises (lost, or written by a release that kept a file)', async () => {
  const input = await exportOf(15);
  const beats = await crashAt(input, 10);
  await sequelize.query('DELETE FROM audit_export_parts WHERE export_id = $1', { bind: [input.exportId] });
  const retry = new MockActivityEnvironment({ heartbeatDetails: beats[beats.length - 1], attempt: 2 });
  const seen: Beat[] = [];
  retry.on('heartbeat', (d: Beat) => seen.push(d));
  const report = await runIn(retry, activities.writeAuditExportChunk, { ...input, cursor: null });
  expect(rowsOf(seen)).toEqual([0, 10, 15]);
  const { fileId } = await runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...input, cursor: report.cursor! });
  expect((await csvRows(fileId)).map((r) => r.entity_id)).toEqual(Array.from({ length: 15 }, (_, i) => `f-${i}`));
});

it('refuses to store a CSV short of what the chunks reported (the pages lost with a database crash): nothing stored', async () => {
  const input = await exportOf(12);
  const report = await runIn(new MockActivityEnvironment(), activities.writeAuditExportChunk, { ...input, cursor: null });
  await sequelize.query('DELETE FROM audit_export_parts WHERE export_id = $1 AND from_rows = 10', { bind: [input.exportId] });
  await expect(runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...input, cursor: report.cursor! }))
    .rejects.toMatchObject({ type: 'EXPORT_PAGES_LOST', nonRetryable: true });
  expect(await StoredFile.count({ where: { tenantId: input.tenantId } })).toBe(0);
});

it('stores the file once even if the activity runs again after finishing', async () => {
  const input = await exportOf(3);
  const report = await runIn(new MockActivityEnvironment(), activities.writeAuditExportChunk, { ...input, cursor: null });
  const a = await runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...input, cursor: report.cursor! });
  const b = await runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...input, cursor: report.cursor! });
  expect(b.fileId).toBe(a.fileId);
  expect(await StoredFile.count({ where: { tenantId: input.tenantId } })).toBe(1);
});

it('still writes the whole export in one activity for exports started before the batch kit', async () => {
  const input = await exportOf(23);
  const { fileId, rows } = await runIn(new MockActivityEnvironment(), activities.writeAuditExport, input);
  expect(rows).toBe(23);
  expect((await csvRows(fileId)).map((r) => r.entity_id)).toEqual(Array.from({ length: 23 }, (_, i) => `f-${i}`));
});

it('a failed export (its run cancelled in Temporal) is never made ready by a finish still under way, nor a ready one failed', async () => {
  const input = await exportOf(3);
  const report = await runIn(new MockActivityEnvironment(), activities.writeAuditExportChunk, { ...input, cursor: null });
  await runIn(new MockActivityEnvironment(), activities.failAuditExport, { ...input, error: 'cancelled in Temporal' });
  expect(await AuditEvent.count({ where: { tenantId: input.tenantId, action: 'audit.export.failed' } })).toBe(1);
  // The finish that was under way: its parts are gone, the export stays failed and unaudited as completed.
  await runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...input, cursor: report.cursor! }).catch(() => undefined);
  await runIn(new MockActivityEnvironment(), activities.completeAuditExport, { ...input, fileId: randomUUID(), rows: 3 });
  expect(await AuditExport.findByPk(input.exportId)).toMatchObject({ status: 'failed', fileId: null, error: 'cancelled in Temporal' });
  expect(await AuditEvent.count({ where: { tenantId: input.tenantId, action: 'audit.export.completed' } })).toBe(0);

  // The other way round: ready first, then the late failure write changes nothing.
  const done = await exportOf(2);
  const r = await runIn(new MockActivityEnvironment(), activities.writeAuditExportChunk, { ...done, cursor: null });
  const { fileId } = await runIn(new MockActivityEnvironment(), activities.finishAuditExport, { ...done, cursor: r.cursor! });
  await runIn(new MockActivityEnvironment(), activities.failAuditExport, { ...done, error: 'cancelled in Temporal' });
  expect(await AuditExport.findByPk(done.exportId)).toMatchObject({ status: 'ready', fileId, error: null });
  expect(await AuditEvent.count({ where: { tenantId: done.tenantId, action: 'audit.export.failed' } })).toBe(0);
});
