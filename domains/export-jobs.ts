// Exports run as workflows (the audit log's, the subscribers'): one way to request them and one way to answer their
// status. The row is written with its audit event and its start intent in one statement, so it is readable (queued)
// before the workflow runs, and a start the API never made is the start reconciler's.
import { randomUUID } from 'node:crypto';
import type { Model, ModelStatic } from 'sequelize';
import type { ExportJobModel } from '../db/models/export-jobs';
import type { AuditAction } from '../lib/audit-actions';
import { createWithAudit } from '../lib/audit';
import { StartBusinessWorkflow, startBusinessWorkflow, startIntent, startOrUndo } from '../lib/temporal';
import { businessWorkflowId } from '../workflows/search-attributes';
import { auditBy, Caller, CommandDeps } from './command';

/** What an export's row holds (audit_exports, subscriber_exports): the fields of ExportJobModel. */
export type ExportJob<F> = Pick<ExportJobModel<never, F>, 'id' | 'tenantId' | 'status' | 'filters' | 'totalRows' | 'rowsWritten' | 'fileId' | 'error'
  | 'workflowId' | 'requestedBy' | 'completedAt' | 'createdAt'>;

export interface ExportKind {
  model: ModelStatic<Model>;
  /** Its workflow's business-id domain, type and queue. */
  domain: string;
  workflowType: string;
  taskQueue: string;
  /** Its audit entity type and the action that records a request. */
  entityType: string;
  requested: AuditAction;
  /** The patches its workflow's code has, named in every input (workflows/patches.ts). */
  patches: string[];
}

/** Starts an export of what `filters` pick; its workflow receives `{ exportId, tenantId, filters, patches }`. */
export async function requestExport<F extends object, M extends Model & ExportJob<F>>(deps: CommandDeps, c: Caller, kind: ExportKind, filters: F): Promise<M> {
  const id = randomUUID();
  const workflowId = businessWorkflowId({ domain: kind.domain, tenantId: c.tenantId, entityId: id });
  const start: StartBusinessWorkflow<(input: { exportId: string; tenantId: string; filters: F; patches: string[] }) => Promise<unknown>> = {
    workflowType: kind.workflowType, taskQueue: kind.taskQueue, domain: kind.domain, tenantId: c.tenantId,
    entityType: kind.entityType, entityId: id, initialStatus: 'queued', args: [{ exportId: id, tenantId: c.tenantId, filters, patches: kind.patches }],
  };
  const x = await createWithAudit(kind.model as unknown as ModelStatic<M>, { id, tenantId: c.tenantId, status: 'queued', filters, workflowId, requestedBy: c.actor.id } as never,
    { ...auditBy(c), action: kind.requested, entityType: kind.entityType, entityId: id, after: { filters }, workflowId }, [startIntent(start)]);
  await startOrUndo(
    () => startBusinessWorkflow(deps.temporal.client, start),
    // Kept as failed (its audit event says it was requested).
    () => x.update({ status: 'failed', error: 'The workflow could not be started' } as never),
  );
  deps.metrics.workflowStarts.inc({ workflow_type: kind.workflowType });
  return x;
}

/** An export's status as the API answers it; `download` is where its file is once it is ready. */
export function presentExport<F>(x: ExportJob<F>, download: string) {
  const progress = x.status === 'ready' ? 1 : x.totalRows ? Math.min(1, x.rowsWritten / x.totalRows) : 0;
  return {
    id: x.id, status: x.status, filters: x.filters, totalRows: x.totalRows, rowsWritten: x.rowsWritten,
    progress: Math.round(progress * 1000) / 1000, fileId: x.fileId, downloadUrl: x.status === 'ready' ? download : null,
    error: x.error, workflowId: x.workflowId, createdAt: x.createdAt.toISOString(), completedAt: x.completedAt ? x.completedAt.toISOString() : null,
  };
}
