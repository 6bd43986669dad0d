// Audit: the audit log and its exports (a workflow on its own queue).
import { createAuditActivities } from '../../activities/audit';
import { auditRoutes } from '../../api/routes/audit';
import { initAuditModels } from '../../db/models/audit';
import { AUDIT_TASK_QUEUE } from '../../workflows/audit.api';
import { defineDomain } from '../module';

export const audit = defineDomain({
  name: 'audit',
  models: initAuditModels,
  queues: { audit: AUDIT_TASK_QUEUE },
  activities: createAuditActivities,
  attempts: { writeAuditExport: 20, writeAuditExportChunk: 20, finishAuditExport: 20 },
  startIntents: { auditExportWorkflow: { table: 'audit_exports', entityType: 'audit_export', waiting: "status = 'queued'" } },
  routes: auditRoutes,
});
