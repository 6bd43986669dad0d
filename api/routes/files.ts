// The file store: upload (multipart or raw), metadata, download with ETag, delete (domains/files/commands.ts).
import Busboy from 'busboy';
import Koa from 'koa';
import { Op, WhereOptions } from 'sequelize';
import { StoredFile } from '../../db/models/files';
import { deleteStoredFile, findOpenableFile, Upload, uploadFile } from '../../domains/files/commands';
import { presentFile } from '../../domains/files/presenters';
import { OWNED_FILE_PREFIXES } from '../../lib/files';
import { ApiError, validationFailed } from '../../lib/problems';
import { page, paginate, respond } from '../conventions';
import { sendStoredFile } from '../downloads';
import { unstorableTextErrors } from '../input';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

/** The first part named `file` of a multipart body, as a stream (never buffered whole). */
function multipartFile(ctx: Koa.Context, maxBytes: number): Promise<Upload> {
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

  return {
    async listFiles({ query }, ctx) {
      const auth = caller(ctx);
      // Files of owners the caller may not read are left out of the list.
      const hidden: WhereOptions[] = OWNED_FILE_PREFIXES.filter((o) => !auth.permissions.has(o.permission))
        .map((o) => ({ [Op.or]: [{ originKey: null }, { originKey: { [Op.notLike]: `${o.prefix}%` } }] }));
      const where = { [Op.and]: [{ tenantId: auth.tenant.id }, ...hidden] };
      ctx.body = page(await paginate(StoredFile, { where, limit: query.limit, cursor: query.cursor }), presentFile);
    },

    async uploadFile({ query }, ctx) {
      if (ctx.request.length > limit) {
        throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `Files may be at most ${limit} bytes`);
      }
      const hasBody = ctx.request.length !== undefined ? ctx.request.length > 0 : ctx.get('transfer-encoding') !== '';
      if (!hasBody) throw validationFailed([{ path: '/requestBody', message: 'is required: the file\'s bytes, or a multipart part named "file"' }]);
      const upload: Upload = ctx.is('multipart/form-data')
        ? await multipartFile(ctx, limit)
        : { stream: ctx.req, filename: query.filename ?? 'upload', contentType: ctx.get('content-type') || 'application/octet-stream' };
      const bad = unstorableTextErrors(upload.filename, '/requestBody/file/filename');
      if (bad.length) {
        upload.stream.resume();
        throw validationFailed(bad);
      }
      const file = await uploadFile(deps, commandCaller(ctx), upload);
      respond(ctx, presentFile(file), { status: 201, location: `/v1/files/${file.id}`, etag: `"${file.sha256}"` });
    },

    async getFile({ params }, ctx) {
      const file = await findOpenableFile(commandCaller(ctx), params.fileId);
      respond(ctx, presentFile(file), { etag: `"${file.sha256}"` });
    },

    async downloadFile({ params }, ctx) {
      await sendStoredFile(ctx, deps.blobs, await findOpenableFile(commandCaller(ctx), params.fileId));
    },

    async deleteFile({ params }, ctx) {
      await deleteStoredFile(deps, commandCaller(ctx), params.fileId);
      ctx.status = 204;
    },
  } satisfies RouteHandlers;
}
