// Content-addressed bytes behind one small interface: the disk store here, the bucket store in s3-blob-store.ts.
// The store only moves bytes; when bytes may be removed is decided in Postgres (lib/files.ts), under a
// row lock per blob, so the store itself needs no locking of its own (an S3 bucket has none).
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export class BlobTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`content exceeds ${limit} bytes`);
  }
}

/** Bytes written to the store's staging area, not yet readable under their hash. */
export interface StagedBlob {
  sha256: string;
  size: number;
  /** Where the store keeps them until `publish` or `discard` (a scratch path, an object key). */
  readonly location: string;
}

export interface BlobStore {
  /** Streams bytes into the staging area, hashing as they pass; never buffers the whole content. */
  stage(source: Readable, opts?: { maxBytes?: number }): Promise<StagedBlob>;
  /** Takes a finished local file as staged bytes (used by workflows that build a file step by step). */
  stageFile(localPath: string): Promise<StagedBlob>;
  /** Makes staged bytes readable under their sha256; identical bytes already there are kept. Idempotent. */
  publish(staged: StagedBlob): Promise<void>;
  /** Drops staged bytes that were not published (safe to call after publish). */
  discard(staged: StagedBlob): Promise<void>;
  /** The bytes from offset `start` on (0 by default): a resumed import reads on where it stopped (S3: a Range GET). */
  open(sha256: string, start?: number): Readable;
  remove(sha256: string): Promise<void>;
  /**
   * A scratch folder for partial files, on the local disk: shared by the workers on one host (the disk store's
   * folder), never by workers on other hosts (the S3 store), so what one activity writes here another
   * activity may only find if it runs on the same host.
   */
  readonly scratchDir: string;
}

/**
 * What every store's stage() streams through: a pass-through that hashes (SHA-256) and counts the bytes, and fails
 * with BlobTooLargeError past `maxBytes`; `result()` once the stream has ended.
 */
export function hashingMeter(maxBytes?: number): { stream: Transform; result(): { sha256: string; size: number } } {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (maxBytes !== undefined && size > maxBytes) return done(new BlobTooLargeError(maxBytes));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { stream, result: () => ({ sha256: hash.digest('hex'), size }) };
}

export class DiskBlobStore implements BlobStore {
  readonly scratchDir: string;

  constructor(private readonly root: string) {
    this.scratchDir = path.join(root, 'tmp');
  }

  private pathOf(sha256: string): string {
    if (!/^[a-f0-9]{64}$/.test(sha256)) throw new Error('invalid sha256');
    return path.join(this.root, sha256.slice(0, 2), sha256);
  }

  async stage(source: Readable, opts: { maxBytes?: number } = {}): Promise<StagedBlob> {
    await fs.mkdir(this.scratchDir, { recursive: true });
    const location = path.join(this.scratchDir, `upload-${randomUUID()}`);
    const meter = hashingMeter(opts.maxBytes);
    try {
      await pipeline(source, meter.stream, createWriteStream(location));
      return { ...meter.result(), location };
    } catch (err) {
      await fs.rm(location, { force: true });
      throw err;
    }
  }

  async stageFile(localPath: string): Promise<StagedBlob> {
    const hash = createHash('sha256');
    await pipeline(createReadStream(localPath), hash);
    const { size } = await fs.stat(localPath);
    return { sha256: hash.digest('hex'), size, location: localPath };
  }

  async publish(staged: StagedBlob): Promise<void> {
    const target = this.pathOf(staged.sha256);
    await fs.mkdir(path.dirname(target), { recursive: true });
    // The same work whether the content is stored already (by any tenant) or not, so an upload's timing does not tell
    // which: the rename replaces identical bytes (a reader of the old copy keeps its open file). A staged blob published
    // before (a retry) is gone: fine when its bytes are there.
    await fs.rename(staged.location, target).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' || !(await fs.stat(target).then(() => true, () => false))) throw err;
    });
  }

  async discard(staged: StagedBlob): Promise<void> {
    await fs.rm(staged.location, { force: true });
  }

  open(sha256: string, start = 0): Readable {
    return createReadStream(this.pathOf(sha256), { start });
  }

  async remove(sha256: string): Promise<void> {
    await fs.rm(this.pathOf(sha256), { force: true });
  }
}
