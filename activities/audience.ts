// Audience activities: a subscriber export writes the subscribers its filters pick to one CSV, streamed page by
// page from Postgres into the file store (bounded memory whatever the audience's size), then marks the export ready.
// A retry (a worker killed mid-way) writes the file again from the start: nothing is stored until the whole CSV is,
// and it is stored once, under the export's origin key.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { stringify } from 'csv-stringify/sync';
import { literal, Op, WhereOptions } from 'sequelize';
import { Subscriber, SubscriberExport } from '../db/models/audience';
import { StoredFile } from '../db/models/files';
import { subscriberWhere } from '../domains/audience/commands';
import { neutralizeFormula } from '../domains/imports/rejections';
import { updateWithAudit } from '../lib/audit';
import { heartbeating } from '../lib/batch';
import type { BlobStore } from '../lib/blob-store';
import { storeStream } from '../lib/files';
import type { SubscriberExportInput } from '../workflows/audience.api';

export interface AudienceActivityDeps {
  blobs: BlobStore;
  /** Rows per page: bounded memory whatever the size of the audience. */
  exportPageSize?: number;
  /** Pause between pages, to spare the database during big exports. */
  exportPagePauseMs?: number;
}

/** More distinct attributes than this among the exported subscribers is refused (a column each would make a CSV no sheet opens well). */
export const MAX_EXPORT_ATTRIBUTE_COLUMNS = 200;

/** The columns before the attributes; `lists` holds list ids separated by spaces (an import reads it back with a split transform). */
export const SUBSCRIBER_CSV_COLUMNS = ['email', 'name', 'status', 'lists', 'created_at', 'updated_at'];

/** A subscriber's columns as an export reads them, and its lists' ids (sorted, separated by spaces) from the same query. */
const EXPORTED = ['id', 'email', 'name', 'status', 'attributes', 'createdAt', 'updatedAt'] as const;
const LISTS = literal(`(SELECT string_agg(m.list_id::text, ' ' ORDER BY m.list_id) FROM list_members m
  WHERE m.tenant_id = "Subscriber".tenant_id AND m.subscriber_id = "Subscriber".id)`);
type ExportedRow = Pick<Subscriber, (typeof EXPORTED)[number]> & { attributes: Record<string, unknown>; lists: string | null };

export function createAudienceActivities(deps: AudienceActivityDeps) {
  const pageSize = deps.exportPageSize ?? 2000;
  const system = { type: 'system' as const, id: null };
  const sequelize = () => Subscriber.sequelize!;
  const workflowId = () => Context.current().info.workflowExecution?.workflowId;

  /** The export's row while it is not finished: an attempt never changes an export that is ready or failed. */
  const open = (input: SubscriberExportInput) => ({ id: input.exportId, tenantId: input.tenantId, status: ['queued', 'running'] as ('queued' | 'running')[] });

  /** The export's subscribers: its filters, never the erased. */
  const matching = (input: SubscriberExportInput): WhereOptions => ({
    [Op.and]: [subscriberWhere(sequelize(), input.tenantId, input.filters), { erasedAt: null }],
  });

  /** The attribute names the exported subscribers use, sorted: one column each. */
  async function attributeColumns(input: SubscriberExportInput): Promise<string[]> {
    const rows = await Subscriber.findAll({
      attributes: [[literal('DISTINCT jsonb_object_keys(attributes)'), 'k']], where: matching(input),
      order: [[literal('k'), 'ASC']], limit: MAX_EXPORT_ATTRIBUTE_COLUMNS + 1, raw: true,
    }) as unknown as { k: string }[];
    if (rows.length > MAX_EXPORT_ATTRIBUTE_COLUMNS) {
      throw ApplicationFailure.nonRetryable(`The subscribers use more than ${MAX_EXPORT_ATTRIBUTE_COLUMNS} distinct attributes; narrow the export with a filter`, 'EXPORT_TOO_WIDE');
    }
    return rows.map((r) => r.k);
  }

  /**
   * The CSV: a header, then the subscribers by id, a page at a time; `written` counts the rows as they go. Each page is
   * one chunk of text, so a failed read fails the stream (and the store) instead of leaving it waiting.
   */
  async function* csv(input: SubscriberExportInput, attributes: string[], written: { rows: number }, signal: AbortSignal): AsyncGenerator<string> {
    yield toCsv([[...SUBSCRIBER_CSV_COLUMNS, ...attributes.map((a) => `attributes.${a}`)]]);
    for (let lastId: string | null = null; ;) {
      // An attempt Temporal gave up on (its heartbeat timed out, the workflow was cancelled) stops instead of writing on.
      signal.throwIfAborted();
      const where: WhereOptions = lastId ? { [Op.and]: [matching(input), { id: { [Op.gt]: lastId } }] } : matching(input);
      // Plain rows, their lists in the same query: one round trip a page, no model instance per row.
      const page = await Subscriber.findAll({ where, order: [['id', 'ASC']], limit: pageSize, raw: true, attributes: [...EXPORTED, [LISTS, 'lists']] }) as unknown as ExportedRow[];
      if (page.length === 0) return;
      yield toCsv(page.map((s) => [s.email, s.name ?? '', s.status, s.lists ?? '', s.createdAt.toISOString(), s.updatedAt.toISOString(),
        ...attributes.map((a) => cell(s.attributes[a]))]));
      written.rows += page.length;
      await SubscriberExport.update({ rowsWritten: written.rows }, { where: open(input) });
      if (page.length < pageSize) return;
      lastId = page[page.length - 1].id;
      if (deps.exportPagePauseMs) await sleep(deps.exportPagePauseMs);
    }
  }

  return {
    /** Writes and stores the CSV, then marks the export ready (its audit event once); a retry finds a stored CSV and only marks. */
    async writeSubscriberExport(input: SubscriberExportInput): Promise<{ fileId: string; rows: number }> {
      const meta = {
        tenantId: input.tenantId, filename: `subscribers-${input.exportId}.csv`, contentType: 'text/csv',
        createdBy: null, originKey: `subscriber-export:${input.exportId}`,
      };
      let stored = await StoredFile.findOne({ where: { tenantId: input.tenantId, originKey: meta.originKey } });
      let rows: number;
      if (stored) {
        rows = (await SubscriberExport.findOne({ where: { id: input.exportId, tenantId: input.tenantId }, attributes: ['rowsWritten'] }))?.rowsWritten ?? 0;
      } else {
        const written = { rows: 0 };
        // Heartbeating from the start: counting and finding the attribute columns read every matching row too.
        stored = await heartbeating(async (signal) => {
          const total = await Subscriber.count({ where: matching(input) });
          await SubscriberExport.update({ status: 'running', totalRows: total, rowsWritten: 0 }, { where: open(input) });
          const attributes = await attributeColumns(input);
          return storeStream(deps.blobs, meta, Readable.from(csv(input, attributes, written, signal)));
        }, () => ({ rows: written.rows }));
        rows = written.rows;
      }
      await updateWithAudit(SubscriberExport, { status: 'ready', fileId: stored.id, rowsWritten: rows, completedAt: new Date() }, open(input), {
        tenantId: input.tenantId, actor: system, action: 'audience.export.completed', entityType: 'subscriber_export',
        entityId: input.exportId, after: { rows, fileId: stored.id }, workflowId: workflowId(), eventKey: `subscriber-export:${input.exportId}:completed`,
      });
      return { fileId: stored.id, rows };
    },

    async failSubscriberExport(input: SubscriberExportInput & { error: string }): Promise<void> {
      await updateWithAudit(SubscriberExport, { status: 'failed', error: input.error, completedAt: new Date() }, open(input), {
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
