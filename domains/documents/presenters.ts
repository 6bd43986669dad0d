// Document templates, documents and batches → API JSON.
import type { Document, DocumentBatch, TemplateParts, TemplateSettings } from '../../db/models/documents';
import type { Schemas } from '../schemas';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export interface TemplateLike {
  id: string;
  code: string;
  name: string;
  description: string | null;
  settings: TemplateSettings;
  parts: TemplateParts;
  version: number;
  createdAt: Date;
  updatedAt?: Date;
}

export const presentDocumentTemplate = (t: TemplateLike): Schemas['DocumentTemplate'] => ({
  id: t.id, code: t.code, name: t.name, description: t.description, paperSize: t.settings.paperSize, orientation: t.settings.orientation,
  margins: t.settings.margins, variables: t.settings.variables, parts: t.parts, version: t.version,
  createdAt: t.createdAt.toISOString(), updatedAt: (t.updatedAt ?? t.createdAt).toISOString(),
});

export const presentDocument = (d: Document): Schemas['Document'] => ({
  id: d.id, status: d.status, templateId: d.templateId, templateCode: d.templateCode, templateVersion: d.templateVersion, output: d.output,
  fileName: d.fileName, objectType: d.objectType, objectId: d.objectId, batchId: d.batchId, error: d.error ?? null, fileId: d.fileId ?? null,
  contentHash: d.contentHash ?? null, downloadUrl: d.status === 'ready' ? `/v1/documents/${d.id}/content` : null, workflowId: d.workflowId,
  createdAt: d.createdAt.toISOString(), completedAt: iso(d.completedAt),
});

export const presentDocumentBatch = (b: DocumentBatch): Schemas['DocumentBatch'] => ({
  id: b.id, status: b.status === 'failed' ? 'ready' : b.status, templateId: b.templateId, templateVersion: b.templateVersion, output: b.output,
  total: b.total, done: b.done, failed: b.failed,
  progress: b.status === 'ready' ? 1 : Math.round(((b.done + b.failed) / Math.max(1, b.total)) * 1000) / 1000,
  downloadUrl: b.status === 'ready' ? `/v1/document-batches/${b.id}/download` : null, workflowId: b.workflowId,
  createdAt: b.createdAt.toISOString(), completedAt: iso(b.completedAt),
});
