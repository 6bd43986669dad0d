// Documents: versioned HTML templates, PDF jobs, batches and previews on the workers' Chromium pool.
import { createDocumentActivities } from '../../activities/documents';
import { documentRoutes } from '../../api/routes/documents';
import { initDocumentModels } from '../../db/models/documents';
import { DOCUMENTS_TASK_QUEUE } from '../../workflows/documents.api';
import { defineDomain } from '../module';

export const documents = defineDomain({
  name: 'documents',
  models: initDocumentModels,
  queues: { documents: DOCUMENTS_TASK_QUEUE },
  activities: createDocumentActivities,
  attempts: { renderDocument: 5, renderPreview: 5, renderBatchChunk: 50 },
  startIntents: {
    documentWorkflow: { table: 'documents', entityType: 'document', waiting: "status = 'queued'" },
    documentBatchWorkflow: { table: 'document_batches', entityType: 'document_batch', waiting: "status = 'queued'" },
  },
  routes: documentRoutes,
});
