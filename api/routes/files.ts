// The file store: upload (multipart or raw), metadata, download with ETag, delete.
import { Readable } from 'node:stream';
import Busboy from 'busboy';
import Koa from 'koa';
import { Op, WhereOptions } from 'sequelize';
import { StoredFile } from '../../db/models/files';
import { recordAudit } from '../../lib/audit';
import { BlobTooLargeError } from '../../lib/blob-store';
import { sendStoredFile } from '../downloads';
import { ContentTooSmallError, deleteFile, fileDependents, OWNED_FILE_PREFIXES, ownerOf, storeStream } from '../../lib/files';
import { AuthContext } from '../auth';
import { page, paginate, respond } from '../conventions';
import { ApiError, notFound, validationFailed } from '../errors';
import { presentFile } from '../../domains/files/presenters';
import { nulErrors } from '../input';
import { auditContext, caller, RouteDeps, RouteHandlers } from '../types';

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

export function fileRoutes(deps: RouteDeps) {
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
    async listFiles({ query }, ctx) {
      const auth = caller(ctx);
      // Files of owners the caller may not read are left out of the list.
      const hidden: WhereOptions[] = OWNED_FILE_PREFIXES.filter((o) => !auth.permissions.has(o.permission))
        .map((o) => ({ [Op.or]: [{ originKey: null }, { originKey: { [Op.notLike]: `${o.prefix}%` } }] }));
      const where = { [Op.and]: [{ tenantId: auth.tenant.id }, ...hidden] };
      const result = await paginate(StoredFile, { where, limit: query.limit, cursor: query.cursor });
      ctx.body = page(result, presentFile);
    },

    async uploadFile({ query }, ctx) {
      if (ctx.request.length > limit) {
        throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `Files may be at most ${limit} bytes`);
      }
      const hasBody = ctx.request.length !== undefined ? ctx.request.length > 0 : ctx.get('transfer-encoding') !== '';
      if (!hasBody) throw validationFailed([{ path: '/requestBody', message: 'is required: the file\'s bytes, or a multipart part named "file"' }]);
      const upload: IncomingUpload = ctx.is('multipart/form-data')
        ? await multipartFile(ctx, limit)
        : { stream: ctx.req, filename: query.filename ?? 'upload', contentType: ctx.get('content-type') || 'application/octet-stream' };
      const bad = nulErrors(upload.filename, '/requestBody/file/filename');
      if (bad.length) {
        upload.stream.resume();
        throw validationFailed(bad);
      }
      const audit = auditContext(ctx);
      let file: StoredFile;
      try {
        const meta = { tenantId: audit.tenantId, filename: upload.filename.slice(0, 255), contentType: upload.contentType.slice(0, 200), createdBy: audit.actor.id };
        file = await storeStream(deps.blobs, meta, upload.stream, { maxBytes: limit, minBytes: 1 });
      } catch (err) {
        if (err instanceof BlobTooLargeError) throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `Files may be at most ${limit} bytes`);
        if (err instanceof ContentTooSmallError) throw validationFailed([{ path: '/requestBody', message: 'is empty: a file has at least one byte' }]);
        throw err;
      }
      await recordAudit({ ...audit, action: 'files.file.uploaded', entityType: 'file', entityId: file.id, after: presentFile(file) });
      respond(ctx, presentFile(file), { status: 201, location: `/v1/files/${file.id}`, etag: `"${file.sha256}"` });
    },

    async getFile({ params }, ctx) {
      const file = await findFile(caller(ctx), params.fileId);
      respond(ctx, presentFile(file), { etag: `"${file.sha256}"` });
    },

    async downloadFile({ params }, ctx) {
      await sendStoredFile(ctx, deps.blobs, await findFile(caller(ctx), params.fileId));
    },

    async deleteFile({ params }, ctx) {
      const audit = auditContext(ctx);
      const file = await findFile(caller(ctx), params.fileId);
      // A document's or an export's file goes with its owner (DELETE /v1/documents/{id}), never alone.
      await deleteFile(deps.blobs, file, async (transaction) => {
        const { count, what } = await fileDependents(file, transaction);
        if (count > 0) throw new ApiError(409, 'DEPENDENCY_EXISTS', `The file is used by ${what.join(' and ')}; delete that instead`, { count });
        await recordAudit({ ...audit, action: 'files.file.deleted', entityType: 'file', entityId: file.id, before: presentFile(file) }, transaction);
      });
      ctx.status = 204;
    },
  } satisfies RouteHandlers;
}
