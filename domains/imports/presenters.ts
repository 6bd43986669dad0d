// Import runs, rejections and mapping templates as the API answers them.
import type { ImportRun, ImportTemplate, ImportTemplateVersion } from '../../db/models/imports';
import type { Schemas } from '../schemas';
import type { RejectionRow } from './rejections';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const presentImport = (r: ImportRun): Schemas['ImportRun'] => ({
  id: r.id, target: r.target, fileId: r.fileId, fileName: r.fileName, templateId: r.templateId, templateVersion: r.templateVersion,
  mergeStrategy: r.mergeStrategy, dryRun: r.dryRun, onRowError: r.onRowError, phase: r.phase,
  counts: { read: r.rowsRead, valid: r.rowsValid, rejected: r.rowsRejected, created: r.rowsCreated, updated: r.rowsUpdated, unchanged: r.rowsUnchanged, skipped: r.rowsSkipped },
  detected: r.detected ? { format: r.detected.format, encoding: r.detected.encoding, delimiter: r.detected.delimiter, headerRow: r.detected.headerRow, header: r.detected.header, ...(r.detected.sheet ? { sheet: r.detected.sheet } : {}) } : null,
  error: r.error ? { code: r.error.code, message: r.error.message, ...(r.error.details && typeof r.error.details === 'object' ? { details: r.error.details as Record<string, unknown> } : {}) } : null,
  createdBy: r.createdBy, createdAt: r.createdAt.toISOString(), startedAt: iso(r.startedAt), finishedAt: iso(r.finishedAt), revertedAt: iso(r.revertedAt),
  revert: presentRevert(r),
});

/** The last revert asked for; one reverted before reverts ran as workflows (0031) shows without its counts. */
function presentRevert(r: ImportRun): Schemas['ImportRun']['revert'] {
  const requestedAt = r.revertRequestedAt ?? r.revertedAt;
  if (!requestedAt) return null;
  const outcome = r.revertOutcome;
  const error = r.revertedAt ? undefined : outcome?.error;
  return {
    status: r.revertedAt ? 'reverted' : error ? 'refused' : 'running',
    requestedAt: requestedAt.toISOString(), requestedBy: r.revertRequestedBy ?? r.revertedBy,
    deleted: outcome && !outcome.error ? outcome.deleted : null, restored: outcome && !outcome.error ? outcome.restored : null,
    error: error ? { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) } : null,
  };
}

export const presentRejection = (r: RejectionRow): Schemas['ImportRejection'] => ({
  row: r.row, column: r.column, code: r.code as Schemas['ImportRejection']['code'], message: r.message, raw: r.raw,
});

export const presentTemplate = (t: ImportTemplate | (ImportTemplateVersion & { id: string; updatedAt?: Date })): Schemas['ImportTemplate'] => ({
  id: t.id, name: t.name, version: t.version, target: t.target as Schemas['ImportTemplate']['target'], source: t.source as Schemas['ImportTemplate']['source'],
  columns: t.columns as Schemas['ImportTemplate']['columns'], keyField: t.keyField, mergeStrategy: t.mergeStrategy,
  createdAt: t.createdAt.toISOString(), updatedAt: (t.updatedAt ?? t.createdAt).toISOString(),
});
