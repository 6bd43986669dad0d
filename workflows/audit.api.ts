// Shared definitions of the audit domain's workflows, imported by the API, the worker and the workflow.
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
}

export interface AuditExportResult {
  status: 'ready' | 'failed';
  rows: number;
  fileId?: string;
  error?: string;
}
