// Shared content-addressed bytes stay alive while any tenant's file uses them, under concurrent use.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DiskBlobStore } from '../../lib/blob-store';
import { collectBlob, unusedBlobs } from '../../lib/files';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { binary } from '../helpers/pdf';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const blobPath = (h: string) => path.join(app.config.fileStoreDir, h.slice(0, 2), h);


it('a delete in tenant A racing an upload of the same bytes in tenant B never loses B\'s content (60 trials)', async () => {
  const a = await buildCaller(['files.*']);
  const b = await buildCaller(['files.*']);
  const lost: number[] = [];
  for (let trial = 0; trial < 60; trial++) {
    const content = Buffer.from(`shared bytes, trial ${trial}, ${Date.now()} `.repeat(200));
    const first = await app.call('post', '/v1/files?filename=a.txt', a.key).set('Content-Type', 'text/plain').send(content).expect(201);
    const [, upload] = await Promise.all([
      app.call('delete', `/v1/files/${first.body.id}`, a.key).expect(204),
      app.call('post', '/v1/files?filename=b.txt', b.key).set('Content-Type', 'text/plain').send(content).expect(201),
    ]);
    // A lost blob shows as an error status or a connection cut mid-download.
    const down = await app.call('get', `/v1/files/${upload.body.id}/content`, b.key).buffer(true).parse(binary).catch(() => null);
    if (down?.status !== 200 || Buffer.compare(down.body as Buffer, content) !== 0) lost.push(trial);
  }
  expect(lost).toEqual([]);
});

it('bytes go once the last file of any tenant using them is deleted', async () => {
  const a = await buildCaller(['files.*']);
  const b = await buildCaller(['files.*']);
  const content = Buffer.from(`two tenants, one blob ${Date.now()}`);
  const fa = await app.call('post', '/v1/files?filename=a.txt', a.key).set('Content-Type', 'text/plain').send(content).expect(201);
  const fb = await app.call('post', '/v1/files?filename=b.txt', b.key).set('Content-Type', 'text/plain').send(content).expect(201);
  await app.call('delete', `/v1/files/${fa.body.id}`, a.key).expect(204);
  expect(fs.existsSync(blobPath(sha(content)))).toBe(true);
  await app.call('delete', `/v1/files/${fb.body.id}`, b.key).expect(204);
  expect(fs.existsSync(blobPath(sha(content)))).toBe(false);
});

it('the orphan sweep removes bytes an upload left without a file row, once they are older than the grace period', async () => {
  // An upload that died after claiming its blob and publishing the bytes, before its file row committed.
  const content = Buffer.from(`abandoned ${Date.now()}`);
  const store = new DiskBlobStore(app.config.fileStoreDir);
  const staged = await store.stage(Readable.from([content]));
  await app.sequelize.query('INSERT INTO blobs (sha256, size, claimed_at, created_at) VALUES (:sha, :size, :at, :at)', { replacements: { sha: staged.sha256, size: staged.size, at: new Date(Date.now() - 2 * 3600_000) } });
  await store.publish(staged);
  const young = new Date(Date.now() - 3 * 3600_000);
  expect(await unusedBlobs(young)).not.toContain(staged.sha256);
  const grace = new Date(Date.now() - 3600_000);
  expect(await unusedBlobs(grace)).toContain(staged.sha256);
  expect(await collectBlob(store, staged.sha256, grace)).toBe(true);
  expect(fs.existsSync(blobPath(staged.sha256))).toBe(false);
});
