// The audit log: list with filters, the action catalogue, and exports run as workflows.
import { randomUUID } from 'node:crypto';
import { AuditEvent, AuditExport, StoredFile } from '../../db';
import { auditWhere } from '../../activities/audit';
import { createWithAudit } from '../../lib/audit';
import { AUDIT_ACTIONS } from '../../lib/audit-actions';
import { StartBusinessWorkflow, startBusinessWorkflow, startIntent, startOrUndo } from '../../lib/temporal';
import type { auditExportWorkflow } from '../../workflows/audit';
import { AUDIT_DOMAIN, AUDIT_TASK_QUEUE, AuditFilters } from '../../workflows/audit.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { page, paginate, queryOf, respond } from '../conventions';
import { ApiError, notFound } from '../errors';
import { presentAuditEvent, presentAuditExport } from '../presenters';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';
import { sendStoredFile } from './files';

function assertRange(f: AuditFilters): void {
  if (f.from && f.to && new Date(f.from) >= new Date(f.to)) throw new ApiError(422, 'INVALID_RANGE', '`from` must be before `to`');
}

export function auditRoutes(deps: RouteDeps): Handlers {
  async function findExport(tenantId: string, id: string): Promise<AuditExport> {
    const x = await AuditExport.findOne({ where: { id, tenantId } });
    if (!x) throw notFound(`Audit export ${id}`);
    return x;
  }

  return {
    async listAuditEvents(c, ctx) {
      const q = queryOf(c);
      const filters: AuditFilters = {
        actorId: q.str('actorId'), action: q.str('action'), entityType: q.str('entityType'), entityId: q.str('entityId'), from: q.str('from'), to: q.str('to'),
      };
      assertRange(filters);
      const result = await paginate(AuditEvent, {
        where: auditWhere(caller(ctx).tenant.id, filters), limit: q.int('limit'), cursor: q.str('cursor'), order: [['id', 'DESC']],
      });
      ctx.body = page(result, presentAuditEvent);
    },

    async listAuditActions(_c, ctx) {
      ctx.body = { items: Object.entries(AUDIT_ACTIONS).map(([action, description]) => ({ action, description })) };
    },

    async createAuditExport(c, ctx) {
      const filters: AuditFilters = (c.request.requestBody ?? {}) as Schemas['AuditFilters'];
      assertRange(filters);
      const audit = auditContext(ctx);
      const id = randomUUID();
      const workflowId = businessWorkflowId({ domain: AUDIT_DOMAIN, tenantId: audit.tenantId, entityId: id });
      const start: StartBusinessWorkflow<typeof auditExportWorkflow> = {
        workflowType: 'auditExportWorkflow', taskQueue: AUDIT_TASK_QUEUE, domain: AUDIT_DOMAIN, tenantId: audit.tenantId,
        entityType: 'audit_export', entityId: id, initialStatus: 'queued', args: [{ exportId: id, tenantId: audit.tenantId, filters }],
      };
      // The row exists before the workflow starts, so status is readable at once from Postgres; its start
      // intent is written with it.
      const x = await createWithAudit(AuditExport, { id, tenantId: audit.tenantId, status: 'queued', filters, workflowId, requestedBy: audit.actor.id },
        { ...audit, action: 'audit.export.requested', entityType: 'audit_export', entityId: id, after: { filters }, workflowId }, [startIntent(start)]);
      await startOrUndo(
        () => startBusinessWorkflow(deps.temporal.client, start),
        // Kept as failed (its audit event says it was requested).
        () => x.update({ status: 'failed', error: 'The workflow could not be started' }),
      );
      deps.metrics.workflowStarts.inc({ workflow_type: 'auditExportWorkflow' });
      respond(ctx, presentAuditExport(x), { status: 202, location: `/v1/audit-exports/${id}` });
    },

    async getAuditExport(c, ctx) {
      ctx.body = presentAuditExport(await findExport(caller(ctx).tenant.id, c.request.params.exportId as string));
    },

    async downloadAuditExport(c, ctx) {
      const tenantId = caller(ctx).tenant.id;
      const x = await findExport(tenantId, c.request.params.exportId as string);
      if (x.status !== 'ready' || !x.fileId) throw new ApiError(409, 'EXPORT_NOT_READY', `The export is ${x.status}; download it once it is ready`);
      const file = await StoredFile.findOne({ where: { id: x.fileId, tenantId } });
      if (!file) throw notFound(`File of export ${x.id}`);
      await sendStoredFile(ctx, deps.blobs, file);
    },
  };
}

