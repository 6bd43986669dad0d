// A run's rejected rows: paged for the API, and as a CSV of the rows as they were plus _row, _column, _code, _message.
import { PassThrough, Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { Sequelize } from 'sequelize';
import { withClient } from './pg';

export interface RejectionRow {
  row: number;
  column: string | null;
  code: string;
  message: string;
  raw: string[] | null;
}

/** Rejections after row `after`, in row order (keyset paging). */
export async function listRejections(sequelize: Sequelize, ids: { tenantId: string; importId: string }, page: { after?: number; limit: number; code?: string }): Promise<RejectionRow[]> {
  return withClient(sequelize, async (db) => {
    const { rows } = await db.query<RejectionRow>(`SELECT row_no AS row, column_name AS column, code, message, raw FROM import_rejections
      WHERE tenant_id = $1 AND import_id = $2 AND row_no > $3 AND ($5::text IS NULL OR code = $5) ORDER BY row_no LIMIT $4`,
    [ids.tenantId, ids.importId, page.after ?? 0, page.limit, page.code ?? null]);
    return rows;
  });
}

/**
 * A cell a spreadsheet would run as a formula (=, +, -, @, or a tab or carriage return before one) is prefixed with
 * a quote, so opening the CSV never executes anything a file or an attacker put there (OWASP "CSV injection").
 */
export function neutralizeFormula(cell: string): string {
  return /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
}

/**
 * The rejections CSV, streamed page by page: the file's header then _row, _column, _code, _message (then the cells
 * of a row that had more than the header).
 */
export function rejectionsCsv(sequelize: Sequelize, ids: { tenantId: string; importId: string }, pageSize = 2000): Readable {
  const out = new PassThrough();
  const csv = stringify({ cast: { string: neutralizeFormula } });
  csv.pipe(out);
  const write = (record: string[]) => (csv.write(record) ? undefined : new Promise<void>((resolve) => csv.once('drain', resolve)));
  (async () => {
    const { header } = await withClient(sequelize, async (db) => {
      const { rows: [r] } = await db.query<{ detected: { header: string[] } | null }>('SELECT detected FROM imports WHERE tenant_id = $1 AND id = $2', [ids.tenantId, ids.importId]);
      return { header: r?.detected?.header ?? [] };
    });
    await write([...header, '_row', '_column', '_code', '_message']);
    for (let after = 0; ;) {
      const page = await listRejections(sequelize, ids, { after, limit: pageSize });
      for (const r of page) {
        const raw = r.raw ?? [];
        const cells = header.map((_, i) => raw[i] ?? '');
        await write([...cells, String(r.row), r.column ?? '', r.code, r.message, ...raw.slice(header.length)]);
      }
      if (page.length < pageSize) break;
      after = page[page.length - 1].row;
    }
    csv.end();
  })().catch((err: Error) => out.destroy(err));
  return out;
}
