// The export writer alone: it pages (bounded memory), heartbeats its cursor, and a retry that is
// handed the last heartbeat continues the same file instead of starting over.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { parse } from 'csv-parse/sync';
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

it('writes page by page, heartbeating a cursor after each page', async () => {
  const input = await exportOf(35);
  const env = new MockActivityEnvironment();
  const beats: { lastId: string; rows: number }[] = [];
  env.on('heartbeat', (d) => beats.push(d));
  const { fileId, rows } = (await env.run(activities.writeAuditExport, input)) as { fileId: string; rows: number };
  expect(rows).toBe(35);
  expect(beats.map((b) => b.rows)).toEqual([10, 20, 30, 35]);
  expect((await csvRows(fileId)).map((r) => r.entity_id)).toEqual(Array.from({ length: 35 }, (_, i) => `f-${i}`));
});

it('continues from the last heartbeat on retry: every row once', async () => {
  const input = await exportOf(25);
  // First attempt: stop it after its second page, as a crash would.
  const first = new MockActivityEnvironment();
  let second: unknown;
  first.on('heartbeat', (d: { rows: number }) => { if (d.rows === 20) { second = d; first.cancel(); } });
  await expect(first.run(activities.writeAuditExport, input)).rejects.toThrow();
  expect(second).toBeDefined();
  // The retry is handed the heartbeat, as Temporal does, and appends only the rest.
  const retry = new MockActivityEnvironment({ heartbeatDetails: second, attempt: 2 });
  const beats: number[] = [];
  retry.on('heartbeat', (d: { rows: number }) => beats.push(d.rows));
  const { fileId, rows } = (await retry.run(activities.writeAuditExport, input)) as { fileId: string; rows: number };
  expect(beats).toEqual([25]);
  expect(rows).toBe(25);
  const ids = (await csvRows(fileId)).map((r) => r.entity_id);
  expect(ids).toEqual(Array.from({ length: 25 }, (_, i) => `f-${i}`));
});

it('stores the file once even if the activity runs again after finishing', async () => {
  const input = await exportOf(3);
  const a = (await new MockActivityEnvironment().run(activities.writeAuditExport, input)) as { fileId: string };
  const b = (await new MockActivityEnvironment().run(activities.writeAuditExport, input)) as { fileId: string };
  expect(b.fileId).toBe(a.fileId);
  expect(await StoredFile.count({ where: { tenantId: input.tenantId } })).toBe(1);
});
