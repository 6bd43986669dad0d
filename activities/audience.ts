// Audience activities: a subscriber export writes the subscribers its filters pick to one CSV, read with one cursor in
// one snapshot and streamed into the file store (bounded memory whatever the audience's size), then marks the export
// ready. A retry (a worker killed mid-way) writes the file again from the start: nothing is stored until the whole CSV
// is, and it is stored once, under the export's origin key.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { stringify } from 'csv-stringify/sync';
import type { ClientBase } from 'pg';
import pLimit from 'p-limit';
import Cursor from 'pg-cursor';
import { Subscriber, SubscriberExport } from '../db/models/audience';
import { unfinishedExport } from '../db/models/export-jobs';
import { StoredFile } from '../db/models/files';
import { exportRules } from '../domains/audience/exports';
import { compileSegment } from '../domains/audience/segments';
import { inTransaction, withClient } from '../domains/imports/pg';
import { neutralizeFormula } from '../domains/imports/rejections';
import { updateWithAudit } from '../lib/audit';
import { heartbeating } from '../lib/batch';
import type { BlobStore } from '../lib/blob-store';
import { storeStream } from '../lib/files';
import type { SubscriberExportInput } from '../workflows/audience.api';

export interface AudienceActivityDeps {
  blobs: BlobStore;
  /** Rows read from the cursor at a time: bounded memory whatever the size of the audience. */
  exportPageSize?: number;
  /** Pause between reads, to spare the database during big exports. */
  exportPagePauseMs?: number;
}

/**
 * Exports writing at once in one worker process. Each holds a pooled connection for its snapshot and needs another for
 * its progress and its file row; with the pool's 10 connections, more at once could all wait for the second for ever.
 */
export const EXPORTS_AT_ONCE = 2;

/** More distinct attributes than this among the exported subscribers is refused (a column each would make a CSV no sheet opens well). */
export const MAX_EXPORT_ATTRIBUTE_COLUMNS = 200;

/** The columns before the attributes; `lists` holds list ids separated by spaces (an import reads it back with a split transform). */
export const SUBSCRIBER_CSV_COLUMNS = ['email', 'name', 'status', 'lists', 'created_at', 'updated_at'];

interface ExportedRow {
  email: string;
  name: string | null;
  status: string;
  attributes: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  lists: string | null;
}

export function createAudienceActivities(deps: AudienceActivityDeps) {
  const pageSize = deps.exportPageSize ?? 2000;
  const system = { type: 'system' as const, id: null };
  const workflowId = () => Context.current().info.workflowExecution?.workflowId;
  const exportSlot = pLimit(EXPORTS_AT_ONCE);

  /**
   * Writes the CSV to the file store from one read-only snapshot: the count, the attribute columns and the rows all
   * see the same subscribers. The rows come from one cursor in id order, not from pages each searched again, so the
   * read costs one scan whatever the planner's statistics say (pages by `id >` cost a sort of the rest per page
   * when they were stale, as after a large import: 67 s for 1M subscribers in `npm run bench -- imports`).
   */
  async function writeCsv(input: SubscriberExportInput, written: { rows: number }, signal: AbortSignal): Promise<StoredFile> {
    const { where, bind } = compiledFilters(input);
    return exportSlot(() => withClient(Subscriber.sequelize!, (db) => inTransaction(db, async () => {
      await db.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const { rows: [{ n }] } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM subscribers s WHERE ${where}`, bind);
      await SubscriberExport.update({ status: 'running', totalRows: n, rowsWritten: 0 }, { where: unfinishedExport(input) });
      const attributes = await attributeColumns(db, where, bind);
      const meta = {
        tenantId: input.tenantId, filename: `subscribers-${input.exportId}.csv`, contentType: 'text/csv',
        createdBy: null, originKey: `subscriber-export:${input.exportId}`,
      };
      return storeStream(deps.blobs, meta, Readable.from(csv(input, db, { where, bind }, attributes, written, signal)));
    })));
  }

  /** The filters as SQL; ones it cannot compile (the API checks them first) end the export instead of being retried. */
  function compiledFilters(input: SubscriberExportInput): { where: string; bind: unknown[] } {
    try {
      return compileSegment(exportRules(input.filters), { tenantId: input.tenantId, alias: 's' });
    } catch (err) {
      throw ApplicationFailure.nonRetryable(`The export's filters cannot be used: ${(err as Error).message}`, 'INVALID_FILTER');
    }
  }

  /** The attribute names the exported subscribers use, sorted: one column each. */
  async function attributeColumns(db: ClientBase, where: string, bind: unknown[]): Promise<string[]> {
    const { rows } = await db.query<{ k: string }>(
      `SELECT DISTINCT k FROM subscribers s CROSS JOIN LATERAL jsonb_object_keys(s.attributes) AS k WHERE ${where} ORDER BY k LIMIT ${MAX_EXPORT_ATTRIBUTE_COLUMNS + 1}`, bind);
    if (rows.length > MAX_EXPORT_ATTRIBUTE_COLUMNS) {
      throw ApplicationFailure.nonRetryable(`The subscribers use more than ${MAX_EXPORT_ATTRIBUTE_COLUMNS} distinct attributes; narrow the export with a filter`, 'EXPORT_TOO_WIDE');
    }
    return rows.map((r) => r.k);
  }

  /**
   * The CSV: a header, then the subscribers in id order with the ids of their lists, `pageSize` rows at a time from the
   * cursor; `written` counts the rows as they go. Each read is one chunk of text, so a failed read fails the stream
   * (and the store) instead of leaving it waiting.
   */
  async function* csv(input: SubscriberExportInput, db: ClientBase, q: { where: string; bind: unknown[] }, attributes: string[], written: { rows: number }, signal: AbortSignal): AsyncGenerator<string> {
    yield toCsv([[...SUBSCRIBER_CSV_COLUMNS, ...attributes.map((a) => `attributes.${a}`)]]);
    const cursor = db.query(new Cursor<ExportedRow>(`SELECT s.email, s.name, s.status, s.attributes, s.created_at, s.updated_at,
        (SELECT string_agg(m.list_id::text, ' ' ORDER BY m.list_id) FROM list_members m WHERE m.tenant_id = s.tenant_id AND m.subscriber_id = s.id) AS lists
      FROM subscribers s WHERE ${q.where} ORDER BY s.id`, q.bind));
    try {
      for (;;) {
        // An attempt Temporal gave up on (its heartbeat timed out, the workflow was cancelled) stops instead of writing on.
        signal.throwIfAborted();
        const page = await cursor.read(pageSize);
        if (page.length === 0) return;
        yield toCsv(page.map((s) => [s.email, s.name ?? '', s.status, s.lists ?? '', s.created_at.toISOString(), s.updated_at.toISOString(),
          ...attributes.map((a) => cell(s.attributes[a]))]));
        written.rows += page.length;
        await SubscriberExport.update({ rowsWritten: written.rows }, { where: unfinishedExport(input) });
        if (page.length < pageSize) return;
        if (deps.exportPagePauseMs) await sleep(deps.exportPagePauseMs);
      }
    } finally {
      // After a failed read the transaction is aborted and the close may fail too: the read's error is the one to keep.
      await cursor.close().catch(() => undefined);
    }
  }

  return {
    /** Writes and stores the CSV, then marks the export ready (its audit event once); a retry finds a stored CSV and only marks. */
    async writeSubscriberExport(input: SubscriberExportInput): Promise<{ fileId: string; rows: number }> {
      let stored = await StoredFile.findOne({ where: { tenantId: input.tenantId, originKey: `subscriber-export:${input.exportId}` } });
      let rows: number;
      if (stored) {
        rows = (await SubscriberExport.findOne({ where: { id: input.exportId, tenantId: input.tenantId }, attributes: ['rowsWritten'] }))?.rowsWritten ?? 0;
      } else {
        const written = { rows: 0 };
        // Heartbeating from the start: counting and finding the attribute columns read every matching row too.
        stored = await heartbeating((signal) => writeCsv(input, written, signal), () => ({ rows: written.rows }));
        rows = written.rows;
      }
      await updateWithAudit(SubscriberExport, { status: 'ready', fileId: stored.id, rowsWritten: rows, completedAt: new Date() }, unfinishedExport(input), {
        tenantId: input.tenantId, actor: system, action: 'audience.export.completed', entityType: 'subscriber_export',
        entityId: input.exportId, after: { rows, fileId: stored.id }, workflowId: workflowId(), eventKey: `subscriber-export:${input.exportId}:completed`,
      });
      return { fileId: stored.id, rows };
    },

    async failSubscriberExport(input: SubscriberExportInput & { error: string }): Promise<void> {
      await updateWithAudit(SubscriberExport, { status: 'failed', error: input.error, completedAt: new Date() }, unfinishedExport(input), {
        tenantId: input.tenantId, actor: system, action: 'audience.export.failed', entityType: 'subscriber_export',
        entityId: input.exportId, after: { error: input.error }, workflowId: workflowId(), eventKey: `subscriber-export:${input.exportId}:failed`,
      });
    },
  };
}

/** Cells a spreadsheet would run as a formula start with a quote (OWASP "CSV injection"), as in an import's rejections. */
const toCsv = (rows: unknown[][]) => stringify(rows, { cast: { string: neutralizeFormula, boolean: String } });

/** An attribute's cell: text as it is, numbers and booleans as written, anything else (a nested value) as JSON. */
function cell(v: unknown): unknown {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : v;
}

export type AudienceActivities = ReturnType<typeof createAudienceActivities>;
