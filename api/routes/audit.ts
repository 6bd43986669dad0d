// The audit log: list with filters, the action catalogue, and exports run as workflows (domains/audit/commands.ts).
import { AuditEvent, AuditExport } from '../../db/models/audit';
import { assertRange, requestAuditExport } from '../../domains/audit/commands';
import { auditWhere } from '../../domains/audit/filters';
import { presentAuditEvent, presentAuditExport } from '../../domains/audit/presenters';
import { AUDIT_ACTIONS } from '../../lib/audit-actions';
import { ApiError } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import type { AuditFilters } from '../../workflows/audit.api';
import { accepted, downloadWhenReady } from '../async-jobs';
import { page, paginate } from '../conventions';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function auditRoutes(deps: RouteDeps) {
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
      const x = await requestAuditExport(deps, commandCaller(ctx), body ?? {});
      accepted(ctx, presentAuditExport(x), `/v1/audit-exports/${x.id}`);
    },

    async getAuditExport({ params }, ctx) {
      ctx.body = presentAuditExport(await findInTenant(AuditExport, caller(ctx).tenant.id, params.exportId, 'Audit export'));
    },

    async downloadAuditExport({ params }, ctx) {
      const x = await findInTenant(AuditExport, caller(ctx).tenant.id, params.exportId, 'Audit export');
      await downloadWhenReady(ctx, deps.blobs, x, () => new ApiError(409, 'EXPORT_NOT_READY', `The export is ${x.status}; download it once it is ready`));
    },
  } satisfies RouteHandlers;
}
