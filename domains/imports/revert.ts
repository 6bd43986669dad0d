// Undoing an import: the rows it created go, the fields it overwrote come back — or nothing, if any of them changed since.
import type { Sequelize } from 'sequelize';
import { ImportError } from './errors';
import { inTransaction, withClient } from './pg';
import { loadRun } from './staging';
import { importTarget } from './targets';
import type { PermissionCheck } from './targets/types';

export interface RevertResult {
  deleted: number;
  restored: number;
}

/** Why the run itself rules a revert out (IMPORT_NOT_REVERTIBLE), or null. */
export function whyNotRevertible(run: { dryRun: boolean; reverted: boolean; phase: string }): string | null {
  if (run.dryRun) return 'A dry run wrote nothing to revert';
  if (run.reverted) return 'The import is reverted already';
  if (run.phase !== 'finished' && run.phase !== 'cancelled') return `The import is ${run.phase}: only a finished or cancelled import can be reverted`;
  return null;
}

/**
 * One transaction: the run is locked, the target deletes and restores only rows that still carry the import's id
 * (any other write clears it, see migration 0012), and a count short of what the import wrote means something
 * changed since → IMPORT_CHANGED_SINCE and a rollback. `within` runs in the same transaction (the audit event).
 */
export async function revertImport(
  sequelize: Sequelize,
  ids: { tenantId: string; importId: string },
  opts: { revertedBy: string | null; caller: PermissionCheck; standing?: (db: import('pg').ClientBase) => Promise<PermissionCheck>; within?: (db: import('pg').ClientBase, result: RevertResult) => Promise<void> },
): Promise<RevertResult> {
  return withClient(sequelize, (db) => inTransaction(db, async () => {
    const run = await loadRun(db, ids.tenantId, ids.importId, true);
    const { rows: [r] } = await db.query<{ reverted_at: Date | null }>('SELECT reverted_at FROM imports WHERE tenant_id = $1 AND id = $2', [ids.tenantId, ids.importId]);
    const refusal = whyNotRevertible({ dryRun: run.dry_run, reverted: Boolean(r.reverted_at), phase: run.phase });
    if (refusal) throw new ImportError('IMPORT_NOT_REVERTIBLE', refusal);
    const result = await importTarget(run.target).revert(db, { tenantId: ids.tenantId, importId: ids.importId, created: run.rows_created, caller: opts.caller, standing: opts.standing });
    // The before-images held personal data only for this; they go.
    await db.query('DELETE FROM import_before_images WHERE tenant_id = $1 AND import_id = $2', [ids.tenantId, ids.importId]);
    await db.query('UPDATE imports SET reverted_at = now(), reverted_by = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2', [ids.tenantId, ids.importId, opts.revertedBy]);
    await opts.within?.(db, result);
    return result;
  }));
}
