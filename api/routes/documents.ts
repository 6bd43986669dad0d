// Documents: versioned templates with raw parts, previews, document jobs, batches with a ZIP download, and a
// purchase order's documents; what they do is domains/documents/commands.ts.
import yazl from 'yazl';
import { Document, DocumentBatch, DocumentTemplate, DocumentTemplateVersion } from '../../db/models/documents';
import { PurchaseOrder } from '../../db/models/purchasing';
import {
  batchFiles, createDocumentTemplate, deleteDocument, deleteDocumentTemplate, deleteDocumentTemplatePart, previewDocumentTemplate, putDocumentTemplatePart, readPart,
  requestDocumentBatch, requestDocumentFor, updateDocumentTemplate,
} from '../../domains/documents/commands';
import { presentDocument, presentDocumentBatch, presentDocumentTemplate } from '../../domains/documents/presenters';
import { ApiError, notFound } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { accepted, downloadWhenReady, whenReady } from '../async-jobs';
import { ifMatch, page, paginate, paginateVersions, respond, versionEtag } from '../conventions';
import { contentDisposition } from '../downloads';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function documentRoutes(deps: RouteDeps) {
  return {
    async listDocumentTemplates({ query }, ctx) {
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (query.code) where.code = query.code;
      ctx.body = page(await paginate(DocumentTemplate, { where, limit: query.limit, cursor: query.cursor }), presentDocumentTemplate);
    },

    async createDocumentTemplate({ body }, ctx) {
      const t = await createDocumentTemplate(deps, commandCaller(ctx), body);
      respond(ctx, presentDocumentTemplate(t), { status: 201, location: `/v1/document-templates/${t.id}`, etag: versionEtag(t.version) });
    },

    async getDocumentTemplate({ params }, ctx) {
      const t = await findInTenant(DocumentTemplate, caller(ctx).tenant.id, params.documentTemplateId, 'Document template');
      respond(ctx, presentDocumentTemplate(t), { etag: versionEtag(t.version) });
    },

    async updateDocumentTemplate({ params, body }, ctx) {
      const t = await updateDocumentTemplate(deps, commandCaller(ctx), params.documentTemplateId, body, ifMatch(ctx));
      respond(ctx, presentDocumentTemplate(t), { etag: versionEtag(t.version) });
    },

    async deleteDocumentTemplate({ params }, ctx) {
      await deleteDocumentTemplate(deps, commandCaller(ctx), params.documentTemplateId);
      ctx.status = 204;
    },

    async listDocumentTemplateVersions({ params, query }, ctx) {
      const t = await findInTenant(DocumentTemplate, caller(ctx).tenant.id, params.documentTemplateId, 'Document template');
      const versions = await paginateVersions(DocumentTemplateVersion, { templateId: t.id }, query);
      ctx.body = page(versions, (v) => presentDocumentTemplate({ ...v.get(), id: t.id, code: t.code }));
    },

    async getDocumentTemplatePart({ params }, ctx) {
      const t = await findInTenant(DocumentTemplate, caller(ctx).tenant.id, params.documentTemplateId, 'Document template');
      const text = readPart(t.parts, params.part);
      if (text === undefined) throw notFound(`Part ${params.part}`);
      ctx.set('ETag', versionEtag(t.version));
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = text;
    },

    async putDocumentTemplatePart({ params, body }, ctx) {
      const t = await putDocumentTemplatePart(deps, commandCaller(ctx), params.documentTemplateId, params.part, body ?? '', ifMatch(ctx));
      respond(ctx, presentDocumentTemplate(t), { etag: versionEtag(t.version) });
    },

    async deleteDocumentTemplatePart({ params }, ctx) {
      const t = await deleteDocumentTemplatePart(deps, commandCaller(ctx), params.documentTemplateId, params.part, ifMatch(ctx));
      respond(ctx, presentDocumentTemplate(t), { etag: versionEtag(t.version) });
    },

    async previewDocumentTemplate({ params, body }, ctx) {
      const preview = await previewDocumentTemplate(deps, commandCaller(ctx), params.documentTemplateId, body);
      if ('html' in preview) {
        ctx.body = preview.html;
        ctx.type = 'text/html; charset=utf-8';
      } else {
        ctx.type = 'application/pdf';
        ctx.body = preview.pdf;
      }
    },

    async listDocuments({ query }, ctx) {
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      for (const k of ['objectType', 'objectId', 'batchId', 'status'] as const) if (query[k]) where[k] = query[k];
      ctx.body = page(await paginate(Document, { where, limit: query.limit, cursor: query.cursor }), presentDocument);
    },

    async createDocument({ body }, ctx) {
      const doc = await requestDocumentFor(deps, commandCaller(ctx), body);
      accepted(ctx, presentDocument(doc), `/v1/documents/${doc.id}`);
    },

    async getDocument({ params }, ctx) {
      ctx.body = presentDocument(await findInTenant(Document, caller(ctx).tenant.id, params.documentId, 'Document'));
    },

    async deleteDocument({ params }, ctx) {
      await deleteDocument(deps, commandCaller(ctx), params.documentId);
      ctx.status = 204;
    },

    async downloadDocument({ params }, ctx) {
      const doc = await findInTenant(Document, caller(ctx).tenant.id, params.documentId, 'Document');
      await downloadWhenReady(ctx, deps.blobs, doc, () => new ApiError(409, 'DOCUMENT_NOT_READY', `The document is ${doc.status}${doc.error ? `: ${doc.error}` : ''}`));
    },

    async createDocumentBatch({ body }, ctx) {
      const batch = await requestDocumentBatch(deps, commandCaller(ctx), body);
      accepted(ctx, presentDocumentBatch(batch), `/v1/document-batches/${batch.id}`);
    },

    async getDocumentBatch({ params }, ctx) {
      ctx.body = presentDocumentBatch(await findInTenant(DocumentBatch, caller(ctx).tenant.id, params.batchId, 'Document batch'));
    },

    async downloadDocumentBatch({ params }, ctx) {
      const batch = await findInTenant(DocumentBatch, caller(ctx).tenant.id, params.batchId, 'Document batch');
      whenReady(batch, () => new ApiError(409, 'BATCH_NOT_READY', `The batch is ${batch.status} (${batch.done + batch.failed} of ${batch.total} done)`));
      // Streamed: each file is opened only when the archive reaches it, so 10,000 entries hold no 10,000 handles.
      const zip = new yazl.ZipFile();
      for (const { name, file } of await batchFiles(batch)) {
        zip.addReadStreamLazy(name, { size: file.size, compress: false }, (cb) => cb(null, deps.blobs.open(file.sha256)));
      }
      zip.end();
      ctx.type = 'application/zip';
      ctx.set('Content-Disposition', contentDisposition(`batch-${batch.id}.zip`));
      ctx.body = zip.outputStream;
    },

    async listPurchaseOrderDocuments({ params, query }, ctx) {
      const order = await findInTenant(PurchaseOrder, caller(ctx).tenant.id, params.orderId, 'Purchase order');
      const where = { tenantId: order.tenantId, objectType: 'purchase_order', objectId: order.id };
      ctx.body = page(await paginate(Document, { where, limit: query.limit, cursor: query.cursor }), presentDocument);
    },
  } satisfies RouteHandlers;
}
