// Content-addressed bytes behind one small interface, so a bucket store (S3) can replace the disk later.
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

export interface BlobStore {
  /** Streams bytes in, hashing as they pass; never buffers the whole content. */
  put(source: Readable, opts?: { maxBytes?: number }): Promise<{ sha256: string; size: number }>;
  /** Moves a finished local file into the store (used by workflows that build a file step by step). */
  putFile(localPath: string): Promise<{ sha256: string; size: number }>;
  open(sha256: string): Readable;
  remove(sha256: string): Promise<void>;
  /** A private scratch folder for partial files; shared by workers that share the store. */
  readonly scratchDir: string;
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

  async put(source: Readable, opts: { maxBytes?: number } = {}): Promise<{ sha256: string; size: number }> {
    await fs.mkdir(this.scratchDir, { recursive: true });
    const tmp = path.join(this.scratchDir, `upload-${randomUUID()}`);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (opts.maxBytes !== undefined && size > opts.maxBytes) return done(new BlobTooLargeError(opts.maxBytes));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(tmp));
      const sha256 = hash.digest('hex');
      await this.moveIn(tmp, sha256);
      return { sha256, size };
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async putFile(localPath: string): Promise<{ sha256: string; size: number }> {
    const hash = createHash('sha256');
    await pipeline(createReadStream(localPath), hash);
    const sha256 = hash.digest('hex');
    const { size } = await fs.stat(localPath);
    await this.moveIn(localPath, sha256);
    return { sha256, size };
  }

  private async moveIn(tmp: string, sha256: string): Promise<void> {
    const target = this.pathOf(sha256);
    await fs.mkdir(path.dirname(target), { recursive: true });
    // Same content already stored: keep the old copy (identical bytes), drop the new one.
    if (await fs.stat(target).then(() => true, () => false)) await fs.rm(tmp, { force: true });
    else await fs.rename(tmp, target);
  }

  open(sha256: string): Readable {
    return createReadStream(this.pathOf(sha256));
  }

  async remove(sha256: string): Promise<void> {
    await fs.rm(this.pathOf(sha256), { force: true });
  }
}
