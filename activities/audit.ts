// Audit activities: the export writes its CSV chunk by chunk on the batch kit (pages by id cursor, resumed
// from the heartbeat, each page kept in Postgres so any worker on any host goes on), then stores it and marks
// the export ready.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { stringify } from 'csv-stringify/sync';
import { Op, QueryTypes } from 'sequelize';
import { AuditEvent, AuditExport } from '../db/models/audit';
import { unfinishedExport } from '../db/models/export-jobs';
import { StoredFile } from '../db/models/files';
import { auditWhere } from '../domains/audit/filters';
import { updateWithAudit } from '../lib/audit';
import { runChunk } from '../lib/batch';
import { BlobStore } from '../lib/blob-store';
import { storeStream } from '../lib/files';
import type { AuditExportInput, ExportCursor } from '../workflows/audit.api';
import type { ChunkReport } from '../workflows/batch';

export interface AuditActivityDeps {
  blobs: BlobStore;
  /** Rows per page: bounded memory whatever the size of the log. */
  exportPageSize?: number;
  /** Pause between pages, to spare the database during big exports. */
  exportPagePauseMs?: number;
}

export const AUDIT_CSV_COLUMNS = ['id', 'created_at', 'actor_type', 'actor_id', 'action', 'entity_type', 'entity_id', 'request_id', 'workflow_id', 'before', 'after'];

function csvRow(e: AuditEvent): unknown[] {
  return [e.id, e.createdAt.toISOString(), e.actorType, e.actorId, e.action, e.entityType, e.entityId, e.requestId, e.workflowId,
    e.before === null ? '' : JSON.stringify(e.before), e.after === null ? '' : JSON.stringify(e.after)];
}

export function createAuditActivities(deps: AuditActivityDeps) {
  const pageSize = deps.exportPageSize ?? 2000;
  const system = { type: 'system' as const, id: null };
  const sequelize = () => AuditEvent.sequelize!;
  const header = Buffer.from(stringify([AUDIT_CSV_COLUMNS]));

  /**
   * Writes pages of events from `from` (or the cursor the last attempt heartbeated), for at most `maxMs`. Each page
   * is one row of audit_export_parts, keyed by the rows before it, so whichever worker, on whichever host, runs the
   * next page or the retry finds what the cursor promises. Pages written after the last heartbeat the server
   * received are written again, over themselves; parts beyond the cursor (from such an attempt) are dropped first.
   */
  async function writeChunk(input: AuditExportInput, from: ExportCursor | null, maxMs?: number): Promise<ChunkReport<ExportCursor>> {
    return runChunk<ExportCursor>({
      from, maxMs,
      async start(cursor) {
        // Resume only if the parts hold exactly what the cursor promises (not if they were lost, or were written
        // by a release that kept them in a file on one host): else start over.
        const resume = cursor && await partsHold(input.exportId, cursor) ? cursor : null;
        await sequelize().query('DELETE FROM audit_export_parts WHERE export_id = $1 AND from_rows >= $2', { bind: [input.exportId, resume?.rows ?? 0] });
        return resume ?? { lastId: null, rows: 0, bytes: header.length };
      },
      async page(cursor) {
        const at = cursor!;
        const where = auditWhere(input.tenantId, input.filters) as Record<string | symbol, unknown>;
        if (at.lastId) where.id = { [Op.gt]: at.lastId };
        const page = await AuditEvent.findAll({ where, order: [['id', 'ASC']], limit: pageSize });
        if (page.length === 0) return { cursor: at, done: true };
        const data = Buffer.from(stringify(page.map(csvRow)));
        const next = { lastId: page[page.length - 1].id, rows: at.rows + page.length, bytes: at.bytes + data.length };
        // Only while the export runs, holding its row: an export marked failed (cancelled from Temporal while this
        // page was read) takes no part after failAuditExport dropped them.
        await sequelize().query(`INSERT INTO audit_export_parts (export_id, from_rows, to_rows, last_id, data)
          SELECT id, $2::integer, $3::integer, $4::bigint, $5::bytea FROM audit_exports WHERE id = $1 AND status IN ('queued', 'running') FOR SHARE
          ON CONFLICT (export_id, from_rows) DO UPDATE SET to_rows = EXCLUDED.to_rows, last_id = EXCLUDED.last_id, data = EXCLUDED.data`,
        { bind: [input.exportId, at.rows, next.rows, next.lastId, data] });
        if (page.length < pageSize) return { cursor: next, done: true };
        if (deps.exportPagePauseMs) await sleep(deps.exportPagePauseMs);
        return { cursor: next, done: false };
      },
      async progress(cursor) {
        await AuditExport.update({ rowsWritten: cursor!.rows }, { where: { id: input.exportId, tenantId: input.tenantId } });
      },
    });
  }

  /**
   * Stores the finished CSV (once: under the export's origin key) — the header, then the parts in order, streamed
   * one part at a time — then drops the parts.
   */
  async function storeExport(input: AuditExportInput, cursor: ExportCursor): Promise<string> {
    const meta = {
      tenantId: input.tenantId, filename: `audit-export-${input.exportId}.csv`, contentType: 'text/csv',
      createdBy: null, originKey: `audit-export:${input.exportId}`,
    };
    let stored = await StoredFile.findOne({ where: { tenantId: input.tenantId, originKey: meta.originKey } });
    if (!stored) {
      // A Postgres crash empties the unlogged parts: a CSV short of what the chunks reported is never stored.
      if (!(await partsHold(input.exportId, cursor))) {
        throw ApplicationFailure.nonRetryable('The export\'s written pages were lost (the database restarted); request the export again', 'EXPORT_PAGES_LOST');
      }
      stored = await storeStream(deps.blobs, meta, Readable.from(csvOf(input.exportId)));
    }
    await sequelize().query('DELETE FROM audit_export_parts WHERE export_id = $1', { bind: [input.exportId] });
    return stored.id;
  }

  /** Whether the parts before `cursor` hold exactly its rows and bytes. */
  async function partsHold(exportId: string, cursor: ExportCursor): Promise<boolean> {
    const [held] = await sequelize().query<{ rows: number; bytes: string }>(`SELECT coalesce(max(to_rows), 0)::int AS rows,
        coalesce(sum(length(data)), 0)::bigint + $3 AS bytes FROM audit_export_parts WHERE export_id = $1 AND from_rows < $2`,
    { bind: [exportId, cursor.rows, header.length], type: QueryTypes.SELECT });
    return held.rows === cursor.rows && Number(held.bytes) === cursor.bytes;
  }

  async function* csvOf(exportId: string): AsyncGenerator<Buffer> {
    yield header;
    for (let after = -1; ;) {
      const [part] = await sequelize().query<{ from_rows: number; data: Buffer }>(
        'SELECT from_rows, data FROM audit_export_parts WHERE export_id = $1 AND from_rows > $2 ORDER BY from_rows LIMIT 1',
        { bind: [exportId, after], type: QueryTypes.SELECT });
      if (!part) return;
      yield part.data;
      after = part.from_rows;
    }
  }

  /**
   * The export is ready: its row and its audit event, in one transaction — unless it was marked failed meanwhile (its
   * run cancelled from Temporal while the CSV was being stored, which drops the parts under it: that file is then
   * an orphan, removed by files.orphan_purge).
   */
  async function markReady(input: AuditExportInput, fileId: string, rows: number): Promise<void> {
    await updateWithAudit(AuditExport, { status: 'ready', fileId, rowsWritten: rows, completedAt: new Date() }, unfinishedExport(input), {
      tenantId: input.tenantId, actor: system, action: 'audit.export.completed', entityType: 'audit_export',
      entityId: input.exportId, after: { rows, fileId },
      workflowId: Context.current().info.workflowExecution?.workflowId, eventKey: `audit-export:${input.exportId}:completed`,
    });
  }

  return {
    async markAuditExportRunning(input: AuditExportInput): Promise<void> {
      const total = await AuditEvent.count({ where: auditWhere(input.tenantId, input.filters) });
      await AuditExport.update({ status: 'running', totalRows: total }, { where: unfinishedExport(input) });
    },

    /** One chunk of the export (the batch kit's chunk activity): pages for up to 10 s, then reports. */
    async writeAuditExportChunk(input: AuditExportInput & { cursor: ExportCursor | null }): Promise<ChunkReport<ExportCursor>> {
      return writeChunk(input, input.cursor);
    },

    /** Stores the CSV the chunks wrote and marks the export ready; a retry finds the stored file. */
    async finishAuditExport(input: AuditExportInput & { cursor: ExportCursor }): Promise<{ fileId: string; rows: number }> {
      const fileId = await storeExport(input, input.cursor);
      await markReady(input, fileId, input.cursor.rows);
      return { fileId, rows: input.cursor.rows };
    },

    /** Exports started before the batch kit (whose histories call one writer): every page in one activity. */
    async writeAuditExport(input: AuditExportInput): Promise<{ fileId: string; rows: number }> {
      const report = await writeChunk(input, null, Infinity);
      return { fileId: await storeExport(input, report.cursor!), rows: report.cursor!.rows };
    },

    /** Exports started before the batch kit mark themselves ready with this. */
    async completeAuditExport(input: AuditExportInput & { fileId: string; rows: number }): Promise<void> {
      await markReady(input, input.fileId, input.rows);
    },

    async failAuditExport(input: AuditExportInput & { error: string }): Promise<void> {
      // Failed first, then the parts dropped: a page being written holds the row (FOR SHARE), so it either lands
      // before this update and is dropped below, or finds the export failed and writes nothing.
      // Not an export that became ready first (a cancel that came as it finished).
      await updateWithAudit(AuditExport, { status: 'failed', error: input.error, completedAt: new Date() }, unfinishedExport(input), {
        tenantId: input.tenantId, actor: system, action: 'audit.export.failed', entityType: 'audit_export',
        entityId: input.exportId, after: { error: input.error },
        workflowId: Context.current().info.workflowExecution?.workflowId, eventKey: `audit-export:${input.exportId}:failed`,
      });
      await sequelize().query('DELETE FROM audit_export_parts WHERE export_id = $1', { bind: [input.exportId] });
    },
  };
}

export type AuditActivities = ReturnType<typeof createAuditActivities>;
