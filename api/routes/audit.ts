// The audit log: list with filters, the action catalogue, and exports run as workflows.
import { randomUUID } from 'node:crypto';
import { AuditEvent, AuditExport } from '../../db/models/audit';
import { StoredFile } from '../../db/models/files';
import { auditWhere } from '../../domains/audit/filters';
import { createWithAudit } from '../../lib/audit';
import { AUDIT_ACTIONS } from '../../lib/audit-actions';
import { startBusinessWorkflow, startOrUndo } from '../../lib/temporal';
import type { auditExportWorkflow } from '../../workflows/audit';
import { AUDIT_DOMAIN, AUDIT_TASK_QUEUE, AuditFilters } from '../../workflows/audit.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { page, paginate, respond } from '../conventions';
import { ApiError, notFound } from '../errors';
import { presentAuditEvent, presentAuditExport } from '../../domains/audit/presenters';
import { auditContext, caller, RouteDeps, RouteHandlers } from '../types';
import { sendStoredFile } from '../downloads';

function assertRange(f: AuditFilters): void {
  if (f.from && f.to && new Date(f.from) >= new Date(f.to)) throw new ApiError(422, 'INVALID_RANGE', '`from` must be before `to`');
}

export function auditRoutes(deps: RouteDeps) {
  async function findExport(tenantId: string, id: string): Promise<AuditExport> {
    const x = await AuditExport.findOne({ where: { id, tenantId } });
    if (!x) throw notFound(`Audit export ${id}`);
    return x;
  }

  return {
    async listAuditEvents({ query }, ctx) {
      const filters: AuditFilters = {
        actorId: query.actorId, action: query.action, entityType: query.entityType, entityId: query.entityId, from: query.from, to: query.to,
      };
      assertRange(filters);
      const result = await paginate(AuditEvent, {
        where: auditWhere(caller(ctx).tenant.id, filters), limit: query.limit, cursor: query.cursor, order: [['id', 'DESC']],
      });
      ctx.body = page(result, presentAuditEvent);
    },

    async listAuditActions(_input, ctx) {
      ctx.body = { items: Object.entries(AUDIT_ACTIONS).map(([action, description]) => ({ action, description })) };
    },

    async createAuditExport({ body }, ctx) {
      const filters: AuditFilters = body ?? {};
      assertRange(filters);
      const audit = auditContext(ctx);
      const id = randomUUID();
      const workflowId = businessWorkflowId({ domain: AUDIT_DOMAIN, tenantId: audit.tenantId, entityId: id });
      // The row exists before the workflow starts, so status is readable at once from Postgres.
      const x = await createWithAudit(AuditExport, { id, tenantId: audit.tenantId, status: 'queued', filters, workflowId, requestedBy: audit.actor.id },
        { ...audit, action: 'audit.export.requested', entityType: 'audit_export', entityId: id, after: { filters }, workflowId });
      await startOrUndo(
        () => startBusinessWorkflow<typeof auditExportWorkflow>(deps.temporal.client, {
          workflowType: 'auditExportWorkflow', taskQueue: AUDIT_TASK_QUEUE, domain: AUDIT_DOMAIN, tenantId: audit.tenantId,
          entityType: 'audit_export', entityId: id, initialStatus: 'queued', args: [{ exportId: id, tenantId: audit.tenantId, filters }],
        }),
        // Kept as failed (its audit event says it was requested).
        () => x.update({ status: 'failed', error: 'The workflow could not be started' }),
      );
      deps.metrics.workflowStarts.inc({ workflow_type: 'auditExportWorkflow' });
      respond(ctx, presentAuditExport(x), { status: 202, location: `/v1/audit-exports/${id}` });
    },

    async getAuditExport({ params }, ctx) {
      ctx.body = presentAuditExport(await findExport(caller(ctx).tenant.id, params.exportId));
    },

    async downloadAuditExport({ params }, ctx) {
      const tenantId = caller(ctx).tenant.id;
      const x = await findExport(tenantId, params.exportId);
      if (x.status !== 'ready' || !x.fileId) throw new ApiError(409, 'EXPORT_NOT_READY', `The export is ${x.status}; download it once it is ready`);
      const file = await StoredFile.findOne({ where: { id: x.fileId, tenantId } });
      if (!file) throw notFound(`File of export ${x.id}`);
      await sendStoredFile(ctx, deps.blobs, file);
    },
  } satisfies RouteHandlers;
}

