// Profiling aid, not production code. Preload with
//   BENCH_API_NODE_ARGS="--require ./bench/experiments/one-statement-export.cjs" npm run bench -- foundation
// to answer "what if POST /v1/audit-exports wrote its two rows in one statement?". The handler in
// api/routes/audit.ts runs BEGIN, INSERT audit_exports, INSERT audit_events, COMMIT through Sequelize
// (4 round trips, model instances, a managed transaction); this replaces it with the same rows written
// by one INSERT … RETURNING with a data-modifying CTE (atomic on its own), then the same workflow start.
// Skipped for brevity: the 503 path when the start fails (the benchmark never hits it).
'use strict';
const Module = require('node:module');
const { randomUUID } = require('node:crypto');

const found = {};
const WANTED = ['auditContext', 'respond', 'presentAuditExport', 'businessWorkflowId', 'startBusinessWorkflow', 'AuditExport'];

const SQL = `WITH x AS (
  INSERT INTO audit_exports (id, tenant_id, status, filters, rows_written, workflow_id, requested_by, created_at, updated_at)
  VALUES ($1, $2, 'queued', $3::jsonb, 0, $4, $5, now(), now()) RETURNING *
), e AS (
  INSERT INTO audit_events (tenant_id, actor_type, actor_id, action, entity_type, entity_id, after, request_id, workflow_id, created_at)
  VALUES ($2, $6, $5, 'audit.export.requested', 'audit_export', $1, $7::jsonb, $8, $4, now())
)
SELECT * FROM x`;

const load = Module._load;
Module._load = function patchedLoad(...args) {
  const exports = load.apply(this, args);
  if (!exports || (typeof exports !== 'object' && typeof exports !== 'function')) return exports;
  for (const name of WANTED) if (!found[name] && exports[name]) found[name] = exports[name];
  if (typeof exports.auditRoutes === 'function' && !exports.auditRoutes.__oneStatement) {
    const auditRoutes = exports.auditRoutes;
    const patched = function (deps) {
      const handlers = auditRoutes(deps);
      handlers.createAuditExport = async (c, ctx) => {
        const filters = c.request.requestBody ?? {};
        const audit = found.auditContext(ctx);
        const id = randomUUID();
        const workflowId = found.businessWorkflowId({ domain: 'audit-export', tenantId: audit.tenantId, entityId: id });
        const [x] = await deps.sequelize.query(SQL, {
          type: 'SELECT', model: found.AuditExport, mapToModel: true,
          bind: [id, audit.tenantId, JSON.stringify(filters), workflowId, audit.actor.id, audit.actor.type, JSON.stringify({ filters }), audit.requestId ?? null],
        });
        await found.startBusinessWorkflow(deps.temporal.client, {
          workflowType: 'auditExportWorkflow', taskQueue: 'docket-audit', domain: 'audit-export', tenantId: audit.tenantId,
          entityType: 'audit_export', entityId: id, initialStatus: 'queued', args: [{ exportId: id, tenantId: audit.tenantId, filters }],
        });
        deps.metrics.workflowStarts.inc({ workflow_type: 'auditExportWorkflow' });
        ctx.set('X-Bench-Experiment', 'one-statement-export');
        found.respond(ctx, found.presentAuditExport(x), { status: 202, location: `/v1/audit-exports/${id}` });
      };
      return handlers;
    };
    patched.__oneStatement = true;
    // Hand the importer a copy whose auditRoutes is ours (tsx/esbuild exports are read-only getters).
    return Object.assign({}, exports, { auditRoutes: patched });
  }
  return exports;
};
