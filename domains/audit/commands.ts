// Audit commands: exporting the log (a workflow that writes a CSV into the tenant's file store).
import { randomUUID } from 'node:crypto';
import { AuditExport } from '../../db/models/audit';
import { createWithAudit } from '../../lib/audit';
import { ApiError } from '../../lib/problems';
import { StartBusinessWorkflow, startBusinessWorkflow, startIntent, startOrUndo } from '../../lib/temporal';
import type { auditExportWorkflow } from '../../workflows/audit';
import { AUDIT_DOMAIN, AUDIT_TASK_QUEUE, AuditFilters } from '../../workflows/audit.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { auditBy, Caller, CommandDeps } from '../command';

export function assertRange(f: AuditFilters): void {
  if (f.from && f.to && new Date(f.from) >= new Date(f.to)) throw new ApiError(422, 'INVALID_RANGE', '`from` must be before `to`');
}

/** Starts an export of the events matching `filters`; its row is readable (queued) before the workflow runs. */
export async function requestAuditExport(deps: CommandDeps, c: Caller, filters: AuditFilters): Promise<AuditExport> {
  assertRange(filters);
  const id = randomUUID();
  const workflowId = businessWorkflowId({ domain: AUDIT_DOMAIN, tenantId: c.tenantId, entityId: id });
  const start: StartBusinessWorkflow<typeof auditExportWorkflow> = {
    workflowType: 'auditExportWorkflow', taskQueue: AUDIT_TASK_QUEUE, domain: AUDIT_DOMAIN, tenantId: c.tenantId,
    entityType: 'audit_export', entityId: id, initialStatus: 'queued', args: [{ exportId: id, tenantId: c.tenantId, filters }],
  };
  // The row exists before the workflow starts, so status is readable at once from Postgres; its start
  // intent is written with it.
  const x = await createWithAudit(AuditExport, { id, tenantId: c.tenantId, status: 'queued', filters, workflowId, requestedBy: c.actor.id },
    { ...auditBy(c), action: 'audit.export.requested', entityType: 'audit_export', entityId: id, after: { filters }, workflowId }, [startIntent(start)]);
  await startOrUndo(
    () => startBusinessWorkflow(deps.temporal.client, start),
    // Kept as failed (its audit event says it was requested).
    () => x.update({ status: 'failed', error: 'The workflow could not be started' }),
  );
  deps.metrics.workflowStarts.inc({ workflow_type: 'auditExportWorkflow' });
  return x;
}
