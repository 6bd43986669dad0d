// Audit commands: exporting the log (a workflow that writes a CSV into the tenant's file store).
import { AuditExport } from '../../db/models/audit';
import { ApiError } from '../../lib/problems';
import { AUDIT_DOMAIN, AUDIT_EXPORT_PATCHES, AUDIT_TASK_QUEUE, AuditFilters } from '../../workflows/audit.api';
import type { Caller, CommandDeps } from '../command';
import { ExportKind, requestExport } from '../export-jobs';

export function assertRange(f: AuditFilters): void {
  if (f.from && f.to && new Date(f.from) >= new Date(f.to)) throw new ApiError(422, 'INVALID_RANGE', '`from` must be before `to`');
}

export const AUDIT_EXPORT: ExportKind = {
  model: AuditExport, domain: AUDIT_DOMAIN, workflowType: 'auditExportWorkflow', taskQueue: AUDIT_TASK_QUEUE,
  entityType: 'audit_export', requested: 'audit.export.requested', patches: AUDIT_EXPORT_PATCHES,
};

/** Starts an export of the events matching `filters`; its row is readable (queued) before the workflow runs. */
export async function requestAuditExport(deps: CommandDeps, c: Caller, filters: AuditFilters): Promise<AuditExport> {
  assertRange(filters);
  return requestExport<AuditFilters, AuditExport>(deps, c, AUDIT_EXPORT, filters);
}
