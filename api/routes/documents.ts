// Documents: versioned templates with raw parts, previews, document jobs, batches with a ZIP download,
// and a purchase order's documents.
import { randomUUID } from 'node:crypto';
import { ActivityFailure, ApplicationFailure, TimeoutFailure, WorkflowFailedError } from '@temporalio/client';
import { Op, Transaction, WhereOptions } from 'sequelize';
import yazl from 'yazl';
import {
  Document, DocumentBatch, DocumentOutput, DocumentTemplate, DocumentTemplateVersion, PurchaseOrder, StoredFile, TemplateParts, TemplateSettings,
} from '../../db';
import { destroyWithAudit, recordAudit } from '../../lib/audit';
import { requestDocument } from '../../lib/documents/jobs';
import { PARTIAL_NAME, TEMPLATE_LIMITS, TemplateRenderError, TemplateSyntaxError } from '../../lib/documents/templates';
import { deleteFile } from '../../lib/files';
import { startBusinessWorkflow, startOrUndo } from '../../lib/temporal';
import { TaskLimitError, workPool } from '../../lib/work-pool';
import type { documentBatchWorkflow, documentPreviewWorkflow } from '../../workflows/documents';
import {
  DOCUMENT_BATCHES_DOMAIN, DOCUMENT_PREVIEWS_DOMAIN, DOCUMENTS_TASK_QUEUE, TEMPLATE_RENDER_ERROR,
} from '../../workflows/documents.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { checkIfMatch, page, paginate, queryOf, respond } from '../conventions';
import { ApiError, notFound, serviceUnavailable, validationFailed } from '../errors';
import { presentDocument, presentDocumentBatch, presentDocumentTemplate } from '../presenters/documents';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';
import { contentDisposition, sendStoredFile } from './files';

const templateEtag = (version: number) => `"v${version}"`;
const DEFAULT_MARGINS = { top: '20mm', right: '15mm', bottom: '20mm', left: '15mm' };

type TemplateBody = Schemas['DocumentTemplateUpdate'];

function settingsOf(body: TemplateBody): TemplateSettings {
  return {
    paperSize: body.paperSize ?? 'A4', orientation: body.orientation ?? 'portrait',
    margins: { ...DEFAULT_MARGINS, ...(body.margins ?? {}) }, variables: body.variables ?? 'lenient',
  };
}


function partsOf(p: Schemas['DocumentTemplateParts']): TemplateParts {
  // OpenAPI 3.0 cannot say what a map's keys look like, so partial names are checked here.
  const badNames = Object.keys(p.partials ?? {}).filter((n) => !PARTIAL_NAME.test(n));
  if (badNames.length) throw validationFailed(badNames.map((n) => ({ path: `/requestBody/parts/partials/${n}`, message: `must match ${PARTIAL_NAME.source}` })));
  return { base: p.base ?? '', header: p.header ?? '', footer: p.footer ?? '', css: p.css ?? '', partials: p.partials ?? {} };
}

/**
 * Template work on the work pool (off the request thread, within TEMPLATE_LIMITS.budgetMs): a syntax error
 * is a 422 naming part, line and column, a render error 422 TEMPLATE_RENDER_ERROR, and work stopped for
 * time or memory 422 TEMPLATE_RENDER_LIMIT.
 */
async function templateWork<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof TemplateSyntaxError) {
      const message = `line ${err.line}, column ${err.column}: ${err.message.split(': ').slice(1).join(': ')}`;
      throw new ApiError(422, 'TEMPLATE_SYNTAX_ERROR', err.message, { errors: [{ path: `/parts/${err.part}`, message, line: err.line, column: err.column }] });
    }
    if (err instanceof TemplateRenderError) throw new ApiError(422, 'TEMPLATE_RENDER_ERROR', err.message);
    if (err instanceof TaskLimitError) throw new ApiError(422, 'TEMPLATE_RENDER_LIMIT', `The template ${err.message}; make it do less work (smaller loops, less data)`);
    throw err;
  }
}

/** Every part must parse before anything is saved. */
const checkParts = (parts: TemplateParts) => templateWork(() => workPool().run('checkTemplate', [parts], TEMPLATE_LIMITS.budgetMs));

/** Own properties only: a part name is never looked up on a prototype. */
function readPart(parts: TemplateParts, part: string): string | undefined {
  const [holder, name] = part.startsWith('partials.') ? [parts.partials, part.slice('partials.'.length)] : [parts, part];
  const value: unknown = Object.hasOwn(holder, name) ? (holder as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function writePart(parts: TemplateParts, part: string, text: string): TemplateParts {
  if (!part.startsWith('partials.')) return { ...parts, [part]: text };
  const name = part.slice('partials.'.length);
  const partials = { ...parts.partials };
  // An empty body removes a partial (a part of the page is just cleared).
  if (text === '') delete partials[name];
  else partials[name] = text;
  return { ...parts, partials };
}

/** File names inside a ZIP: unique, so two items called "invoice.pdf" both survive. */
function uniqueName(used: Set<string>, name: string): string {
  let candidate = name;
  for (let i = 2; used.has(candidate); i++) candidate = name.replace(/(\.[^.]*)?$/, (ext) => `-${i}${ext}`);
  used.add(candidate);
  return candidate;
}

export function documentRoutes(deps: RouteDeps): Handlers {
  async function findTemplate(tenantId: string, id: string): Promise<DocumentTemplate> {
    const t = await DocumentTemplate.findOne({ where: { id, tenantId } });
    if (!t) throw notFound(`Document template ${id}`);
    return t;
  }
  async function templateByCode(tenantId: string, code: string): Promise<DocumentTemplate> {
    const t = await DocumentTemplate.findOne({ where: { tenantId, code } });
    if (!t) throw new ApiError(422, 'UNKNOWN_TEMPLATE', `No document template with code "${code}"`);
    return t;
  }
  async function findDocument(tenantId: string, id: string): Promise<Document> {
    const d = await Document.findOne({ where: { id, tenantId } });
    if (!d) throw notFound(`Document ${id}`);
    return d;
  }
  async function findBatch(tenantId: string, id: string): Promise<DocumentBatch> {
    const b = await DocumentBatch.findOne({ where: { id, tenantId } });
    if (!b) throw notFound(`Document batch ${id}`);
    return b;
  }

  /** Saves a new version of the template (row locked, If-Match checked) with what `change` returns. */
  async function saveVersion(ctx: Parameters<Handlers[string]>[1], id: string, change: (t: DocumentTemplate) => { name: string; description: string | null; settings: TemplateSettings; parts: TemplateParts }) {
    const audit = auditContext(ctx);
    return deps.sequelize.transaction(async (transaction) => {
      const t = await DocumentTemplate.findOne({ where: { id, tenantId: audit.tenantId }, transaction, lock: transaction.LOCK.UPDATE });
      if (!t) throw notFound(`Document template ${id}`);
      checkIfMatch(ctx, templateEtag(t.version));
      const next = change(t);
      await checkParts(next.parts);
      const before = { version: t.version };
      Object.assign(t, next, { version: t.version + 1 });
      await t.save({ transaction });
      await DocumentTemplateVersion.create({ templateId: t.id, version: t.version, tenantId: audit.tenantId, ...next, createdBy: audit.actor.id }, { transaction });
      await recordAudit({ ...audit, action: 'documents.template.updated', entityType: 'document_template', entityId: t.id, before, after: { version: t.version } }, transaction);
      return t;
    });
  }

  return {
    async listDocumentTemplates(c, ctx) {
      const q = queryOf(c);
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (q.str('code')) where.code = q.str('code');
      ctx.body = page(await paginate(DocumentTemplate, { where, limit: q.int('limit'), cursor: q.str('cursor') }), presentDocumentTemplate);
    },

    async createDocumentTemplate(c, ctx) {
      const body = c.request.requestBody as Schemas['DocumentTemplateInput'];
      const parts = partsOf(body.parts);
      await checkParts(parts);
      const settings = settingsOf(body);
      const audit = auditContext(ctx);
      const t = await deps.sequelize.transaction(async (transaction) => {
        if (await DocumentTemplate.count({ where: { tenantId: audit.tenantId, code: body.code }, transaction })) {
          throw new ApiError(409, 'ALREADY_EXISTS', `A document template with code "${body.code}" exists already`);
        }
        const fields = { name: body.name, description: body.description ?? null, settings, parts };
        const created = await DocumentTemplate.create({ id: randomUUID(), tenantId: audit.tenantId, code: body.code, ...fields, version: 1 }, { transaction });
        await DocumentTemplateVersion.create({ templateId: created.id, version: 1, tenantId: audit.tenantId, ...fields, createdBy: audit.actor.id }, { transaction });
        await recordAudit({ ...audit, action: 'documents.template.created', entityType: 'document_template', entityId: created.id, after: { code: body.code, version: 1 } }, transaction);
        return created;
      });
      respond(ctx, presentDocumentTemplate(t), { status: 201, location: `/v1/document-templates/${t.id}`, etag: templateEtag(t.version) });
    },

    async getDocumentTemplate(c, ctx) {
      const t = await findTemplate(caller(ctx).tenant.id, c.request.params.documentTemplateId as string);
      respond(ctx, presentDocumentTemplate(t), { etag: templateEtag(t.version) });
    },

    async updateDocumentTemplate(c, ctx) {
      const body = c.request.requestBody as TemplateBody;
      const t = await saveVersion(ctx, c.request.params.documentTemplateId as string, () => ({
        name: body.name, description: body.description ?? null, settings: settingsOf(body), parts: partsOf(body.parts),
      }));
      respond(ctx, presentDocumentTemplate(t), { etag: templateEtag(t.version) });
    },

    async deleteDocumentTemplate(c, ctx) {
      const audit = auditContext(ctx);
      await deps.sequelize.transaction(async (transaction) => {
        const t = await DocumentTemplate.findOne({ where: { id: c.request.params.documentTemplateId as string, tenantId: audit.tenantId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!t) throw notFound(`Document template ${c.request.params.documentTemplateId}`);
        const running = await Document.count({ where: { templateId: t.id, status: ['queued', 'rendering'] }, transaction });
        if (running) throw new ApiError(409, 'DEPENDENCY_EXISTS', `${running} document job(s) of this template are still running`, { count: running });
        await t.destroy({ transaction });
        await recordAudit({ ...audit, action: 'documents.template.deleted', entityType: 'document_template', entityId: t.id, before: { code: t.code, version: t.version } }, transaction);
      });
      ctx.status = 204;
    },

    async listDocumentTemplateVersions(c, ctx) {
      const t = await findTemplate(caller(ctx).tenant.id, c.request.params.documentTemplateId as string);
      const versions = await DocumentTemplateVersion.findAll({ where: { templateId: t.id }, order: [['version', 'DESC']] });
      ctx.body = { items: versions.map((v) => presentDocumentTemplate({ ...v.get(), id: t.id, code: t.code })) };
    },

    async getDocumentTemplatePart(c, ctx) {
      const t = await findTemplate(caller(ctx).tenant.id, c.request.params.documentTemplateId as string);
      const text = readPart(t.parts, c.request.params.part as string);
      if (text === undefined) throw notFound(`Part ${c.request.params.part}`);
      ctx.set('ETag', templateEtag(t.version));
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = text;
    },

    async putDocumentTemplatePart(c, ctx) {
      const text = typeof ctx.state.body === 'string' ? ctx.state.body : '';
      const part = c.request.params.part as string;
      const t = await saveVersion(ctx, c.request.params.documentTemplateId as string, (cur) => ({
        name: cur.name, description: cur.description, settings: cur.settings, parts: writePart(cur.parts, part, text),
      }));
      respond(ctx, presentDocumentTemplate(t), { etag: templateEtag(t.version) });
    },

    async previewDocumentTemplate(c, ctx) {
      const body = c.request.requestBody as Schemas['DocumentPreviewInput'];
      const tenantId = caller(ctx).tenant.id;
      const t = await findTemplate(tenantId, c.request.params.documentTemplateId as string);
      if ((body.output ?? 'html') === 'html') {
        ctx.body = (await templateWork(() => workPool().run('renderTemplate', [t.parts, t.settings, body.data, `${t.id}:${t.version}`], TEMPLATE_LIMITS.budgetMs))).html;
        ctx.type = 'text/html; charset=utf-8';
        return;
      }
      // PDFs are made by the workers' Chromium pool: a short workflow returns the bytes, nothing is stored.
      try {
        const pdf = await deps.temporal.client.workflow.execute<typeof documentPreviewWorkflow>('documentPreviewWorkflow', {
          taskQueue: DOCUMENTS_TASK_QUEUE, workflowId: businessWorkflowId({ domain: DOCUMENT_PREVIEWS_DOMAIN, tenantId, entityId: randomUUID() }),
          args: [{ tenantId, templateId: t.id, version: t.version, data: body.data }], workflowExecutionTimeout: '1 minute',
        });
        ctx.type = 'application/pdf';
        ctx.body = Buffer.from(pdf, 'base64');
      } catch (err) {
        const cause = err instanceof WorkflowFailedError && err.cause instanceof ActivityFailure ? err.cause.cause : undefined;
        if (cause instanceof ApplicationFailure && cause.type === TEMPLATE_RENDER_ERROR) throw new ApiError(422, 'TEMPLATE_RENDER_ERROR', cause.message);
        // No documents worker answered within the minute (none running, or all busy).
        if (err instanceof WorkflowFailedError && err.cause instanceof TimeoutFailure) {
          throw serviceUnavailable('No documents worker rendered the preview within a minute; try again, or preview as HTML', 30);
        }
        throw err;
      }
    },

    async listDocuments(c, ctx) {
      const q = queryOf(c);
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      for (const k of ['objectType', 'objectId', 'batchId', 'status']) if (q.str(k)) where[k] = q.str(k);
      ctx.body = page(await paginate(Document, { where, limit: q.int('limit'), cursor: q.str('cursor') }), presentDocument);
    },

    async createDocument(c, ctx) {
      const body = c.request.requestBody as Schemas['DocumentInput'];
      const audit = auditContext(ctx);
      const template = await templateByCode(audit.tenantId, body.templateCode);
      const doc = await requestDocument(deps.temporal.client, {
        tenantId: audit.tenantId, template, data: body.data, output: body.output ?? 'pdf', fileName: body.fileName,
        objectType: body.objectType, objectId: body.objectId, createdBy: audit.actor.id, audit,
      });
      deps.metrics.workflowStarts.inc({ workflow_type: 'documentWorkflow' });
      respond(ctx, presentDocument(doc), { status: 202, location: `/v1/documents/${doc.id}` });
    },

    async getDocument(c, ctx) {
      ctx.body = presentDocument(await findDocument(caller(ctx).tenant.id, c.request.params.documentId as string));
    },

    async deleteDocument(c, ctx) {
      const audit = auditContext(ctx);
      const doc = await findDocument(audit.tenantId, c.request.params.documentId as string);
      if (doc.status === 'queued' || doc.status === 'rendering') throw new ApiError(409, 'DOCUMENT_BUSY', `The document is ${doc.status}; delete it once it is ready or failed`);
      const file = doc.fileId ? await StoredFile.findOne({ where: { id: doc.fileId, tenantId: audit.tenantId } }) : null;
      // The document, its file and the audit event go together, then the bytes if nothing else uses them.
      const removeDocument = async (transaction: Transaction) => {
        await doc.destroy({ transaction });
        await recordAudit({ ...audit, action: 'documents.document.deleted', entityType: 'document', entityId: doc.id, before: presentDocument(doc) }, transaction);
      };
      if (file) await deleteFile(deps.blobs, file, removeDocument);
      else await deps.sequelize.transaction(removeDocument);
      ctx.status = 204;
    },

    async downloadDocument(c, ctx) {
      const tenantId = caller(ctx).tenant.id;
      const doc = await findDocument(tenantId, c.request.params.documentId as string);
      const file = doc.status === 'ready' && doc.fileId ? await StoredFile.findOne({ where: { id: doc.fileId, tenantId } }) : null;
      if (!file) throw new ApiError(409, 'DOCUMENT_NOT_READY', `The document is ${doc.status}${doc.error ? `: ${doc.error}` : ''}`);
      await sendStoredFile(ctx, deps.blobs, file);
    },

    async createDocumentBatch(c, ctx) {
      const body = c.request.requestBody as Schemas['DocumentBatchInput'];
      const audit = auditContext(ctx);
      const template = await templateByCode(audit.tenantId, body.templateCode);
      const output: DocumentOutput = body.output ?? 'pdf';
      const id = randomUUID();
      const workflowId = businessWorkflowId({ domain: DOCUMENT_BATCHES_DOMAIN, tenantId: audit.tenantId, entityId: id });
      const requested = { tenantId: audit.tenantId, action: 'documents.batch.requested', entityType: 'document_batch', entityId: id } as const;
      const batch = await deps.sequelize.transaction(async (transaction) => {
        const created = await DocumentBatch.create({
          id, tenantId: audit.tenantId, templateId: template.id, templateVersion: template.version, output, status: 'queued',
          total: body.items.length, workflowId, createdBy: audit.actor.id,
        }, { transaction });
        // Items are rows from the start: the workflow pages through them, and each is downloadable by id.
        for (let i = 0; i < body.items.length; i += 1000) {
          await Document.bulkCreate(body.items.slice(i, i + 1000).map((item, j) => {
            const docId = randomUUID();
            return {
              id: docId, tenantId: audit.tenantId, templateId: template.id, templateCode: template.code, templateVersion: template.version,
              batchId: id, batchIndex: i + j, output, fileName: item.fileName ?? `${template.code}-${i + j + 1}.${output}`,
              objectType: item.objectType ?? null, objectId: item.objectId ?? null, data: item.data, status: 'queued' as const, originKey: null,
              workflowId, createdBy: audit.actor.id,
            };
          }), { transaction });
        }
        await recordAudit({ ...audit, ...requested, after: { templateCode: template.code, total: body.items.length }, workflowId }, transaction);
        return created;
      });
      await startOrUndo(
        () => startBusinessWorkflow<typeof documentBatchWorkflow>(deps.temporal.client, {
          workflowType: 'documentBatchWorkflow', taskQueue: DOCUMENTS_TASK_QUEUE, domain: DOCUMENT_BATCHES_DOMAIN, tenantId: audit.tenantId,
          entityType: 'document_batch', entityId: id, initialStatus: 'queued',
          args: [{ tenantId: audit.tenantId, batchId: id, chunkSize: deps.config.documents.batchChunkSize }],
        }),
        // Its queued items would never render and would block the template's deletion: take the batch back
        // (its items go with it, ON DELETE CASCADE), and its event with it.
        () => destroyWithAudit(batch, requested),
      );
      deps.metrics.workflowStarts.inc({ workflow_type: 'documentBatchWorkflow' });
      respond(ctx, presentDocumentBatch(batch), { status: 202, location: `/v1/document-batches/${id}` });
    },

    async getDocumentBatch(c, ctx) {
      ctx.body = presentDocumentBatch(await findBatch(caller(ctx).tenant.id, c.request.params.batchId as string));
    },

    async downloadDocumentBatch(c, ctx) {
      const tenantId = caller(ctx).tenant.id;
      const batch = await findBatch(tenantId, c.request.params.batchId as string);
      if (batch.status !== 'ready') throw new ApiError(409, 'BATCH_NOT_READY', `The batch is ${batch.status} (${batch.done + batch.failed} of ${batch.total} done)`);
      const docs = await Document.findAll({ attributes: ['fileName', 'fileId'], where: { batchId: batch.id, tenantId, status: 'ready' }, order: [['batchIndex', 'ASC']], raw: true });
      const files = new Map<string, StoredFile>();
      const ids = docs.map((d) => d.fileId!).filter(Boolean);
      for (let i = 0; i < ids.length; i += 1000) {
        for (const f of await StoredFile.findAll({ where: { tenantId, id: { [Op.in]: ids.slice(i, i + 1000) } } as WhereOptions<StoredFile> })) files.set(f.id, f);
      }
      // Streamed: each file is opened only when the archive reaches it, so 10,000 entries hold no 10,000 handles.
      const zip = new yazl.ZipFile();
      const used = new Set<string>();
      for (const d of docs) {
        const f = files.get(d.fileId!);
        if (!f) continue;
        zip.addReadStreamLazy(uniqueName(used, d.fileName), { size: f.size, compress: false }, (cb) => cb(null, deps.blobs.open(f.sha256)));
      }
      zip.end();
      ctx.type = 'application/zip';
      ctx.set('Content-Disposition', contentDisposition(`batch-${batch.id}.zip`));
      ctx.body = zip.outputStream;
    },

    async listPurchaseOrderDocuments(c, ctx) {
      const q = queryOf(c);
      const tenantId = caller(ctx).tenant.id;
      const order = await PurchaseOrder.findOne({ where: { id: c.request.params.orderId as string, tenantId } });
      if (!order) throw notFound(`Purchase order ${c.request.params.orderId}`);
      const where = { tenantId, objectType: 'purchase_order', objectId: order.id };
      ctx.body = page(await paginate(Document, { where, limit: q.int('limit'), cursor: q.str('cursor') }), presentDocument);
    },
  };
}
