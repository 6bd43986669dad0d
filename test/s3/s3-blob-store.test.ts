// The BlobStore contract on the S3 store against a real SeaweedFS server, plus what only a remote store
// has: an unreachable server fails quickly as FileStoreUnavailableError (the API's 503), not a hang.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { FileStoreUnavailableError, isInfrastructureError } from '../../lib/dependency-errors';
import { S3BlobStore } from '../../lib/s3-blob-store';
import { freePort } from '../../scripts/stack';
import { describeBlobStoreContract } from '../helpers/blob-store-contract';
import { RunningS3, startS3Server } from '../../scripts/s3-server';

let s3: RunningS3;
beforeAll(async () => { s3 = await startS3Server({ bucket: 'contract' }); }, 600_000);
afterAll(() => s3?.stop());

const options = (bucket: string, endpoint = s3.endpoint) => ({
  endpoint, region: s3.region, bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true,
  // Made by whoever writes there first (the stageFile test), removed by close().
  scratchDir: path.join(os.tmpdir(), `docket-s3-scratch-${randomUUID()}`), partSize: 5 * 1024 * 1024,
});

describeBlobStoreContract('S3 (SeaweedFS)', async () => {
  const opts = options(s3.bucket);
  const store = new S3BlobStore(opts);
  const admin = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  const list = async () => {
    const keys = ((await admin.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).map((o) => o.Key!);
    const uploads = ((await admin.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))).Uploads ?? []).map((u) => `multipart:${u.Key}`);
    return { keys, uploads };
  };
  const { keys, uploads } = await list();
  if (keys.length || uploads.length) throw new Error(`the bucket is not empty before a test: ${[...keys, ...uploads].join(', ')}`);
  const contents = async () => {
    const now = await list();
    const blobs = now.keys.filter((k) => /^blobs\/[a-f0-9]{2}\/[a-f0-9]{64}$/.test(k)).map((k) => k.slice(-64)).sort();
    return { blobs, other: [...now.keys.filter((k) => !k.startsWith('blobs/')), ...now.uploads].sort() };
  };
  return {
    store,
    contents,
    async close() {
      // Each test starts from an empty bucket.
      for (const sha of (await contents()).blobs) await store.remove(sha);
      store.destroy();
      admin.destroy();
      fs.rmSync(opts.scratchDir, { recursive: true, force: true });
    },
  };
});

describe('an unreachable S3 server', () => {
  it('fails stage, publish, open and remove quickly with FileStoreUnavailableError (an outage, retried; the API answers 503)', async () => {
    const port = await freePort(); // nothing listens there
    const store = new S3BlobStore(options('contract', `http://127.0.0.1:${port}`));
    const t0 = Date.now();
    const err = await store.stage(Readable.from([Buffer.from('hello')])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileStoreUnavailableError);
    expect(isInfrastructureError(err)).toBe(true);
    await expect(new Promise((_, reject) => store.open('a'.repeat(64)).on('error', reject).resume())).rejects.toBeInstanceOf(FileStoreUnavailableError);
    await expect(store.publish({ sha256: 'a'.repeat(64), size: 1, location: 'staging/x' })).rejects.toBeInstanceOf(FileStoreUnavailableError);
    await expect(store.remove('a'.repeat(64))).rejects.toBeInstanceOf(FileStoreUnavailableError);
    expect(Date.now() - t0).toBeLessThan(15_000);
    store.destroy();
  });

  it('a server that accepts connections but never answers is cut off by the connect/request timeouts, not awaited forever', async () => {
    const net = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = net.createServer((s) => { sockets.push(s); }); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    const store = new S3BlobStore({ ...options('contract', `http://127.0.0.1:${port}`), requestTimeoutMs: 1000 });
    const t0 = Date.now();
    await expect(store.remove('b'.repeat(64))).rejects.toBeInstanceOf(FileStoreUnavailableError);
    expect(Date.now() - t0).toBeLessThan(15_000);
    store.destroy();
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });
});
