// Sending stored bytes to a client: one way for every download (files, documents, exports, batches).
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
  ctx.set('ETag', etag);
  ctx.set('Cache-Control', 'private, max-age=0, must-revalidate');
  if (ctx.get('if-none-match').split(',').map((t) => t.trim().replace(/^W\//, '')).includes(etag)) {
    ctx.status = 304;
    return;
  }
  ctx.type = file.contentType;
  ctx.length = file.size;
  ctx.set('Content-Disposition', contentDisposition(file.filename));
  ctx.body = blobs.open(file.sha256);
}
