// Sending stored bytes to a client: one way for every download (files, documents, exports, batches).
import type { Readable } from 'node:stream';
import Koa from 'koa';
import type { StoredFile } from '../db/models/files';
import type { BlobStore } from '../lib/blob-store';

export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/** Streams a stored file with its type, length, ETag (the sha256) and a download name; 304 on If-None-Match. */
export async function sendStoredFile(ctx: Koa.Context, blobs: BlobStore, file: StoredFile): Promise<void> {
  const etag = `"${file.sha256}"`;
  const cacheHeaders = () => {
    ctx.set('ETag', etag);
    ctx.set('Cache-Control', 'private, max-age=0, must-revalidate');
  };
  if (ctx.get('if-none-match').split(',').map((t) => t.trim().replace(/^W\//, '')).includes(etag)) {
    cacheHeaders();
    ctx.status = 304;
    return;
  }
  // The first bytes (or the store's error) before any header is set: a store that is down is a 503 with
  // Retry-After from the error handler, not a 200 cut short or Koa's plain-text 500.
  const body = await firstBytes(blobs.open(file.sha256));
  cacheHeaders();
  ctx.type = file.contentType;
  ctx.length = file.size;
  ctx.set('Content-Disposition', contentDisposition(file.filename));
  ctx.body = body;
}

/** Resolves once the stream has bytes buffered (or has ended), rejects with its error; the bytes stay in it. */
export function firstBytes(stream: Readable): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      stream.off('readable', onReadable);
      stream.off('error', done);
      if (err) {
        stream.destroy();
        reject(err);
      } else resolve(stream);
    };
    const onReadable = () => done();
    stream.once('readable', onReadable);
    stream.once('error', done);
  });
}
