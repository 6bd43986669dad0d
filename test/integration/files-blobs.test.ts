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
import { waitFor, waitForLockWaiters } from '../helpers/wait';

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
  // The bytes go first, then their row (both just after the answer).
  await waitFor(async () => !fs.existsSync(blobPath(sha(content))) && !(await app.sequelize.query('SELECT 1 FROM blobs WHERE sha256 = $1', { bind: [sha(content)] }))[0].length,
    { what: 'the bytes and their row removed' });
});

it('a delete answers without waiting for its bytes to be removed: its time cannot tell whether another tenant stores them', async () => {
  const { key } = await buildCaller(['files.*']);
  const content = Buffer.from(`only mine ${Date.now()}`);
  const file = await app.call('post', '/v1/files?filename=a.txt', key).set('Content-Type', 'text/plain').send(content).expect(201);
  // Removing bytes is held up (the blobs table locked by the test); the delete of the file answers all the same.
  let release!: () => void;
  const released = new Promise<void>((r) => { release = r; });
  let locked = false;
  const holder = app.sequelize.transaction(async (t) => {
    await app.sequelize.query('LOCK TABLE blobs IN ACCESS EXCLUSIVE MODE', { transaction: t });
    locked = true;
    await released;
  });
  try {
    await waitFor(async () => locked, { what: 'the test holding the blobs table' });
    const answered = await Promise.race([
      app.call('delete', `/v1/files/${file.body.id}`, key).then((res) => res.status),
      new Promise((r) => setTimeout(() => r('no answer within 10 s'), 10_000).unref()),
    ]);
    expect(answered).toBe(204);
    // The removal had started and waits for the table: the bytes are still there.
    await waitForLockWaiters(app.sequelize, '%FROM blobs%', 1, { what: 'the removal waiting for the blobs table' });
    expect(fs.existsSync(blobPath(sha(content)))).toBe(true);
    await app.call('get', `/v1/files/${file.body.id}`, key).expect(404);
  } finally {
    release();
    await holder;
  }
  // Then the bytes go, no file of any tenant using them.
  await waitFor(async () => !fs.existsSync(blobPath(sha(content))), { what: 'the bytes removed once the table is free' });
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
