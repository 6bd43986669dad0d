// A worker killed in the middle of a batch: another worker carries on from the items not yet stored,
// and every document of the batch is stored exactly once. A document or a batch cancelled in the Temporal UI
// ends (failed, or finished with its unrendered items failed) instead of staying queued or running.
import { Op } from 'sequelize';
import { AuditEvent, Document, DocumentBatch, DomainEvent, StoredFile } from '../../db';
import { binary, unzip } from '../helpers/pdf';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, killWorker, spawnWorker } from '../helpers/worker-process';

let app: TestApp;

const startWorker = () => spawnWorker({ WORKER_QUEUES: 'documents', PDF_POOL_SIZE: '1' });

beforeAll(async () => { app = await startTestApp({ DOCUMENT_BATCH_CHUNK: '3' }); });
afterAll(async () => {
  killAllWorkers();
  await app.close();
});

it('finishes a batch after its worker was SIGKILLed part-way, each document stored exactly once', async () => {
  const { key, tenant } = await buildCaller(['*']);
  const t = (await app.call('post', '/v1/document-templates', key).send({
    code: 'crash', name: 'Crash', parts: { base: '<h1>Doc {{ n }}</h1>', footer: 'Page <span class="pageNumber"></span>' },
  }).expect(201)).body;
  const total = 36;
  const first = startWorker();
  const started = await app.call('post', '/v1/document-batches', key)
    .send({ templateCode: t.code, items: Array.from({ length: total }, (_, i) => ({ fileName: `d-${i}.pdf`, data: { n: i } })) }).expect(202);

  // Kill the worker mid-batch and mid-chunk (chunks are 3 items): some documents of the running chunk
  // are stored, the chunk's progress is not yet written.
  await waitFor<number>(async () => {
    const stored = await Document.count({ where: { batchId: started.body.id, status: 'ready' } });
    return stored >= 6 && stored % 3 !== 0 && stored < total - 6 ? stored : undefined;
  }, { what: 'batch part-way', timeoutMs: 90_000, intervalMs: 25 });
  await killWorker(first);
  const frozen = (await DocumentBatch.findByPk(started.body.id))!;
  expect(frozen.status).toBe('running');
  expect(frozen.done).toBeLessThan(total);

  startWorker();
  const done = await waitFor(async () => {
    const b = (await app.call('get', `/v1/document-batches/${started.body.id}`, key).expect(200)).body;
    return b.status === 'ready' && b;
  }, { what: 'batch finished after restart', timeoutMs: 120_000 });
  expect(done).toMatchObject({ total, done: total, failed: 0, progress: 1 });

  const docs = await Document.findAll({ where: { batchId: started.body.id } });
  expect(docs).toHaveLength(total);
  expect(docs.every((d) => d.status === 'ready' && d.fileId)).toBe(true);
  const files = await StoredFile.findAll({ where: { tenantId: tenant.id, originKey: { [Op.like]: 'document:%' } } });
  expect(files).toHaveLength(total);
  expect(new Set(files.map((f) => f.originKey)).size).toBe(total);
  expect(new Set(docs.map((d) => d.fileId)).size).toBe(total);

  // The chunk that was running when the worker died was retried (attempt ≥ 2) by the new worker.
  const history = await app.client.workflow.getHandle(done.workflowId).fetchHistory();
  const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
  expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
}, 240_000);

it('a document cancelled in the Temporal UI before it rendered ends failed, not queued for ever', async () => {
  killAllWorkers(); // no worker: the cancel reaches the run before its first task
  const { key, tenant } = await buildCaller(['*']);
  const t = (await app.call('post', '/v1/document-templates', key).send({ code: 'cancel', name: 'Cancel', parts: { base: '<h1>{{ n }}</h1>' } }).expect(201)).body;
  const res = await app.call('post', '/v1/documents', key).send({ templateCode: t.code, data: { n: 1 } }).expect(202);
  const handle = app.client.workflow.getHandle(res.body.workflowId);
  await handle.cancel(); // what the UI's "Request cancellation" does
  startWorker();
  await expect(handle.result()).rejects.toThrow();
  expect((await handle.describe()).status.name).toBe('CANCELLED');
  const shown = (await app.call('get', `/v1/documents/${res.body.id}`, key).expect(200)).body;
  expect(shown).toMatchObject({ status: 'failed', error: 'cancelled in Temporal', downloadUrl: null });
  expect((await handle.describe()).searchAttributes.Status).toEqual(['failed']);
  expect(await StoredFile.count({ where: { tenantId: tenant.id, originKey: `document:${res.body.id}` } })).toBe(0);
}, 120_000);

it('a batch cancelled in the Temporal UI part-way finishes with what it rendered: the rest failed as cancelled, its counts exact', async () => {
  const { key } = await buildCaller(['*']);
  const t = (await app.call('post', '/v1/document-templates', key).send({ code: 'cancel-batch', name: 'Cancel batch', parts: { base: '<h1>Doc {{ n }}</h1>' } }).expect(201)).body;
  const total = 30;
  startWorker();
  const started = (await app.call('post', '/v1/document-batches', key)
    .send({ templateCode: t.code, items: Array.from({ length: total }, (_, i) => ({ fileName: `c-${i}.pdf`, data: { n: i } })) }).expect(202)).body;
  await waitFor(async () => (await Document.count({ where: { batchId: started.id, status: 'ready' } })) >= 4, { what: 'batch part-way', timeoutMs: 90_000, intervalMs: 25 });
  const handle = app.client.workflow.getHandle(started.workflowId);
  await handle.cancel(); // what the UI's "Request cancellation" does
  await expect(handle.result()).rejects.toThrow();
  const d = await handle.describe();
  expect(d.status.name).toBe('CANCELLED');
  expect(d.searchAttributes.Status).toEqual(['cancelled']);

  const shown = (await app.call('get', `/v1/document-batches/${started.id}`, key).expect(200)).body;
  expect(shown).toMatchObject({ status: 'ready', total, progress: 1, completedAt: expect.any(String) });
  const docs = await Document.findAll({ where: { batchId: started.id } });
  const ready = docs.filter((x) => x.status === 'ready');
  const failed = docs.filter((x) => x.status === 'failed');
  // Nothing left queued or rendering, and the counts are the items' (none rendered after the end was written).
  expect(ready.length + failed.length).toBe(total);
  expect(shown).toMatchObject({ done: ready.length, failed: failed.length });
  expect(ready.length).toBeGreaterThanOrEqual(4);
  expect(failed.length).toBeGreaterThan(0);
  expect(new Set(failed.map((x) => x.error))).toEqual(new Set(['cancelled in Temporal']));
  const listed = (await app.call('get', `/v1/documents?batchId=${started.id}&status=failed&limit=200`, key).expect(200)).body.items;
  expect(listed).toHaveLength(failed.length);
  // The ZIP has what was rendered; the batch ended once, audited, with its event.
  const zip = await app.call('get', shown.downloadUrl, key).buffer(true).parse(binary).expect(200);
  expect((await unzip(zip.body as Buffer)).map((e) => e.name).sort()).toEqual(ready.map((x) => x.fileName).sort());
  expect(await AuditEvent.count({ where: { action: 'documents.batch.completed', entityId: started.id } })).toBe(1);
  const events = await DomainEvent.findAll({ where: { type: 'document_batch.finished', subjectId: started.id } });
  expect(events.map((e) => e.data)).toEqual([{ batchId: started.id, done: ready.length, failed: failed.length }]);
}, 180_000);
