// Shared definitions of the audit domain's workflows, imported by the API, the worker and the workflow.
import type { BatchResume } from './batch';

export const AUDIT_TASK_QUEUE = 'docket-audit';
export const AUDIT_DOMAIN = 'audit-export';

export interface AuditFilters {
  actorId?: string;
  action?: string;
  entityType?: string;
  entityId?: string;
  from?: string;
  to?: string;
}

export interface AuditExportInput {
  exportId: string;
  tenantId: string;
  filters: AuditFilters;
  /** Set by continue-as-new: where the export's chunks stand (the batch kit's resume state). */
  batch?: BatchResume<ExportCursor>;
}

/** Where an export's CSV stands: the last event written, rows and bytes so far. */
export interface ExportCursor {
  lastId: string | null;
  rows: number;
  bytes: number;
}

export interface AuditExportResult {
  status: 'ready' | 'failed';
  rows: number;
  fileId?: string;
  error?: string;
}
