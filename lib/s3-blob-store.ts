// The BlobStore on an S3-compatible bucket: staged under a temporary key, published by a server-side copy.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config';
import { BlobStore, DiskBlobStore, hashingMeter, StagedBlob } from './blob-store';
import { FileStoreUnavailableError, NETWORK_CODES } from './dependency-errors';

export interface S3BlobStoreOptions {
  bucket: string;
  region: string;
  /** An S3-compatible server (SeaweedFS, MinIO, R2 …); unset: AWS itself. */
  endpoint?: string;
  /** Both unset: the SDK's default chain (environment, instance role …). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Bucket in the path (http://host/bucket/key) rather than the host name: what most self-hosted servers need. */
  forcePathStyle?: boolean;
  /** Local scratch folder for partial files (one per worker host; see BlobStore.scratchDir). */
  scratchDir: string;
  /** Multipart part size (at least 5 MiB, S3's minimum); the most bytes one upload holds in memory is partSize × 2. */
  partSize?: number;
  /** Connecting longer than this counts as the store being down (a quick 503, not a hang). */
  connectTimeoutMs?: number;
  /** A socket silent this long (no byte either way) counts as the store being down. */
  requestTimeoutMs?: number;
}

const MiB = 1024 * 1024;
const STAGING = 'staging/';
const BLOBS = 'blobs/';

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** The store cannot be reached or answers with a server fault: the caller should retry later (API: 503). */
function isUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; name?: string; $fault?: string };
  if (e instanceof FileStoreUnavailableError) return false; // already wrapped
  if (typeof e?.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  // The SDK re-wraps a socket error that is not an Error of its own realm (under Jest) with only its message.
  const code = /\b(E[A-Z_]+)\b/.exec((err as Error)?.message ?? '')?.[1];
  if (code && NETWORK_CODES.has(code)) return true;
  if (e?.name === 'TimeoutError' || e?.name === 'RequestTimeout') return true;
  const status = statusOf(err);
  return (status !== undefined && status >= 500) || (e instanceof S3ServiceException && e.$fault === 'server' && status === undefined);
}

function unavailableOr(err: unknown): unknown {
  return isUnavailable(err) ? new FileStoreUnavailableError(`the S3 file store is unreachable: ${(err as Error).message ?? String(err)}`, { cause: err }) : err;
}

/** A missing blob fails as the disk store's does (an fs ENOENT), so callers need not know the store. */
function notFound(sha256: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no such blob ${sha256}`), { code: 'ENOENT', errno: -2, syscall: 'open' });
}

export class S3BlobStore implements BlobStore {
  readonly scratchDir: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly partSize: number;

  constructor(opts: S3BlobStoreOptions) {
    this.bucket = opts.bucket;
    this.scratchDir = opts.scratchDir;
    this.partSize = Math.max(5 * MiB, opts.partSize ?? 8 * MiB);
    this.client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle ?? false,
      credentials: opts.accessKeyId && opts.secretAccessKey ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } : undefined,
      // Quick failure when the store is down: the SDK's own retries (3 attempts, jittered) stay, but a connect
      // that hangs is cut short. requestTimeout is per socket inactivity, so long streams are not cut.
      requestHandler: { connectionTimeout: opts.connectTimeoutMs ?? 3000, requestTimeout: opts.requestTimeoutMs ?? 30_000, throwOnRequestTimeout: true },
      // Only checksum when the operation requires it: S3-compatible servers vary in the newer checksum headers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private keyOf(sha256: string): string {
    if (!/^[a-f0-9]{64}$/.test(sha256)) throw new Error('invalid sha256');
    return `${BLOBS}${sha256.slice(0, 2)}/${sha256}`;
  }

  private async send<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw unavailableOr(err);
    }
  }

  async stage(source: Readable, opts: { maxBytes?: number } = {}): Promise<StagedBlob> {
    const key = `${STAGING}${randomUUID()}`;
    const meter = hashingMeter(opts.maxBytes);
    const body = new PassThrough();
    // queueSize 1: one part in flight while the next is read, so an upload holds at most ~2 parts in memory.
    const upload = new Upload({ client: this.client, params: { Bucket: this.bucket, Key: key, Body: body }, partSize: this.partSize, queueSize: 1, leavePartsOnError: false });
    // Either side failing stops the other: a failed upload must not leave the request body paused forever,
    // and a failed source (too large, client gone) makes the Upload abort its multipart upload.
    const uploaded = upload.done().catch((err: unknown) => {
      body.destroy(err as Error);
      throw err;
    });
    const piped = pipeline(source, meter.stream, body);
    const [pipe, up] = await Promise.allSettled([piped, uploaded]);
    if (pipe.status === 'fulfilled' && up.status === 'fulfilled') return { ...meter.result(), location: key };
    // Nothing stays behind: the Upload aborted its parts; a small body may have been put whole before the error.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => undefined);
    const sourceErr = pipe.status === 'rejected' ? pipe.reason : undefined;
    const uploadErr = up.status === 'rejected' ? up.reason : undefined;
    // A store that is down is the cause; otherwise the source's own failure (too large, an aborted request).
    if (uploadErr !== undefined && isUnavailable(uploadErr)) throw unavailableOr(uploadErr);
    throw sourceErr ?? uploadErr;
  }

  async stageFile(localPath: string): Promise<StagedBlob> {
    return this.stage(createReadStream(localPath));
  }

  async publish(staged: StagedBlob): Promise<void> {
    const target = this.keyOf(staged.sha256);
    // Copied whether the content is stored already (by any tenant) or not: skipping the copy made an upload of bytes
    // another tenant holds measurably faster, which told them so. A staged blob published before (a retry) is gone:
    // fine when its bytes are there.
    await this.send(() => this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: target, CopySource: `${this.bucket}/${encodeURI(staged.location)}` })))
      .catch(async (err: unknown) => {
        const present = statusOf(err) === 404 && await this.send(() => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: target }))).then(() => true, () => false);
        if (!present) throw err;
      });
    await this.discard(staged);
  }

  async discard(staged: StagedBlob): Promise<void> {
    // Only staging keys: a stageFile'd blob's location is an object key too, never the caller's local file.
    if (!staged.location.startsWith(STAGING)) throw new Error(`not a staging key: ${staged.location}`);
    await this.send(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: staged.location })));
  }

  open(sha256: string, start = 0): Readable {
    const key = this.keyOf(sha256);
    const out = new PassThrough();
    const abort = new AbortController();
    out.once('close', () => abort.abort());
    this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: start > 0 ? `bytes=${start}-` : undefined }), { abortSignal: abort.signal })
      .then((res) => {
        const body = res.Body as Readable;
        if (out.destroyed) return void body.destroy();
        // A connection lost mid-stream is the store's outage too (an import's activity retries it).
        body.once('error', (err) => out.destroy(unavailableOr(err) as Error));
        out.once('close', () => body.destroy());
        body.pipe(out);
      })
      .catch((err: unknown) => {
        if (out.destroyed) return;
        const status = statusOf(err);
        // Past the end: nothing to read (as a file read from beyond its size).
        if (status === 416) out.end();
        else out.destroy((status === 404 || (err as Error).name === 'NoSuchKey' ? notFound(sha256) : unavailableOr(err)) as Error);
      });
    return out;
  }

  async remove(sha256: string): Promise<void> {
    await this.send(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(sha256) })));
  }

  /** Closes the client's sockets (tests, shutdown). */
  destroy(): void {
    this.client.destroy();
  }
}

/** The scratch folder an S3 store uses under a data dir. */
export function s3ScratchDir(fileStoreDir: string): string {
  return path.join(fileStoreDir, 'tmp');
}

/** The store the configuration names: the disk by default, else the S3 bucket. */
export function blobStoreFor(config: Pick<Config, 'fileStore' | 'fileStoreDir'>): BlobStore {
  const fs = config.fileStore;
  if (fs.kind === 'disk') return new DiskBlobStore(config.fileStoreDir);
  return new S3BlobStore({ ...fs, scratchDir: s3ScratchDir(config.fileStoreDir) });
}
