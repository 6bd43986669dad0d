// A 1,000-document batch through the API (HTML output, so the test measures the batch machinery and
// not Chromium): chunks, continue-as-new, progress, and a ZIP holding every document once.
import { randomUUID } from 'node:crypto';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { binary, unzip } from '../helpers/pdf';
import { waitFor } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => {
  // 1,000 items in chunks of 8 is 125 chunks: more than one run of the batch workflow (100 chunks each).
  app = await startTestApp({ DOCUMENT_BATCH_CHUNK: '8' });
  await app.startWorker();
});
afterAll(async () => { await app.close(); });

it('generates 1,000 documents in one batch and downloads them as one ZIP', async () => {
  const { key } = await buildCaller(['*']);
  const code = `letter-${randomUUID().slice(0, 6)}`;
  await app.call('post', '/v1/document-templates', key).send({ code, name: 'Letter', variables: 'strict', parts: { base: '<p>Dear {{ name }}, #{{ n }}</p>' } }).expect(201);
  const total = 1000;
  const items = Array.from({ length: total }, (_, n) => ({ fileName: `letter-${n}.html`, data: { n, name: `Person ${n}` } }));
  const res = await app.call('post', '/v1/document-batches', key).send({ templateCode: code, output: 'html', items }).expect(202);
  const done = await waitFor(async () => {
    const b = (await app.call('get', `/v1/document-batches/${res.body.id}`, key).expect(200)).body;
    return b.status === 'ready' && b;
  }, { what: '1,000-document batch ready', timeoutMs: 480_000, intervalMs: 500 });
  expect(done).toMatchObject({ total, done: total, failed: 0, progress: 1 });

  // The batch's workflow continued as new (bounded history) and still finished as one batch.
  const runs: string[] = [];
  for await (const w of app.client.workflow.list({ query: `WorkflowId = '${done.workflowId}'` })) runs.push(w.runId);
  expect(runs.length).toBeGreaterThanOrEqual(2);

  const zip = await app.call('get', done.downloadUrl, key).buffer(true).parse(binary).expect(200);
  const entries = await unzip(zip.body as Buffer);
  expect(entries).toHaveLength(total);
  expect(new Set(entries.map((e) => e.name)).size).toBe(total);
  expect(entries.find((e) => e.name === 'letter-777.html')!.data.toString()).toContain('<p>Dear Person 777, #777</p>');
}, 600_000);
