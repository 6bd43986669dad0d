// The API and a worker on FILE_STORE=s3 against a real SeaweedFS server: an upload lands in the bucket (not on
// the local disk) and downloads byte-identical, an import's worker reads its input from the bucket, a rendered
// document is stored there and downloads; with the store cut off, upload and download answer a quick 503.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Subscriber } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { binary } from '../helpers/pdf';
import { RunningS3, startS3Server } from '../../scripts/s3-server';
import { startTcpProxy, TcpProxy } from '../helpers/tcp-proxy';
import { waitFor } from '../helpers/wait';

let s3: RunningS3;
let proxy: TcpProxy;
let app: TestApp;
let admin: S3Client;
beforeAll(async () => {
  s3 = await startS3Server();
  // The API and the worker reach the bucket through a proxy the outage test cuts.
  proxy = await startTcpProxy('127.0.0.1', s3.port);
  app = await startTestApp({ ...s3.env, S3_ENDPOINT: `http://${proxy.address}`, IMPORT_CHUNK_MS: '300' });
  await app.startWorker();
  admin = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
}, 600_000);
afterAll(async () => {
  await app?.close();
  admin?.destroy();
  await proxy?.close();
  await s3?.stop();
});

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const bucketKeys = async () => ((await admin.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).map((o) => o.Key!);
const download = (url: string, key: string) => app.call('get', url, key).buffer(true).parse(binary);

it('stores an upload in the bucket (multipart-sized), not on the local disk, and downloads it byte-identical', async () => {
  expect(app.config.fileStore.kind).toBe('s3');
  const { key } = await buildCaller(['files.*']);
  const content = randomBytes(9 * 1024 * 1024 + 123); // over the 8 MiB part size: a multipart upload
  const up = await app.call('post', '/v1/files?filename=big.bin', key).set('Content-Type', 'application/octet-stream').send(content).expect(201);
  expect(up.body).toMatchObject({ size: content.length, sha256: sha(content) });
  expect(await bucketKeys()).toContain(`blobs/${sha(content).slice(0, 2)}/${sha(content)}`);
  expect((await bucketKeys()).filter((k) => k.startsWith('staging/'))).toEqual([]);
  expect(fs.existsSync(path.join(app.config.fileStoreDir, sha(content).slice(0, 2), sha(content)))).toBe(false);
  const down = await download(up.body.downloadUrl, key).expect(200);
  expect(Buffer.compare(down.body as Buffer, content)).toBe(0);
  expect(down.headers['content-length']).toBe(String(content.length));
});

it("imports a CSV uploaded through the API: the worker reads the file from the bucket", async () => {
  const { key, tenant } = await buildCaller(['imports.*', 'audience.*', 'files.*']);
  const csv = 'E-mail,Name\n' + Array.from({ length: 300 }, (_, i) => `user${i}@s3.example,User ${i}\n`).join('');
  const fileId = (await app.call('post', '/v1/files?filename=contacts.csv', key).set('Content-Type', 'text/csv').send(Buffer.from(csv)).expect(201)).body.id;
  const res = await app.call('post', '/v1/imports', key).send({ fileId, target: 'subscribers', columns: [{ source: 'E-mail', field: 'email' }, { source: 'Name', field: 'name' }] }).expect(202);
  const done = await waitFor(async () => {
    const r = await app.call('get', `/v1/imports/${res.body.id}`, key).expect(200);
    return ['finished', 'failed', 'cancelled'].includes(r.body.phase) && r.body;
  }, { what: 'import ended', timeoutMs: 90_000, intervalMs: 200 });
  expect(done.phase).toBe('finished');
  expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(300);
  expect((await Subscriber.findOne({ where: { tenantId: tenant.id, email: 'user299@s3.example' } }))?.name).toBe('User 299');
});

it('renders a document in the worker, stores it in the bucket, and downloads it through the API', async () => {
  const { key } = await buildCaller(['*']);
  const code = `s3-${randomBytes(4).toString('hex')}`;
  await app.call('post', '/v1/document-templates', key).send({ code, name: 'S3 note', parts: { base: '<h1>Stored in S3: {{ number }}</h1>' } }).expect(201);
  const res = await app.call('post', '/v1/documents', key).send({ templateCode: code, output: 'html', data: { number: 'S3-1' } }).expect(202);
  const ready = await waitFor(async () => {
    const r = await app.call('get', `/v1/documents/${res.body.id}`, key).expect(200);
    if (r.body.status === 'failed') throw new Error(r.body.error);
    return r.body.status === 'ready' && r.body;
  }, { what: 'document ready', timeoutMs: 90_000 });
  const file = await download(ready.downloadUrl, key).expect(200);
  const html = (file.body as Buffer).toString();
  expect(html).toContain('Stored in S3: S3-1');
  expect(await bucketKeys()).toContain(`blobs/${sha(file.body as Buffer).slice(0, 2)}/${sha(file.body as Buffer)}`);
});

it('with the store unreachable, upload and download answer a quick 503 with Retry-After; they work again once it is back', async () => {
  const { key } = await buildCaller(['files.*']);
  const content = Buffer.from('kept while the store is down');
  const up = await app.call('post', '/v1/files?filename=kept.txt', key).set('Content-Type', 'text/plain').send(content).expect(201);
  await proxy.cut();
  try {
    let t0 = Date.now();
    const refused = await app.call('post', '/v1/files?filename=lost.txt', key).set('Content-Type', 'text/plain').send(Buffer.from('not stored')).expect(503);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(refused.body.code).toBe('SERVICE_UNAVAILABLE');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    t0 = Date.now();
    const unsent = await app.call('get', `/v1/files/${up.body.id}/content`, key).expect(503);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(unsent.body.code).toBe('SERVICE_UNAVAILABLE');
    expect(Number(unsent.headers['retry-after'])).toBeGreaterThan(0);
  } finally {
    await proxy.restore();
  }
  const down = await download(`/v1/files/${up.body.id}/content`, key).expect(200);
  expect(Buffer.compare(down.body as Buffer, content)).toBe(0);
  // Nothing of the refused upload was left staged in the bucket.
  expect((await bucketKeys()).filter((k) => k.startsWith('staging/'))).toEqual([]);
});
