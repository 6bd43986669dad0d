// The file store: upload (multipart or raw), metadata, download with ETag, delete.
import { Readable } from 'node:stream';
import Busboy from 'busboy';
import Koa from 'koa';
import { Op, WhereOptions } from 'sequelize';
import { StoredFile } from '../../db';
import { recordAudit } from '../../lib/audit';
import { BlobStore, BlobTooLargeError } from '../../lib/blob-store';
import { ContentTooSmallError, deleteFile, fileDependents, OWNED_FILE_PREFIXES, ownerOf, storeStream } from '../../lib/files';
import { AuthContext } from '../auth';
import { page, paginate, queryOf, respond } from '../conventions';
import { ApiError, notFound, validationFailed } from '../errors';
import { presentFile } from '../presenters';
import { nulErrors } from '../input';
import { auditContext, caller, Handlers, RouteDeps } from '../types';

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

interface IncomingUpload { stream: Readable; filename: string; contentType: string }

/** The first part named `file` of a multipart body, as a stream (never buffered whole). */
function multipartFile(ctx: Koa.Context, maxBytes: number): Promise<IncomingUpload> {
  return new Promise((resolve, reject) => {
    let bb: Busboy.Busboy;
    try {
      bb = Busboy({ headers: ctx.req.headers, limits: { files: 1, fileSize: maxBytes + 1 } });
    } catch (err) {
      return reject(new ApiError(400, 'VALIDATION_FAILED', `Bad multipart body: ${(err as Error).message}`));
    }
    let found = false;
    bb.on('file', (name, stream, info) => {
      if (name !== 'file' || found) {
        stream.resume();
        return;
      }
      found = true;
      resolve({ stream, filename: info.filename || 'upload', contentType: info.mimeType || 'application/octet-stream' });
    });
    bb.on('error', (err) => reject(new ApiError(400, 'VALIDATION_FAILED', `Bad multipart body: ${(err as Error).message}`)));
    bb.on('close', () => { if (!found) reject(validationFailed([{ path: '/requestBody/file', message: 'a part named "file" is required' }])); });
    ctx.req.pipe(bb);
  });
}

export function fileRoutes(deps: RouteDeps): Handlers {
  const limit = deps.config.limits.uploadBytes;

  /** The file, if the caller may open it: a file a workflow made also needs its owner's permission. */
  async function findFile(auth: AuthContext, id: string): Promise<StoredFile> {
    const file = await StoredFile.findOne({ where: { id, tenantId: auth.tenant.id } });
    if (!file) throw notFound(`File ${id}`);
    const owner = ownerOf(file);
    if (owner && !auth.permissions.has(owner.permission)) {
      throw new ApiError(403, 'PERMISSION_DENIED', `This file was made by ${owner.what}; opening it needs the permission '${owner.permission}'`, { permission: owner.permission });
    }
    return file;
  }

  return {
    async listFiles(c, ctx) {
      const q = queryOf(c);
      const auth = caller(ctx);
      // Files of owners the caller may not read are left out of the list.
      const hidden: WhereOptions[] = OWNED_FILE_PREFIXES.filter((o) => !auth.permissions.has(o.permission))
        .map((o) => ({ [Op.or]: [{ originKey: null }, { originKey: { [Op.notLike]: `${o.prefix}%` } }] }));
      const where = { [Op.and]: [{ tenantId: auth.tenant.id }, ...hidden] };
      const result = await paginate(StoredFile, { where, limit: q.int('limit'), cursor: q.str('cursor') });
      ctx.body = page(result, presentFile);
    },

    async uploadFile(c, ctx) {
      if (ctx.request.length > limit) {
        throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `Files may be at most ${limit} bytes`);
      }
      const hasBody = ctx.request.length !== undefined ? ctx.request.length > 0 : ctx.get('transfer-encoding') !== '';
      if (!hasBody) throw validationFailed([{ path: '/requestBody', message: 'is required: the file\'s bytes, or a multipart part named "file"' }]);
      const upload: IncomingUpload = ctx.is('multipart/form-data')
        ? await multipartFile(ctx, limit)
        : { stream: ctx.req, filename: queryOf(c).str('filename') ?? 'upload', contentType: ctx.get('content-type') || 'application/octet-stream' };
      const bad = nulErrors(upload.filename, '/requestBody/file/filename');
      if (bad.length) {
        upload.stream.resume();
        throw validationFailed(bad);
      }
      const audit = auditContext(ctx);
      let file: StoredFile;
      try {
        const meta = { tenantId: audit.tenantId, filename: upload.filename.slice(0, 255), contentType: upload.contentType.slice(0, 200), createdBy: audit.actor.id };
        // The file row and its audit event in one transaction.
        file = await storeStream(deps.blobs, meta, upload.stream, { maxBytes: limit, minBytes: 1 },
          (stored, transaction) => recordAudit({ ...audit, action: 'files.file.uploaded', entityType: 'file', entityId: stored.id, after: presentFile(stored) }, transaction));
      } catch (err) {
        if (err instanceof BlobTooLargeError) throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `Files may be at most ${limit} bytes`);
        if (err instanceof ContentTooSmallError) throw validationFailed([{ path: '/requestBody', message: 'is empty: a file has at least one byte' }]);
        throw err;
      }
      respond(ctx, presentFile(file), { status: 201, location: `/v1/files/${file.id}`, etag: `"${file.sha256}"` });
    },

    async getFile(c, ctx) {
      const file = await findFile(caller(ctx), c.request.params.fileId as string);
      respond(ctx, presentFile(file), { etag: `"${file.sha256}"` });
    },

    async downloadFile(c, ctx) {
      await sendStoredFile(ctx, deps.blobs, await findFile(caller(ctx), c.request.params.fileId as string));
    },

    async deleteFile(c, ctx) {
      const audit = auditContext(ctx);
      const file = await findFile(caller(ctx), c.request.params.fileId as string);
      // A document's or an export's file goes with its owner (DELETE /v1/documents/{id}), never alone.
      await deleteFile(deps.blobs, file, async (transaction) => {
        const { count, what } = await fileDependents(file, transaction);
        if (count > 0) throw new ApiError(409, 'DEPENDENCY_EXISTS', `The file is used by ${what.join(' and ')}; delete that instead`, { count });
        await recordAudit({ ...audit, action: 'files.file.deleted', entityType: 'file', entityId: file.id, before: presentFile(file) }, transaction);
      });
      ctx.status = 204;
    },
  };
}
