// Audit activities: the export writes its CSV chunk by chunk on the batch kit (pages by id cursor, resumed
// from the heartbeat), then stores it and marks the export ready.
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { stringify } from 'csv-stringify/sync';
import { Op, WhereOptions } from 'sequelize';
import { AuditEvent, AuditExport } from '../db';
import { updateWithAudit } from '../lib/audit';
import { runChunk } from '../lib/batch';
import { BlobStore } from '../lib/blob-store';
import { storeLocalFile } from '../lib/files';
import type { AuditExportInput, AuditFilters, ExportCursor } from '../workflows/audit.api';
import type { ChunkReport } from '../workflows/batch';

export interface AuditActivityDeps {
  blobs: BlobStore;
  /** Rows per page: bounded memory whatever the size of the log. */
  exportPageSize?: number;
  /** Pause between pages, to spare the database during big exports. */
  exportPagePauseMs?: number;
}

export const AUDIT_CSV_COLUMNS = ['id', 'created_at', 'actor_type', 'actor_id', 'action', 'entity_type', 'entity_id', 'request_id', 'workflow_id', 'before', 'after'];

/** The one translation of audit filters to SQL, shared by the list endpoint and the export. */
export function auditWhere(tenantId: string, f: AuditFilters): WhereOptions<AuditEvent> {
  const where: Record<string | symbol, unknown> = { tenantId };
  if (f.actorId) where.actorId = f.actorId;
  if (f.action) where.action = f.action;
  if (f.entityType) where.entityType = f.entityType;
  if (f.entityId) where.entityId = f.entityId;
  if (f.from || f.to) {
    where.createdAt = { ...(f.from ? { [Op.gte]: new Date(f.from) } : {}), ...(f.to ? { [Op.lt]: new Date(f.to) } : {}) };
  }
  return where as WhereOptions<AuditEvent>;
}

function csvRow(e: AuditEvent): unknown[] {
  return [e.id, e.createdAt.toISOString(), e.actorType, e.actorId, e.action, e.entityType, e.entityId, e.requestId, e.workflowId,
    e.before === null ? '' : JSON.stringify(e.before), e.after === null ? '' : JSON.stringify(e.after)];
}

export function createAuditActivities(deps: AuditActivityDeps) {
  const pageSize = deps.exportPageSize ?? 2000;
  const system = { type: 'system' as const, id: null };
  const scratchOf = (input: AuditExportInput) => path.join(deps.blobs.scratchDir, `audit-export-${input.exportId}.csv`);

  /**
   * Appends pages of events to the export's scratch CSV from `from` (or the cursor the last attempt
   * heartbeated), for at most `maxMs`. The file is shared by the workers that share the store, and is cut
   * back to the cursor's byte count before writing, so pages written after the last heartbeat the server
   * received are written again, never twice.
   */
  async function writeChunk(input: AuditExportInput, from: ExportCursor | null, maxMs?: number): Promise<ChunkReport<ExportCursor>> {
    const scratch = scratchOf(input);
    await fs.mkdir(deps.blobs.scratchDir, { recursive: true });
    let file: fs.FileHandle | undefined;
    try {
      const report = await runChunk<ExportCursor>({
        from, maxMs,
        async start(cursor) {
          // Resume only if the partial file still holds what the cursor promises.
          const size = await fs.stat(scratch).then((s) => s.size, () => -1);
          if (cursor && size >= cursor.bytes) {
            file = await fs.open(scratch, 'r+');
            await file.truncate(cursor.bytes);
            return cursor;
          }
          file = await fs.open(scratch, 'w');
          const header = Buffer.from(stringify([AUDIT_CSV_COLUMNS]));
          await file.write(header, 0, header.length, 0);
          return { lastId: null, rows: 0, bytes: header.length };
        },
        async page(cursor) {
          const at = cursor!;
          const where = auditWhere(input.tenantId, input.filters) as Record<string | symbol, unknown>;
          if (at.lastId) where.id = { [Op.gt]: at.lastId };
          const page = await AuditEvent.findAll({ where, order: [['id', 'ASC']], limit: pageSize });
          if (page.length === 0) return { cursor: at, done: true };
          const chunk = Buffer.from(stringify(page.map(csvRow)));
          await file!.write(chunk, 0, chunk.length, at.bytes);
          const next = { lastId: page[page.length - 1].id, rows: at.rows + page.length, bytes: at.bytes + chunk.length };
          if (page.length < pageSize) return { cursor: next, done: true };
          if (deps.exportPagePauseMs) await sleep(deps.exportPagePauseMs);
          return { cursor: next, done: false };
        },
        async progress(cursor) {
          await AuditExport.update({ rowsWritten: cursor!.rows }, { where: { id: input.exportId, tenantId: input.tenantId } });
        },
      });
      await file!.sync();
      return report;
    } finally {
      await file?.close();
    }
  }

  /** Stores the finished CSV (once: under the export's origin key), then removes the scratch file. */
  async function storeExport(input: AuditExportInput): Promise<string> {
    const scratch = scratchOf(input);
    const stored = await storeLocalFile(deps.blobs, {
      tenantId: input.tenantId, filename: `audit-export-${input.exportId}.csv`, contentType: 'text/csv',
      createdBy: null, originKey: `audit-export:${input.exportId}`,
    }, scratch);
    await fs.rm(scratch, { force: true });
    return stored.id;
  }

  /** The export is ready: its row and its audit event, in one transaction. */
  async function markReady(input: AuditExportInput, fileId: string, rows: number): Promise<void> {
    await updateWithAudit(AuditExport, { status: 'ready', fileId, rowsWritten: rows, completedAt: new Date() }, { id: input.exportId, tenantId: input.tenantId }, {
      tenantId: input.tenantId, actor: system, action: 'audit.export.completed', entityType: 'audit_export',
      entityId: input.exportId, after: { rows, fileId },
      workflowId: Context.current().info.workflowExecution?.workflowId, eventKey: `audit-export:${input.exportId}:completed`,
    });
  }

  return {
    async markAuditExportRunning(input: AuditExportInput): Promise<void> {
      const total = await AuditEvent.count({ where: auditWhere(input.tenantId, input.filters) });
      await AuditExport.update({ status: 'running', totalRows: total }, { where: { id: input.exportId, tenantId: input.tenantId, status: ['queued', 'running'] } });
    },

    /** One chunk of the export (the batch kit's chunk activity): pages for up to 10 s, then reports. */
    async writeAuditExportChunk(input: AuditExportInput & { cursor: ExportCursor | null }): Promise<ChunkReport<ExportCursor>> {
      return writeChunk(input, input.cursor);
    },

    /** Stores the CSV the chunks wrote and marks the export ready; a retry finds the stored file. */
    async finishAuditExport(input: AuditExportInput & { cursor: ExportCursor }): Promise<{ fileId: string; rows: number }> {
      const fileId = await storeExport(input);
      await markReady(input, fileId, input.cursor.rows);
      return { fileId, rows: input.cursor.rows };
    },

    /** Exports started before the batch kit (whose histories call one writer): every page in one activity. */
    async writeAuditExport(input: AuditExportInput): Promise<{ fileId: string; rows: number }> {
      const report = await writeChunk(input, null, Infinity);
      return { fileId: await storeExport(input), rows: report.cursor!.rows };
    },

    /** Exports started before the batch kit mark themselves ready with this. */
    async completeAuditExport(input: AuditExportInput & { fileId: string; rows: number }): Promise<void> {
      await markReady(input, input.fileId, input.rows);
    },

    async failAuditExport(input: AuditExportInput & { error: string }): Promise<void> {
      await updateWithAudit(AuditExport, { status: 'failed', error: input.error, completedAt: new Date() }, { id: input.exportId, tenantId: input.tenantId }, {
        tenantId: input.tenantId, actor: system, action: 'audit.export.failed', entityType: 'audit_export',
        entityId: input.exportId, after: { error: input.error },
        workflowId: Context.current().info.workflowExecution?.workflowId, eventKey: `audit-export:${input.exportId}:failed`,
      });
    },
  };
}

export type AuditActivities = ReturnType<typeof createAuditActivities>;
