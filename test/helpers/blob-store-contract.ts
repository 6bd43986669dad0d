// One BlobStore contract, run against every store (disk in the default suite, S3 under `npm run test:s3`).
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { BlobStore, BlobTooLargeError } from '../../lib/blob-store';
import { firstBytes } from '../../api/downloads';

export interface StoreUnderTest {
  store: BlobStore;
  /** What the store holds: published blobs (by sha256) and anything else (staged bytes, unfinished multipart uploads). */
  contents(): Promise<{ blobs: string[]; other: string[] }>;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `total` random bytes, produced chunk by chunk as they are read (never all in memory at once). */
function lazyBytes(total: number, chunk = 256 * 1024): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(chunk, total - sent);
      sent += n;
      this.push(randomBytes(n));
    },
  });
}

export function describeBlobStoreContract(name: string, make: () => Promise<StoreUnderTest>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let t: StoreUnderTest;
    beforeEach(async () => { t = await make(); });
    afterEach(async () => { await t.close(); });

    const read = (sha256: string, start?: number) => buffer(t.store.open(sha256, start));
    const publishBytes = async (bytes: Buffer) => {
      const staged = await t.store.stage(Readable.from([bytes]));
      await t.store.publish(staged);
      return staged;
    };

    it('stages while hashing, publishes under the sha256, and reads back byte-identical (multipart-sized too)', async () => {
      // 11 MiB: three parts of the S3 store's 5 MiB part size, in 64 KiB chunks.
      const bytes = randomBytes(11 * MiB);
      const staged = await t.store.stage(Readable.from((function* () { for (let i = 0; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024); })()));
      expect(staged).toMatchObject({ sha256: sha(bytes), size: bytes.length });
      // Staged bytes are not readable under their hash until published.
      await expect(read(staged.sha256)).rejects.toMatchObject({ code: 'ENOENT' });
      await t.store.publish(staged);
      expect((await read(staged.sha256)).equals(bytes)).toBe(true);
      expect(await t.contents()).toEqual({ blobs: [staged.sha256], other: [] });
      // Discarding after publish is harmless.
      await t.store.discard(staged);
      expect((await read(staged.sha256)).equals(bytes)).toBe(true);
    });

    it('opens from a start offset (a resumed import), and past the end reads nothing', async () => {
      const bytes = Buffer.from('0123456789abcdefghij');
      const { sha256 } = await publishBytes(bytes);
      expect((await read(sha256, 0)).toString()).toBe('0123456789abcdefghij');
      expect((await read(sha256, 7)).toString()).toBe('789abcdefghij');
      expect((await read(sha256, 19)).toString()).toBe('j');
      expect((await read(sha256, 20)).length).toBe(0);
    });

    it('publishing identical bytes twice keeps one copy; publishing the same staged blob again is a no-op', async () => {
      const bytes = Buffer.from('same bytes, uploaded twice');
      const first = await publishBytes(bytes);
      const second = await t.store.stage(Readable.from([bytes]));
      await t.store.publish(second);
      await t.store.publish(second);
      await t.store.publish(first);
      expect(second.sha256).toBe(first.sha256);
      expect((await read(first.sha256)).equals(bytes)).toBe(true);
      expect(await t.contents()).toEqual({ blobs: [first.sha256], other: [] });
    });

    it('discard drops staged bytes that were never published', async () => {
      const staged = await t.store.stage(Readable.from([Buffer.from('never published')]));
      expect((await t.contents()).other).toHaveLength(1);
      await t.store.discard(staged);
      await t.store.discard(staged); // twice: still fine
      expect(await t.contents()).toEqual({ blobs: [], other: [] });
      await expect(read(staged.sha256)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('remove deletes published bytes (a missing blob then fails to open as ENOENT); removing again is fine', async () => {
      const { sha256 } = await publishBytes(Buffer.from('to be removed'));
      await t.store.remove(sha256);
      await t.store.remove(sha256);
      expect(await t.contents()).toEqual({ blobs: [], other: [] });
      await expect(read(sha256)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('a missing blob fails before any byte, as the download path waits for (firstBytes)', async () => {
      const missing = sha(randomBytes(16));
      await expect(firstBytes(t.store.open(missing))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(read(missing, 5)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(() => t.store.open('../../etc/passwd')).toThrow('invalid sha256');
    });

    it('over maxBytes: BlobTooLargeError, and nothing is left behind (no staged bytes, no unfinished multipart upload)', async () => {
      // 12 MiB allowed, 20 MiB sent: the S3 store has uploaded two 5 MiB parts before the limit trips.
      await expect(t.store.stage(lazyBytes(20 * MiB), { maxBytes: 12 * MiB })).rejects.toBeInstanceOf(BlobTooLargeError);
      expect(await t.contents()).toEqual({ blobs: [], other: [] });
      // Exactly at the limit is allowed.
      const ok = await t.store.stage(lazyBytes(1000), { maxBytes: 1000 });
      expect(ok.size).toBe(1000);
      await t.store.discard(ok);
    });

    it('a source that fails midway leaves nothing behind and rejects with its error', async () => {
      let n = 0;
      const failing = new Readable({
        read() {
          if (++n > 30) return void this.destroy(new Error('client went away'));
          this.push(randomBytes(256 * 1024));
        },
      });
      await expect(t.store.stage(failing)).rejects.toThrow('client went away');
      expect(await t.contents()).toEqual({ blobs: [], other: [] });
    });

    it('stageFile takes a finished local file from the scratch folder', async () => {
      await fs.promises.mkdir(t.store.scratchDir, { recursive: true });
      const local = path.join(t.store.scratchDir, `partial-${process.pid}-${Date.now()}.csv`);
      const bytes = Buffer.from('id,name\n1,Ada\n2,Bob\n');
      await fs.promises.writeFile(local, bytes);
      const staged = await t.store.stageFile(local);
      expect(staged).toMatchObject({ sha256: sha(bytes), size: bytes.length });
      await t.store.publish(staged);
      await fs.promises.rm(local, { force: true });
      expect((await read(staged.sha256)).equals(bytes)).toBe(true);
      expect((await t.contents()).blobs).toEqual([staged.sha256]);
    });
  });
}

/** The disk store's contents: `<root>/<xx>/<sha256>` are blobs, anything else (its tmp/) is not. */
export function diskContents(root: string): () => Promise<{ blobs: string[]; other: string[] }> {
  return async () => {
    const blobs: string[] = [];
    const other: string[] = [];
    for (const entry of await fs.promises.readdir(root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const rel = path.relative(root, path.join(entry.parentPath, entry.name));
      if (/^[a-f0-9]{2}\/[a-f0-9]{64}$/.test(rel)) blobs.push(entry.name);
      else other.push(rel);
    }
    return { blobs: blobs.sort(), other: other.sort() };
  };
}

export const tempDir = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));
