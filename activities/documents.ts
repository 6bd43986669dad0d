// Document activities: render a document (Liquid → HTML → PDF on the worker's Chromium pool) and store
// it in the tenant's file store, once per job; render a batch chunk by chunk (the batch kit); previews.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { Op } from 'sequelize';
import { Document, DocumentBatch, DocumentTemplateVersion } from '../db/models/documents';
import { StoredFile } from '../db/models/files';
import { AuditInput, updateWithAudit } from '../lib/audit';
import { heartbeating, runChunk, settleWithLimit } from '../lib/batch';
import { BlobStore } from '../lib/blob-store';
import { PdfRenderer } from '../lib/pdf-renderer';
import { TEMPLATE_LIMITS, TemplateRenderError } from '../domains/documents/templates';
import { templateLimitMessage, workPool } from '../domains/work-pool';
import { TaskLimitError } from '../lib/work-pool';
import { storeStream } from '../lib/files';
import type { BatchChunkInput, BatchChunkResult, BatchInput, DocumentJobInput, PreviewInput } from '../workflows/documents.api';
import { TEMPLATE_RENDER_ERROR } from '../workflows/documents.api';

export interface DocumentActivityDeps {
  blobs: BlobStore;
  renderer: PdfRenderer;
  /** Documents of a batch rendered at once (normally the pool size). */
  batchConcurrency?: number;
}

/** Base64 of this many bytes stays under Temporal's 2 MB payload limit. */
export const PREVIEW_MAX_BYTES = 1_400_000;

const CONTENT_TYPES = { pdf: 'application/pdf', html: 'text/html; charset=utf-8' } as const;
const system = { type: 'system' as const, id: null };

async function templateVersion(templateId: string, version: number): Promise<DocumentTemplateVersion> {
  const v = await DocumentTemplateVersion.findOne({ where: { templateId, version } });
  // The template was deleted under the job: nothing to render from, ever.
  if (!v) throw ApplicationFailure.nonRetryable(`template ${templateId} version ${version} no longer exists`, TEMPLATE_RENDER_ERROR);
  return v;
}

export function createDocumentActivities(deps: DocumentActivityDeps) {
  const concurrency = Math.max(1, deps.batchConcurrency ?? 2);

  /**
   * Renders with the template version the job recorded; a template error is final (never retried). The Liquid
   * runs on the work pool, within its budget: a tenant's template may take seconds, and on the worker's event loop
   * it would hold every other activity that long, once per document of a batch.
   */
  async function renderBytes(v: DocumentTemplateVersion, data: Record<string, unknown>, output: 'pdf' | 'html'): Promise<Buffer> {
    try {
      const page = await workPool().run('renderTemplate', [v.parts, v.settings, data, `${v.templateId}:${v.version}`], TEMPLATE_LIMITS.budgetMs);
      if (output === 'html') return Buffer.from(page.html);
      return await deps.renderer.pdf(page.html, { settings: v.settings, header: page.header, footer: page.footer });
    } catch (err) {
      if (err instanceof TemplateRenderError) throw ApplicationFailure.nonRetryable(err.message, TEMPLATE_RENDER_ERROR);
      if (err instanceof TaskLimitError) throw ApplicationFailure.nonRetryable(templateLimitMessage(err), TEMPLATE_RENDER_ERROR);
      throw err;
    }
  }

  /**
   * One document, idempotent: a ready document is left alone; a file already stored under the job's
   * key (`document:<id>`, e.g. by an attempt that died before marking the row) is reused, so a retry
   * never renders or stores twice. The content hash names what was rendered.
   */
  async function produce(doc: Document, version?: DocumentTemplateVersion, audit?: (fileId: string) => AuditInput): Promise<string> {
    if (doc.status === 'ready' && doc.fileId) return doc.fileId;
    const v = version ?? await templateVersion(doc.templateId, doc.templateVersion);
    const contentHash = createHash('sha256').update(JSON.stringify([doc.templateId, doc.templateVersion, doc.output, doc.data])).digest('hex');
    const originKey = `document:${doc.id}`;
    let file = await StoredFile.findOne({ where: { tenantId: doc.tenantId, originKey } });
    if (!file) {
      if (doc.status === 'queued') await Document.update({ status: 'rendering' }, { where: { id: doc.id, status: 'queued' } });
      const bytes = await renderBytes(v, doc.data, doc.output);
      file = await storeStream(deps.blobs, { tenantId: doc.tenantId, filename: doc.fileName, contentType: CONTENT_TYPES[doc.output], createdBy: doc.createdBy, originKey }, Readable.from([bytes]));
    }
    // Only a document still under way becomes ready: one already failed (its batch cancelled, its job given up on)
    // stays so, and the file stored here is an orphan for files.orphan_purge.
    await updateWithAudit(Document, { status: 'ready', fileId: file.id, contentHash, error: null, completedAt: new Date() }, { id: doc.id, status: ['queued', 'rendering'] }, audit?.(file.id));
    return file.id;
  }

  async function markFailed(doc: Pick<Document, 'id' | 'tenantId'>, error: string, audit?: AuditInput): Promise<void> {
    await updateWithAudit(Document, { status: 'failed', error: error.slice(0, 2000), completedAt: new Date() }, { id: doc.id, tenantId: doc.tenantId, status: { [Op.ne]: 'ready' } }, audit);
  }

  /** Writes the batch's done and failed counts from its items; answers how many are unfinished. */
  async function countBatch(tenantId: string, batchId: string): Promise<number> {
    const counts = await Document.findAll({
      attributes: ['status', [Document.sequelize!.fn('count', '*'), 'n']], where: { tenantId, batchId }, group: ['status'], raw: true,
    }) as unknown as { status: string; n: string }[];
    const count = (s: string[]) => counts.filter((c) => s.includes(c.status)).reduce((sum, c) => sum + Number(c.n), 0);
    await DocumentBatch.update({ done: count(['ready']), failed: count(['failed']) }, { where: { tenantId, id: batchId } });
    return count(['queued', 'rendering']);
  }

  async function finishBatch(input: BatchInput): Promise<{ done: number; failed: number }> {
    const batch = await DocumentBatch.findOne({ where: { id: input.batchId, tenantId: input.tenantId } });
    if (!batch) return { done: 0, failed: 0 };
    await updateWithAudit(DocumentBatch, { status: 'ready', completedAt: batch.completedAt ?? new Date() }, { id: batch.id }, {
      tenantId: input.tenantId, actor: system, action: 'documents.batch.completed', entityType: 'document_batch', entityId: batch.id,
      after: { done: batch.done, failed: batch.failed }, workflowId: batch.workflowId, eventKey: `document-batches:${batch.id}:ready`,
    });
    return { done: batch.done, failed: batch.failed };
  }

  return {
    async renderDocument(input: DocumentJobInput): Promise<{ fileId: string }> {
      const doc = await Document.findOne({ where: { id: input.documentId, tenantId: input.tenantId } });
      if (!doc) throw ApplicationFailure.nonRetryable(`document ${input.documentId} was deleted`, TEMPLATE_RENDER_ERROR);
      const fileId = await heartbeating(() => produce(doc, undefined, (id) => ({
        tenantId: input.tenantId, actor: system, action: 'documents.document.generated', entityType: 'document', entityId: doc.id,
        after: { fileId: id, templateCode: doc.templateCode, templateVersion: doc.templateVersion }, workflowId: doc.workflowId, eventKey: `documents:${doc.id}:ready`,
      })));
      return { fileId };
    },

    async failDocument(input: DocumentJobInput & { error: string }): Promise<void> {
      await markFailed({ id: input.documentId, tenantId: input.tenantId }, input.error, {
        tenantId: input.tenantId, actor: system, action: 'documents.document.failed', entityType: 'document', entityId: input.documentId,
        after: { error: input.error }, eventKey: `documents:${input.documentId}:failed`,
      });
    },

    async markBatchRunning(input: BatchInput): Promise<void> {
      await DocumentBatch.update({ status: 'running' }, { where: { id: input.batchId, tenantId: input.tenantId, status: 'queued' } });
    },

    /**
     * One chunk of the batch (the batch kit's chunk activity): the next `chunkSize` unfinished items after
     * the cursor (the last batch index finished), `concurrency` at a time, then the progress. A worker that
     * dies loses at most the items it was rendering: the retry finds them unfinished (or their file stored)
     * and carries on; an item that cannot render is `failed`, the rest go on.
     */
    async renderBatchChunk(input: BatchChunkInput): Promise<BatchChunkResult> {
      const { batchId, tenantId, chunkSize } = input;
      let version: DocumentTemplateVersion | undefined;
      let remaining = 0;
      const report = await runChunk<number>({
        from: input.cursor ?? null,
        maxPages: 1,
        async page(after, signal) {
          const items = await Document.findAll({
            where: { batchId, tenantId, status: ['queued', 'rendering'], ...(after === null ? {} : { batchIndex: { [Op.gt]: after } }) },
            order: [['batchIndex', 'ASC']], limit: chunkSize,
          });
          // Every item of a batch uses the batch's template version: read it once per chunk.
          version ??= items.length ? await templateVersion(items[0].templateId, items[0].templateVersion).catch(() => undefined) : undefined;
          const settled = await settleWithLimit(items, concurrency, async (doc) => {
            // Cancelled: no item is started any more (the chunk ends once those under way are done).
            if (signal.aborted) return;
            try {
              await produce(doc, version);
            } catch (err) {
              if (!(err instanceof ApplicationFailure && err.type === TEMPLATE_RENDER_ERROR)) throw err;
              await markFailed(doc, err.message);
            }
          });
          const failure = settled.find((r) => r.status === 'rejected');
          if (failure) throw failure.reason;
          return { cursor: items.length ? items[items.length - 1].batchIndex : after, done: items.length < chunkSize };
        },
        async progress() {
          remaining = await countBatch(tenantId, batchId);
        },
      });
      // Items behind the cursor still unfinished (none should be): the next chunk looks from the start.
      if (report.done && remaining > 0) return { cursor: null, done: false, remaining };
      return { cursor: report.cursor, done: remaining === 0, remaining };
    },

    finishBatch,

    /**
     * The end of a batch cancelled in Temporal: its unfinished items failed with `error`, the counts written, then
     * finished as finishBatch does (the same event key: a batch ends once, however often this is retried).
     */
    async cancelBatch(input: BatchInput & { error: string }): Promise<{ done: number; failed: number }> {
      const { batchId, tenantId, error } = input;
      await Document.update({ status: 'failed', error, completedAt: new Date() }, { where: { batchId, tenantId, status: ['queued', 'rendering'] } });
      await countBatch(tenantId, batchId);
      return finishBatch(input);
    },

    /** A PDF of sample data, returned as base64 and stored nowhere. */
    async renderPreview(input: PreviewInput): Promise<string> {
      const v = await templateVersion(input.templateId, input.version);
      const pdf = await heartbeating(() => renderBytes(v, input.data, 'pdf'));
      // The bytes travel in the workflow's result, and Temporal refuses payloads over 2 MB.
      if (pdf.length > PREVIEW_MAX_BYTES) {
        throw ApplicationFailure.nonRetryable(`the preview PDF is ${pdf.length} bytes, over ${PREVIEW_MAX_BYTES}; generate a document instead`, TEMPLATE_RENDER_ERROR);
      }
      return pdf.toString('base64');
    },
  };
}

export type DocumentActivities = ReturnType<typeof createDocumentActivities>;
