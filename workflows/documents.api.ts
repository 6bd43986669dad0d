// Shared definitions of the documents domain's workflows, imported by the API, the worker and the workflows.
import type { BatchResume } from './batch';
import { CANCELLED_WRITE_PATCH } from './patches';

export const DOCUMENTS_TASK_QUEUE = 'docket-documents';
export const DOCUMENTS_DOMAIN = 'documents';
export const DOCUMENT_BATCHES_DOMAIN = 'document-batches';
export const DOCUMENT_PREVIEWS_DOMAIN = 'document-previews';

/** The ApplicationFailure type of a template that cannot render (strict variable missing, limit hit): never retried. */
export const TEMPLATE_RENDER_ERROR = 'TemplateRenderError';

/**
 * A batch whose run fails (a chunk, markBatchRunning or finishBatch gave up) writes its end as a cancelled one does,
 * with the failure's message, before the run fails; batches that failed before it left their row `running`, and
 * replay so.
 */
export const BATCH_FAILED_WRITE_PATCH = 'document-batch-failed-write';

/**
 * The patches the API's code has, named in every document job's and batch's input (workflows/patches.ts). A batch
 * started with CANCELLED_WRITE_PATCH also waits, when cancelled in Temporal, for its running chunk to stop before it
 * writes the batch's end (its chunk activity's cancellation type is chosen when the batch starts).
 */
export const DOCUMENT_PATCHES = [CANCELLED_WRITE_PATCH, BATCH_FAILED_WRITE_PATCH];

export interface DocumentJobInput {
  tenantId: string;
  documentId: string;
  /** The patches the starting code had (DOCUMENT_PATCHES). */
  patches?: string[];
}

export interface DocumentJobResult {
  status: 'ready' | 'failed';
  fileId?: string;
  error?: string;
}

export interface BatchInput {
  tenantId: string;
  batchId: string;
  /** Items rendered per activity call: progress is written after each chunk. */
  chunkSize: number;
  /** Set by continue-as-new: the batch was already marked running. */
  resumed?: boolean;
  /** Set by continue-as-new: where the batch's chunks stand (the batch kit's resume state). */
  batch?: BatchResume<number>;
  /** The patches the starting code had (DOCUMENT_PATCHES), handed on by continue-as-new. */
  patches?: string[];
}

/** A chunk of a batch: from after the batch index `cursor` (null or absent: from the first unfinished item). */
export interface BatchChunkInput extends Omit<BatchInput, 'batch'> {
  cursor?: number | null;
}

/** What a chunk reports; `cursor` and `done` are absent from results recorded before the batch kit. */
export interface BatchChunkResult {
  remaining: number;
  cursor?: number | null;
  done?: boolean;
}

export interface BatchResult {
  status: 'ready';
  done: number;
  failed: number;
}

export interface PreviewInput {
  tenantId: string;
  templateId: string;
  version: number;
  data: Record<string, unknown>;
}
