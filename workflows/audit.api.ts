// Shared definitions of the audit domain's workflows, imported by the API, the worker and the workflow.
import type { BatchResume } from './batch';
import { CANCELLED_WRITE_PATCH, STATUS_UPSERT_PATCH } from './patches';

export const AUDIT_TASK_QUEUE = 'docket-audit';
export const AUDIT_DOMAIN = 'audit-export';

/** Exports started before it wrote everything in one activity (writeAuditExport, 2 hours), and replay so. */
export const AUDIT_EXPORT_BATCH_KIT_PATCH = 'audit-export-batch-kit';

/**
 * markAuditExportRunning is inside the export's failure handling: cancelled in Temporal or given up, it ends the export
 * failed. Exports from before it left their row `queued` then (the run failed or was cancelled), and replay so.
 */
export const AUDIT_EXPORT_MARK_RUNNING_PATCH = 'audit-export-mark-running-handled';

/** The patches the API's code has, named in every audit export's input (workflows/patches.ts). */
export const AUDIT_EXPORT_PATCHES = [STATUS_UPSERT_PATCH, AUDIT_EXPORT_BATCH_KIT_PATCH, CANCELLED_WRITE_PATCH, AUDIT_EXPORT_MARK_RUNNING_PATCH];

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
  /** The patches the starting code had (AUDIT_EXPORT_PATCHES), handed on by continue-as-new. */
  patches?: string[];
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
