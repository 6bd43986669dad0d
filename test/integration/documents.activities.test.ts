// The document activities alone, against Postgres: a render that finishes after its document was failed (its batch
// cancelled in Temporal while the render was under way) leaves it failed, and a cancelled batch ends once with
// counts that are its items'.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createDocumentActivities } from '../../activities/documents';
import { AuditEvent, createSequelize, Document, DocumentBatch, DocumentTemplate, DocumentTemplateVersion, StoredFile } from '../../db';
import { closeWorkPool } from '../../domains/work-pool';
import { DiskBlobStore } from '../../lib/blob-store';
import type { PdfRenderer } from '../../lib/pdf-renderer';
import { buildTenant } from '../helpers/factories';

const sequelize = createSequelize(process.env.DATABASE_URL!);
const blobs = new DiskBlobStore(fs.mkdtempSync(path.join(os.tmpdir(), 'docket-blobs-')));
// HTML output only: the renderer is never asked for a PDF here.
const activities = createDocumentActivities({ blobs, renderer: {} as PdfRenderer });
afterAll(async () => {
  await closeWorkPool();
  await sequelize.close();
});

async function batchOf(n: number) {
  const tenant = await buildTenant();
  const templateId = randomUUID();
  const fields = {
    name: 'T', description: null, parts: { base: '<p>{{ n }}</p>', header: '', footer: '', css: '', partials: {} },
    settings: { paperSize: 'A4', orientation: 'portrait', margins: { top: '1mm', right: '1mm', bottom: '1mm', left: '1mm' }, variables: 'lenient' },
  } as const;
  await DocumentTemplate.create({ id: templateId, tenantId: tenant.id, code: `t-${templateId.slice(0, 8)}`, ...fields, version: 1 });
  await DocumentTemplateVersion.create({ templateId, version: 1, tenantId: tenant.id, ...fields, createdBy: null });
  const batchId = randomUUID();
  const workflowId = `document-batches:${tenant.id}:${batchId}`;
  await DocumentBatch.create({ id: batchId, tenantId: tenant.id, templateId, templateVersion: 1, output: 'html', status: 'running', total: n, workflowId, createdBy: null });
  await Document.bulkCreate(Array.from({ length: n }, (_, i) => ({
    id: randomUUID(), tenantId: tenant.id, templateId, templateCode: 't', templateVersion: 1, batchId, batchIndex: i, output: 'html' as const,
    fileName: `d-${i}.html`, objectType: null, objectId: null, data: { n: i }, status: 'queued' as const, originKey: null, workflowId, createdBy: null,
  })));
  return { tenantId: tenant.id, batchId, chunkSize: 10 };
}

it('a render that finishes after its document was failed leaves it failed; the cancelled batch ends once with its items\' counts', async () => {
  const input = await batchOf(4);
  const docs = await Document.findAll({ where: { batchId: input.batchId }, order: [['batchIndex', 'ASC']] });
  // Two were rendered before the cancel; the third was under way when it came.
  for (const d of docs.slice(0, 2)) await new MockActivityEnvironment().run(activities.renderDocument, { tenantId: input.tenantId, documentId: d.id });
  await docs[2].update({ status: 'rendering' });
  const counts = await new MockActivityEnvironment().run(activities.cancelBatch, { ...input, error: 'cancelled in Temporal' });
  expect(counts).toEqual({ done: 2, failed: 2 });
  // The render under way finishes now: its file is stored, but its document stays failed and the counts stand.
  await new MockActivityEnvironment().run(activities.renderDocument, { tenantId: input.tenantId, documentId: docs[2].id });
  expect(await Document.findByPk(docs[2].id)).toMatchObject({ status: 'failed', error: 'cancelled in Temporal', fileId: null });
  expect(await StoredFile.count({ where: { tenantId: input.tenantId, originKey: `document:${docs[2].id}` } })).toBe(1);
  expect(await DocumentBatch.findByPk(input.batchId)).toMatchObject({ status: 'ready', done: 2, failed: 2 });

  // A retried cancel (or the finish of a chunk that ended first) ends it no second time.
  expect(await new MockActivityEnvironment().run(activities.cancelBatch, { ...input, error: 'cancelled in Temporal' })).toEqual({ done: 2, failed: 2 });
  expect(await new MockActivityEnvironment().run(activities.finishBatch, input)).toEqual({ done: 2, failed: 2 });
  expect(await AuditEvent.count({ where: { tenantId: input.tenantId, action: 'documents.batch.completed', entityId: input.batchId } })).toBe(1);
});

it('counts only the batch\'s own tenant\'s items', async () => {
  const input = await batchOf(2);
  const [first] = await Document.findAll({ where: { batchId: input.batchId }, order: [['batchIndex', 'ASC']] });
  await new MockActivityEnvironment().run(activities.renderDocument, { tenantId: input.tenantId, documentId: first.id });
  // Another tenant's batch id does not reach this one's rows: neither its items nor its counts (still as last written).
  const stranger = await buildTenant();
  expect(await new MockActivityEnvironment().run(activities.cancelBatch, { ...input, tenantId: stranger.id, error: 'cancelled in Temporal' })).toEqual({ done: 0, failed: 0 });
  expect((await Document.findAll({ where: { batchId: input.batchId }, order: [['batchIndex', 'ASC']] })).map((d) => d.status)).toEqual(['ready', 'queued']);
  expect(await DocumentBatch.findByPk(input.batchId)).toMatchObject({ status: 'running', done: 0, failed: 0 });
});
