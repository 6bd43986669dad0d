// Starting document jobs, shared by the API (POST /v1/documents) and by other domains (an approved
// purchase order): one row in `documents` (the read model) and one workflow `documents:<tenant>:<id>`.
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { Document, DocumentOutput, DocumentTemplate } from '../../db';
import type { documentWorkflow } from '../../workflows/documents';
import { DOCUMENTS_DOMAIN, DOCUMENTS_TASK_QUEUE } from '../../workflows/documents.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { AuditInput, createWithAudit, destroyWithAudit } from '../audit';
import { StartBusinessWorkflow, startBusinessWorkflow, startIntent, startOrUndo } from '../temporal';

interface DocumentRequestBase {
  tenantId: string;
  template: DocumentTemplate;
  data: Record<string, unknown>;
  output: DocumentOutput;
  fileName?: string;
  objectType?: string | null;
  objectId?: string | null;
  createdBy: string | null;
}

/**
 * Either `originKey`, a natural key: the same key never makes a second document (a retried activity, a
 * replayed hook); or `audit`, the API caller's context: the row and its `documents.document.requested`
 * event are written together.
 */
export type DocumentRequest = DocumentRequestBase & (
  | { originKey: string; audit?: never }
  | { originKey?: never; audit: Omit<AuditInput, 'action' | 'entityType' | 'entityId' | 'after' | 'workflowId'> }
);

export const defaultFileName = (code: string, output: DocumentOutput) => `${code}.${output}`;

export async function requestDocument(client: Client, r: DocumentRequest): Promise<Document> {
  const id = randomUUID();
  const values = {
    id, tenantId: r.tenantId, templateId: r.template.id, templateCode: r.template.code, templateVersion: r.template.version,
    batchId: null, batchIndex: null, output: r.output, fileName: r.fileName ?? defaultFileName(r.template.code, r.output),
    objectType: r.objectType ?? null, objectId: r.objectId ?? null, data: r.data, status: 'queued' as const,
    originKey: r.originKey ?? null, workflowId: businessWorkflowId({ domain: DOCUMENTS_DOMAIN, tenantId: r.tenantId, entityId: id }), createdBy: r.createdBy,
  };
  const requested = { tenantId: r.tenantId, action: 'documents.document.requested', entityType: 'document', entityId: id } as const;
  const startOf = (documentId: string): StartBusinessWorkflow<typeof documentWorkflow> => ({
    workflowType: 'documentWorkflow', taskQueue: DOCUMENTS_TASK_QUEUE, domain: DOCUMENTS_DOMAIN, tenantId: r.tenantId,
    entityType: 'document', entityId: documentId, initialStatus: 'queued', args: [{ tenantId: r.tenantId, documentId }],
  });
  const doc = r.originKey !== undefined
    // Asked for by an activity, which Temporal retries until this start is made: no start intent needed.
    ? (await Document.findOrCreate({ where: { tenantId: r.tenantId, originKey: r.originKey }, defaults: values }))[0]
    // One statement: no window in which the document exists but its request was never audited, or its
    // start intent not recorded.
    : await createWithAudit(Document, values, { ...r.audit, ...requested, after: { templateCode: r.template.code, templateVersion: r.template.version }, workflowId: values.workflowId }, [startIntent(startOf(id))]);
  if (doc.status === 'ready' || doc.status === 'failed') return doc;
  // A queued row without its workflow would never render (and would block its template's deletion).
  await startOrUndo(
    () => startBusinessWorkflow(client, startOf(doc.id)),
    // Never requested, then: the row goes, and with it the audit event written beside it.
    () => (r.audit ? destroyWithAudit(doc, requested) : doc.destroy()),
  );
  return doc;
}
