// Staged rows into the target: set-based chunks, one transaction each, progress committed with the chunk it
// describes; a dry run computes the same counts and writes nothing. Then the run's end (finished, failed, cancelled).
import type { ClientBase } from 'pg';
import type { Sequelize } from 'sequelize';
import { auditInsertSql, type AuditInput } from '../../lib/audit';
import { bindMapping } from './mapping/compile';
import { inTransaction, withClient } from './pg';
import { loadRun, mergeContext, RunRow, stagingTable } from './staging';
import { importTarget } from './targets';
import { ChunkRaceError, MergeContext, MergeCounts } from './targets/types';
import type { ImportCounts } from './types';

export interface MergeProgress {
  chunks: number;
  chunksDone: number;
  counts: ImportCounts;
}

export interface MergeOptions {
  progress?: (p: MergeProgress) => void;
  signal?: AbortSignal;
  /** Staged rows per chunk (a chunk is one transaction). */
  chunkRows?: number;
  /** Chunks merged at once, each on its own connection (disjoint rows, so they never wait on each other's rows). */
  concurrency?: number;
  caller?: MergeContext['caller'];
  standing?: MergeContext['standing'];
  /** Take no new chunk after this time (epoch ms) once one is merged; the answer says whether any are left. */
  until?: number;
}

/**
 * Durable merge progress on the run row: each chunk's first key (chunk i holds the keys from bounds[i] up to, not
 * including, bounds[i + 1]; the last runs to the end) and the chunks committed (by index).
 */
interface MergeCursor {
  bounds: string[];
  done: number[];
}

const COUNTS_SQL = `rows_read AS read, rows_valid AS valid, rows_rejected AS rejected, rows_created AS created,
  rows_updated AS updated, rows_unchanged AS unchanged, rows_skipped AS skipped`;

async function countsOf(db: ClientBase, tenantId: string, importId: string): Promise<ImportCounts> {
  const { rows: [c] } = await db.query<ImportCounts>(`SELECT ${COUNTS_SQL} FROM imports WHERE tenant_id = $1 AND id = $2`, [tenantId, importId]);
  return c;
}

function contextOf(run: RunRow, opts: MergeOptions): MergeContext {
  if (!run.detected) throw new Error(`import ${run.id} has not been staged`);
  return { ...mergeContext(run, bindMapping(importTarget(run.target), run.columns, run.detected.header), opts.caller), standing: opts.standing };
}

/**
 * Applies the staged rows (or, for a dry run, counts what applying them would do). Resumable without a cursor of
 * its own: each chunk's transaction records that chunk as done, so a retry merges exactly the chunks left.
 */
export async function mergeImport(sequelize: Sequelize, ids: { tenantId: string; importId: string }, opts: Omit<MergeOptions, 'until'> = {}): Promise<ImportCounts> {
  return (await mergeImportChunk(sequelize, ids, opts)).counts;
}

/** mergeImport that stops taking chunks at `opts.until`; `done` once every chunk is merged. */
export async function mergeImportChunk(sequelize: Sequelize, ids: { tenantId: string; importId: string }, opts: MergeOptions = {}): Promise<{ counts: ImportCounts; done: boolean }> {
  const run = await withClient(sequelize, (db) => loadRun(db, ids.tenantId, ids.importId));
  const target = importTarget(run.target);
  const ctx = contextOf(run, opts);
  if (run.dry_run) {
    const counts = await withClient(sequelize, async (db) => {
      const c = await inTransaction(db, async () => {
        await db.query("SET LOCAL work_mem = '128MB'");
        return target.dryRun(db, ctx);
      });
      await db.query(`UPDATE imports SET phase = 'merging', rows_created = $3, rows_updated = $4, rows_unchanged = $5, rows_skipped = $6, updated_at = now()
        WHERE tenant_id = $1 AND id = $2`, [run.tenant_id, run.id, c.created, c.updated, c.unchanged, c.skipped]);
      return countsOf(db, run.tenant_id, run.id);
    });
    return { counts, done: true };
  }
  const cursor = await withClient(sequelize, async (db) => {
    const { rows: [r] } = await db.query<{ merge_cursor: MergeCursor | null }>('SELECT merge_cursor FROM imports WHERE tenant_id = $1 AND id = $2', [run.tenant_id, run.id]);
    if (r.merge_cursor) return r.merge_cursor;
    // Keys are unique in staging by now (duplicates were rejected), so every chunk has exactly `size` rows but the last.
    const { rows } = await db.query<{ key: string }>(`SELECT key FROM (SELECT key, row_number() OVER (ORDER BY key) AS n FROM ${ctx.stage}) k
      WHERE (n - 1) % $1 = 0 ORDER BY key`, [opts.chunkRows ?? 25_000]);
    const fresh: MergeCursor = { bounds: rows.map((b) => b.key), done: [] };
    await db.query("UPDATE imports SET phase = 'merging', merge_cursor = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2", [run.tenant_id, run.id, JSON.stringify(fresh)]);
    return fresh;
  });
  const chunks = cursor.bounds.length;
  const done = new Set(cursor.done);
  const todo = cursor.bounds.map((_, i) => i).filter((i) => !done.has(i));
  let chunksDone = chunks - todo.length;
  let next = 0;
  let merged = 0;
  const lane = () => withClient(sequelize, async (db) => {
    while (next < todo.length) {
      if (opts.until !== undefined && merged > 0 && Date.now() >= opts.until) break;
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      const chunk = todo[next++];
      const range = { from: cursor.bounds[chunk], to: cursor.bounds[chunk + 1] ?? null };
      for (let attempt = 1; ; attempt++) {
        try {
          await inTransaction(db, async () => {
            const c: MergeCounts = await target.mergeChunk(db, ctx, range);
            await db.query(`UPDATE imports SET rows_created = rows_created + $3, rows_updated = rows_updated + $4, rows_unchanged = rows_unchanged + $5,
                rows_skipped = rows_skipped + $6, rows_rejected = rows_rejected + $7, rows_valid = rows_valid - $7,
                merge_cursor = jsonb_set(merge_cursor, '{done}', (merge_cursor->'done') || to_jsonb($8::int)), updated_at = now()
              WHERE tenant_id = $1 AND id = $2`, [run.tenant_id, run.id, c.created, c.updated, c.unchanged, c.skipped, c.rejected, chunk]);
          });
          break;
        } catch (err) {
          if (!(err instanceof ChunkRaceError) || attempt >= 5) throw err;
        }
      }
      chunksDone++;
      merged++;
      if (opts.progress) opts.progress({ chunks, chunksDone, counts: await countsOf(db, run.tenant_id, run.id) });
    }
  });
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 1, todo.length)) }, lane));
  return { counts: await withClient(sequelize, (db) => countsOf(db, run.tenant_id, run.id)), done: chunksDone === chunks };
}

export type ImportEnd = { phase: 'finished' } | { phase: 'failed'; error: { code: string; message: string; details?: unknown } } | { phase: 'cancelled' };

/**
 * The run's end: the phase (and error) set once — a retry finds it set and changes nothing — with its audit event
 * (`audit`, given the final counts) in the same transaction; then the staging table goes. The counts stay.
 */
export async function finishImport(sequelize: Sequelize, ids: { tenantId: string; importId: string }, end: ImportEnd = { phase: 'finished' },
  audit?: (counts: ImportCounts) => AuditInput): Promise<ImportCounts> {
  return withClient(sequelize, async (db) => {
    await inTransaction(db, async () => {
      const { rows } = await db.query<ImportCounts>(`UPDATE imports SET phase = $3, error = $4, merge_cursor = NULL, finished_at = now(), updated_at = now()
        WHERE tenant_id = $1 AND id = $2 AND phase NOT IN ('finished', 'failed', 'cancelled') RETURNING ${COUNTS_SQL}`,
      [ids.tenantId, ids.importId, end.phase, end.phase === 'failed' ? JSON.stringify(end.error) : null]);
      if (rows[0] && audit) {
        const bind: unknown[] = [];
        const sql = auditInsertSql([audit(rows[0])], bind);
        await db.query(sql, bind);
      }
    });
    await db.query(`DROP TABLE IF EXISTS ${stagingTable(ids.importId)}`);
    return countsOf(db, ids.tenantId, ids.importId);
  });
}
