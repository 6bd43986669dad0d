// Audit activities: the export writer pages through events by id cursor and resumes from its heartbeat.
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledFailure, Context } from '@temporalio/activity';
import { stringify } from 'csv-stringify/sync';
import { Op } from 'sequelize';
import { AuditEvent, AuditExport } from '../db/models/audit';
import { recordAudit } from '../lib/audit';
import { BlobStore } from '../lib/blob-store';
import { storeLocalFile } from '../lib/files';
import { auditWhere } from '../domains/audit/filters';
import type { AuditExportInput } from '../workflows/audit.api';

export interface AuditActivityDeps {
  blobs: BlobStore;
  /** Rows per page: bounded memory whatever the size of the log. */
  exportPageSize?: number;
  /** Pause between pages, to spare the database during big exports. */
  exportPagePauseMs?: number;
}

interface ExportCursor {
  lastId: string | null;
  rows: number;
  bytes: number;
}

export const AUDIT_CSV_COLUMNS = ['id', 'created_at', 'actor_type', 'actor_id', 'action', 'entity_type', 'entity_id', 'request_id', 'workflow_id', 'before', 'after'];

function csvRow(e: AuditEvent): unknown[] {
  return [e.id, e.createdAt.toISOString(), e.actorType, e.actorId, e.action, e.entityType, e.entityId, e.requestId, e.workflowId,
    e.before === null ? '' : JSON.stringify(e.before), e.after === null ? '' : JSON.stringify(e.after)];
}

export function createAuditActivities(deps: AuditActivityDeps) {
  const pageSize = deps.exportPageSize ?? 2000;
  const system = { type: 'system' as const, id: null };

  return {
    async markAuditExportRunning(input: AuditExportInput): Promise<void> {
      const total = await AuditEvent.count({ where: auditWhere(input.tenantId, input.filters) });
      await AuditExport.update({ status: 'running', totalRows: total }, { where: { id: input.exportId, tenantId: input.tenantId, status: ['queued', 'running'] } });
    },

    async writeAuditExport(input: AuditExportInput): Promise<{ fileId: string; rows: number }> {
      const ctx = Context.current();
      const scratch = path.join(deps.blobs.scratchDir, `audit-export-${input.exportId}.csv`);
      await fs.mkdir(deps.blobs.scratchDir, { recursive: true });
      let cursor = (ctx.info.heartbeatDetails as ExportCursor | undefined) ?? null;
      // Resume only if the partial file still holds what the last heartbeat promised.
      const size = await fs.stat(scratch).then((s) => s.size, () => -1);
      if (!cursor || size < cursor.bytes) cursor = null;
      const file = await fs.open(scratch, cursor ? 'r+' : 'w');
      try {
        if (cursor) await file.truncate(cursor.bytes);
        else {
          const header = stringify([AUDIT_CSV_COLUMNS]);
          await file.write(header, 0);
          cursor = { lastId: null, rows: 0, bytes: Buffer.byteLength(header) };
        }
        for (;;) {
          const where = auditWhere(input.tenantId, input.filters) as Record<string | symbol, unknown>;
          if (cursor.lastId) where.id = { [Op.gt]: cursor.lastId };
          const page = await AuditEvent.findAll({ where, order: [['id', 'ASC']], limit: pageSize });
          if (page.length === 0) break;
          const chunk = Buffer.from(stringify(page.map(csvRow)));
          await file.write(chunk, 0, chunk.length, cursor.bytes);
          cursor = { lastId: page[page.length - 1].id, rows: cursor.rows + page.length, bytes: cursor.bytes + chunk.length };
          ctx.heartbeat(cursor);
          // Cancelled (or the worker is shutting down): stop here; a retry resumes from this cursor.
          if (ctx.cancellationSignal.aborted) throw new CancelledFailure('audit export cancelled');
          await AuditExport.update({ rowsWritten: cursor.rows }, { where: { id: input.exportId, tenantId: input.tenantId } });
          if (page.length < pageSize) break;
          if (deps.exportPagePauseMs) await sleep(deps.exportPagePauseMs);
        }
        await file.sync();
      } finally {
        await file.close();
      }
      const stored = await storeLocalFile(deps.blobs, {
        tenantId: input.tenantId, filename: `audit-export-${input.exportId}.csv`, contentType: 'text/csv',
        createdBy: null, originKey: `audit-export:${input.exportId}`,
      }, scratch);
      await fs.rm(scratch, { force: true });
      return { fileId: stored.id, rows: cursor.rows };
    },

    async completeAuditExport(input: AuditExportInput & { fileId: string; rows: number }): Promise<void> {
      await AuditExport.update(
        { status: 'ready', fileId: input.fileId, rowsWritten: input.rows, completedAt: new Date() },
        { where: { id: input.exportId, tenantId: input.tenantId } },
      );
      await recordAudit({
        tenantId: input.tenantId, actor: system, action: 'audit.export.completed', entityType: 'audit_export',
        entityId: input.exportId, after: { rows: input.rows, fileId: input.fileId },
        workflowId: Context.current().info.workflowExecution?.workflowId, eventKey: `audit-export:${input.exportId}:completed`,
      });
    },

    async failAuditExport(input: AuditExportInput & { error: string }): Promise<void> {
      await AuditExport.update({ status: 'failed', error: input.error, completedAt: new Date() }, { where: { id: input.exportId, tenantId: input.tenantId } });
      await recordAudit({
        tenantId: input.tenantId, actor: system, action: 'audit.export.failed', entityType: 'audit_export',
        entityId: input.exportId, after: { error: input.error },
        workflowId: Context.current().info.workflowExecution?.workflowId, eventKey: `audit-export:${input.exportId}:failed`,
      });
    },
  };
}

export type AuditActivities = ReturnType<typeof createAuditActivities>;
