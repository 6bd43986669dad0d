// Reading an import into its staging table: rows validated and COPYed in chunks, a resumable cursor, then the
// set-based checks (duplicates within the file, references) that need every row staged.
import type { ClientBase } from 'pg';
import type { Sequelize } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import { ImportError } from './errors';
import { assertValidMapping, bindMapping, BoundMapping } from './mapping/compile';
import type { CellValue } from './mapping/transforms';
import { arrayLiteral, COPY_NULL, CopyWriter, copyText, inTransaction, withClient } from './pg';
import { ByteSource, DEFAULT_MAX_UNCOMPRESSED_BYTES, readRecords, ReadOptions, ReadPosition, sniffSource } from './source';
import { importTarget } from './targets';
import type { ImportTarget, MergeContext } from './targets/types';
import type { ColumnMapping, DetectedSource, MergeStrategy, RowErrorCode, RowErrorPolicy, SourceOptions } from './types';

/** Where staging stands: rows up to `row` have their outcome (staged or rejected) committed. */
export interface StageCursor extends ReadPosition {
  read: number;
  valid: number;
  rejected: number;
  /** Every row is read; what is left is the set-based checks (which are safe to run again). */
  done?: boolean;
}

export interface StageOptions {
  source: ByteSource;
  /** The cursor of an earlier attempt (its last heartbeat): staging beyond it is trimmed, reading resumes after it. */
  cursor?: StageCursor;
  /** Called after each committed chunk; the activity heartbeats it. */
  progress?: (cursor: StageCursor) => void;
  signal?: AbortSignal;
  /** Rows per committed chunk (and heartbeat). */
  chunkRows?: number;
  maxUncompressedBytes?: number;
  /** XLSX: the shared strings' block cache and temp dir (tests; see source/shared-strings.ts). */
  xlsx?: Pick<ReadOptions, 'sharedStringsCache' | 'tempDir'>;
  /** Whose permissions bound what the import may write (users). */
  caller?: MergeContext['caller'];
  /**
   * Stop reading at the first committed chunk after this time (epoch ms) and answer `done: false` with the cursor:
   * the workflow's chunk loop gets a pause/cancel point, and a long file does not make one endless activity.
   */
  until?: number;
  /**
   * The same for an XLSX, later: a workbook cannot be seeked, so each resume re-reads it from its start (the shared
   * strings, then the rows before the cursor) — with `until`'s 20 s a 1M-row workbook would spend most chunks
   * re-reading. A cancel still stops reading at once, through `signal`.
   */
  xlsxUntil?: number;
}

/** Reading stopped at `until` with rows left: go on from `cursor`. */
export interface StagePartial {
  done: false;
  cursor: StageCursor;
}

export interface StageResult {
  done: true;
  cursor: StageCursor;
  detected: DetectedSource;
  read: number;
  valid: number;
  rejected: number;
  /** Seconds spent reading + COPYing, and on the set-based checks (for logs and the throughput check). */
  timings: { read: number; checks: number };
}

/** The run as the pipeline needs it. */
export interface RunRow {
  tenant_id: string;
  id: string;
  target: string;
  source: SourceOptions;
  columns: ColumnMapping[];
  key_field: string;
  merge_strategy: MergeStrategy;
  dry_run: boolean;
  on_row_error: RowErrorPolicy;
  phase: string;
  detected: DetectedSource | null;
  rows_created: number;
}

export async function loadRun(db: ClientBase, tenantId: string, importId: string, lock = false): Promise<RunRow> {
  const { rows } = await db.query<RunRow>(`SELECT * FROM imports WHERE tenant_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [tenantId, importId]);
  if (!rows[0]) throw new Error(`import ${importId} of tenant ${tenantId} not found`);
  return rows[0];
}

/** One unlogged table per run (see bench/experiments/imports-throughput.ts for why not one shared table). */
export const stagingTable = (importId: string): string => `"import_stage_${importId.replace(/-/g, '')}"`;

/** The staging columns of a target: row_no, the id a created row gets, the key, then f_<field> per field, attributes. */
function stagingDDL(target: ImportTarget, table: string): string {
  const cols = ['row_no integer NOT NULL', 'id uuid NOT NULL', 'key text COLLATE "C" NOT NULL'];
  for (const f of target.fields) if (f.name !== target.key) cols.push(`f_${f.name} ${f.type === 'list' ? 'text[]' : 'text'}`);
  if (target.attributes) cols.push('attributes jsonb');
  return `CREATE UNLOGGED TABLE IF NOT EXISTS ${table} (${cols.join(', ')}) WITH (autovacuum_enabled = false)`;
}

export function mergeContext(run: RunRow, bound: Pick<BoundMapping, 'mapped'>, caller?: MergeContext['caller']): MergeContext {
  const headers: Record<string, string> = {};
  for (const c of run.columns) headers[c.field.startsWith('attributes.') ? 'attributes' : c.field] ??= c.source;
  return { tenantId: run.tenant_id, importId: run.id, stage: stagingTable(run.id), strategy: run.merge_strategy, mapped: bound.mapped, headers, caller };
}

/** Encodes a row's staged values as one COPY line, in the column order of `stagingColumns`. */
function lineEncoder(target: ImportTarget, bound: BoundMapping): { columns: string[]; encode(row: number, values: CellValue[]): string } {
  const keyAt = bound.fields.indexOf(target.key);
  const others = bound.fields.map((f, i) => ({ f, i })).filter(({ f }) => f !== target.key);
  const columns = ['row_no', 'id', 'key', ...others.map(({ f }) => (f === 'attributes' ? 'attributes' : `f_${f}`))];
  const kinds = others.map(({ f }) => (f === 'attributes' ? 'json' : target.fields.find((x) => x.name === f)!.type === 'list' ? 'list' : 'text'));
  return {
    columns,
    encode(row, values) {
      let line = row + '\t' + uuidv7() + '\t' + copyText(values[keyAt] as string);
      for (let k = 0; k < others.length; k++) {
        const v = values[others[k].i];
        line += '\t';
        if (v === null || v === undefined) line += COPY_NULL;
        else if (kinds[k] === 'list') line += copyText(arrayLiteral(v as string[]));
        else if (kinds[k] === 'json') line += copyText(JSON.stringify(v));
        else line += copyText(String(v));
      }
      return line + '\n';
    },
  };
}

const rejectionLine = (tenantId: string, importId: string, row: number, column: string | null, code: RowErrorCode, message: string, raw: readonly string[] | null) =>
  [tenantId, importId, String(row), column === null ? COPY_NULL : copyText(column), code, copyText(message), raw === null ? COPY_NULL : copyText(JSON.stringify(raw))].join('\t') + '\n';

/** Thrown from a chunk commit to stop reading at `until` (never escapes stageImport). */
const STOP = Symbol('stop staging');

const REJECTION_COPY = 'COPY import_rejections (tenant_id, import_id, row_no, column_name, code, message, raw) FROM STDIN';

/**
 * Reads the run's file into its staging table and runs the set-based checks. Resumable: with the cursor of an
 * earlier attempt it trims what that attempt staged beyond the cursor and reads on from there, so no row is staged
 * twice. Throws ImportError for a file that cannot be imported (and ROWS_REJECTED under `onRowError: abort`).
 */
export async function stageImport(sequelize: Sequelize, ids: { tenantId: string; importId: string }, opts: Omit<StageOptions, 'until'>): Promise<StageResult> {
  return (await stageImportChunk(sequelize, ids, opts)) as StageResult;
}

/** stageImport that stops at `opts.until` (see StageOptions) and answers where it stopped. */
export async function stageImportChunk(sequelize: Sequelize, ids: { tenantId: string; importId: string }, opts: StageOptions): Promise<StageResult | StagePartial> {
  return withClient(sequelize, async (db) => {
    const run = await loadRun(db, ids.tenantId, ids.importId);
    const target = importTarget(run.target);
    assertValidMapping(target, { columns: run.columns, keyField: run.key_field, mergeStrategy: run.merge_strategy, source: run.source });
    const table = stagingTable(run.id);
    const limits = { maxUncompressedBytes: opts.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED_BYTES, ...opts.xlsx };
    const sniffed = await sniffSource(opts.source, run.source);
    const until = sniffed.format === 'xlsx' && opts.xlsxUntil !== undefined ? opts.xlsxUntil : opts.until;
    const headerRow = run.source.headerRow ?? 1;
    let cursor: StageCursor = opts.cursor ?? { row: 0, byte: null, read: 0, valid: 0, rejected: 0 };
    if (opts.cursor) {
      await db.query(`DELETE FROM ${table} WHERE row_no > $1`, [cursor.row]).catch(async (err: { code?: string }) => {
        if (err.code !== '42P01') throw err; // staging gone (a cleanup ran): start over
        cursor = { row: 0, byte: null, read: 0, valid: 0, rejected: 0 };
      });
    } else {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
    }
    await db.query(stagingDDL(target, table));
    await db.query('DELETE FROM import_rejections WHERE tenant_id = $1 AND import_id = $2 AND row_no > $3', [run.tenant_id, run.id, cursor.row]);
    if (!cursor.done) await db.query("UPDATE imports SET phase = 'parsing', started_at = COALESCE(started_at, now()), updated_at = now() WHERE tenant_id = $1 AND id = $2", [run.tenant_id, run.id]);

    let bound: BoundMapping | undefined;
    let detected: DetectedSource | undefined;
    const started = performance.now();
    if (!cursor.done) {
      const chunkRows = opts.chunkRows ?? 50_000;
      let encoder: ReturnType<typeof lineEncoder> | undefined;
      let copy: CopyWriter | undefined;
      let rejections: string[] = [];
      let wait: Promise<void> | undefined;
      let sinceCommit = 0;
      const counts = { read: cursor.read, valid: cursor.valid, rejected: cursor.rejected };
      const reject = (row: number, column: string | null, code: RowErrorCode, message: string, raw: readonly string[] | null) => {
        counts.rejected++;
        sinceCommit++;
        rejections.push(rejectionLine(run.tenant_id, run.id, row, column, code, message, raw));
      };
      const commit = async (at: ReadPosition) => {
        if (copy) await copy.end();
        copy = undefined;
        if (rejections.length) {
          const rc = new CopyWriter(db, REJECTION_COPY);
          for (const l of rejections) await rc.line(l);
          await rc.end();
          rejections = [];
        }
        cursor = { row: at.row, byte: at.byte, ...counts };
        sinceCommit = 0;
        await db.query('UPDATE imports SET rows_read = $3, rows_valid = $4, rows_rejected = $5, updated_at = now() WHERE tenant_id = $1 AND id = $2',
          [run.tenant_id, run.id, counts.read, counts.valid, counts.rejected]);
        opts.progress?.(cursor);
        if (until !== undefined && Date.now() >= until) throw STOP;
      };
      try {
        const { end } = await readRecords(opts.source, sniffed, { headerRow, sheet: run.source.sheet, from: cursor.row ? cursor : undefined, ...limits }, {
          header(cells, sheet) {
            bound = bindMapping(target, run.columns, cells);
            encoder = lineEncoder(target, bound);
            detected = { format: sniffed.format, encoding: sniffed.encoding, bomLength: sniffed.bomLength, delimiter: sniffed.delimiter, headerRow, sheet, header: cells };
          },
          row(row, cells, badEncoding) {
            counts.read++;
            if (badEncoding) {
              const column = cells.findIndex((c) => c.includes('\uFFFD'));
              return reject(row, column >= 0 ? detected!.header[column] ?? null : null, 'INVALID_ENCODING', `The row has bytes that are not ${sniffed.encoding}`, cells);
            }
            const values = bound!.apply(cells);
            if (!Array.isArray(values)) return reject(row, values.column, values.code, values.message, cells);
            const line = encoder!.encode(row, values);
            if (line.includes('\u0000')) return reject(row, null, 'INVALID_FORMAT', 'The row contains a NUL character', cells);
            counts.valid++;
            sinceCommit++;
            copy ??= new CopyWriter(db, `COPY ${table} (${encoder!.columns.join(', ')}) FROM STDIN`);
            wait = copy.line(line) ?? wait;
          },
          unreadable(row, message) {
            counts.read++;
            reject(row, null, 'INVALID_FORMAT', `The row cannot be read: ${message}`, null);
          },
          pause(at) {
            if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
            if (sinceCommit >= chunkRows) {
              const w = wait;
              wait = undefined;
              return (w ?? Promise.resolve()).then(() => commit(at));
            }
            const w = wait;
            wait = undefined;
            return w;
          },
        });
        if (!bound) throw new ImportError('EMPTY_FILE', 'The file has no header row');
        if (wait) await wait;
        await commit(end);
      } catch (err) {
        if (err === STOP) return { done: false, cursor };
        copy?.abort(err instanceof Error ? err : new Error(String(err)));
        throw err;
      }
      if (counts.read === 0) throw new ImportError('EMPTY_FILE', 'The file has a header but no rows');
      cursor = { ...cursor, done: true };
      await db.query('UPDATE imports SET detected = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2', [run.tenant_id, run.id, JSON.stringify(detected)]);
      opts.progress?.(cursor);
      // A chunked run ends the chunk here: the checks are the next one (its own phase, `staging`).
      if (opts.until !== undefined) return { done: false, cursor };
    }
    const readSeconds = (performance.now() - started) / 1000;
    detected ??= (await loadRun(db, run.tenant_id, run.id)).detected!;
    bound ??= bindMapping(target, run.columns, detected.header);
    await db.query("UPDATE imports SET phase = 'staging', updated_at = now() WHERE tenant_id = $1 AND id = $2", [run.tenant_id, run.id]);
    const ctx = mergeContext(run, bound, opts.caller);
    await checkStaged(db, target, ctx, run);
    await fillRejectedRaw(db, opts.source, sniffed, run, detected, limits);
    const { rows: [c] } = await db.query(`UPDATE imports SET rows_valid = (SELECT count(*) FROM ${table}),
        rows_rejected = (SELECT count(*) FROM import_rejections WHERE tenant_id = $1 AND import_id = $2), updated_at = now()
      WHERE tenant_id = $1 AND id = $2 RETURNING rows_read AS read, rows_valid AS valid, rows_rejected AS rejected`, [run.tenant_id, run.id]);
    if (run.on_row_error === 'abort' && c.rejected > 0) {
      throw new ImportError('ROWS_REJECTED', `${c.rejected} rows were rejected and the import asks to abort on any; nothing was written`, { rejected: c.rejected });
    }
    return { done: true, cursor: { ...cursor, done: true }, detected, read: c.read, valid: c.valid, rejected: c.rejected, timings: { read: readSeconds, checks: (performance.now() - started) / 1000 - readSeconds } };
  });
}

/**
 * The checks that need every row: duplicates of the key within the file (the first occurrence wins, the later ones
 * are DUPLICATE_ENTRY), then the target's own (references, permissions). Each can run again after a crash.
 */
async function checkStaged(db: ClientBase, target: ImportTarget, ctx: MergeContext, run: RunRow): Promise<void> {
  const keyColumn = ctx.headers?.[target.key] ?? target.key;
  await inTransaction(db, async () => {
    await db.query("SET LOCAL work_mem = '256MB'");
    // The message names the first row, not the key: the key is personal data (an address) that an erasure removes
    // from the row's cells, and the message would keep it.
    await db.query(`WITH firsts AS (SELECT key, min(row_no) AS first FROM ${ctx.stage} GROUP BY key HAVING count(*) > 1),
      dups AS (SELECT c.row_no, c.key, f.first FROM ${ctx.stage} c JOIN firsts f ON f.key = c.key WHERE c.row_no > f.first),
      rej AS (
        INSERT INTO import_rejections (tenant_id, import_id, row_no, column_name, code, message)
        SELECT $1, $2, row_no, $3, 'DUPLICATE_ENTRY', 'Row ' || first || ' has the same ' || $4 || ': the first occurrence is imported'
        FROM dups ON CONFLICT DO NOTHING
      )
      DELETE FROM ${ctx.stage} c USING dups WHERE c.row_no = dups.row_no`, [run.tenant_id, run.id, keyColumn, target.key]);
  });
  // Merge chunks are key ranges (targets/types.ts KeyRange): each reads its rows through this index.
  await db.query(`CREATE INDEX IF NOT EXISTS ${ctx.stage.slice(0, -1)}_key" ON ${ctx.stage} (key)`);
  await db.query(`ANALYZE ${ctx.stage}`);
  if (target.rejectStaged) await inTransaction(db, () => target.rejectStaged!(db, ctx));
}

/**
 * Rejections found in SQL (duplicates, references) know their row but not its cells: one more pass over the file
 * fills them in, only when there are such rows, merging the file's rows with the rejections in row order.
 */
async function fillRejectedRaw(db: ClientBase, source: ByteSource, sniffed: Awaited<ReturnType<typeof sniffSource>>, run: RunRow, detected: DetectedSource, limits: Pick<ReadOptions, 'maxUncompressedBytes' | 'sharedStringsCache' | 'tempDir'>): Promise<void> {
  // Rows the parser could not read (INVALID_FORMAT without cells) have none to fill in.
  const { rows: [{ n }] } = await db.query("SELECT count(*)::int AS n FROM import_rejections WHERE tenant_id = $1 AND import_id = $2 AND raw IS NULL AND code <> 'INVALID_FORMAT'", [run.tenant_id, run.id]);
  if (!n) return;
  let wanted: number[] = [];
  let after = 0;
  const nextPage = async () => {
    const { rows } = await db.query<{ row_no: number }>(`SELECT row_no FROM import_rejections WHERE tenant_id = $1 AND import_id = $2 AND raw IS NULL
      AND code <> 'INVALID_FORMAT' AND row_no > $3 ORDER BY row_no LIMIT 5000`, [run.tenant_id, run.id, after]);
    wanted = rows.map((r) => r.row_no);
    if (wanted.length) after = wanted[wanted.length - 1];
  };
  await nextPage();
  let found: { row: number; raw: string[] }[] = [];
  const save = async () => {
    if (!found.length) return;
    await db.query(`UPDATE import_rejections r SET raw = v.raw FROM unnest($3::int[], $4::jsonb[]) AS v(row_no, raw)
      WHERE r.tenant_id = $1 AND r.import_id = $2 AND r.row_no = v.row_no`,
    [run.tenant_id, run.id, found.map((f) => f.row), found.map((f) => JSON.stringify(f.raw))]);
    found = [];
  };
  let i = 0;
  await readRecords(source, sniffed, { headerRow: detected.headerRow, sheet: run.source.sheet, ...limits }, {
    header: () => undefined,
    row(row, cells) {
      while (i < wanted.length && wanted[i] < row) i++;
      if (i < wanted.length && wanted[i] === row) found.push({ row, raw: cells });
    },
    unreadable: () => undefined,
    async pause() {
      if (wanted.length && i >= wanted.length) {
        await save();
        await nextPage();
        i = 0;
      }
    },
  });
  await save();
}
