// Import activities: staging and merging in time-boxed chunks for the batch kit's loop (each resumes from the
// heartbeated cursor or the merge's committed chunks), and the run's end with its audit event.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { StoredFile } from '../db/models/files';
import { ImportRun } from '../db/models/imports';
import { ownerOf } from '../lib/files';
import type { PermissionSet } from '../domains/identity/permissions';
import { selectOn, selectWith, standingNow, type Select } from '../domains/identity/standing';
import { ImportError } from '../domains/imports/errors';
import { importTarget } from '../domains/imports/targets';
import { finishImport, isImportError, mergeImportChunk, stageImportChunk, type ImportCounts } from '../domains/imports/pipeline';
import type { ByteSource } from '../domains/imports/source';
import { auditInsertSql, type CommandAuthor } from '../lib/audit';
import { heartbeating } from '../lib/batch';
import type { BlobStore } from '../lib/blob-store';
import type { ChunkReport } from '../workflows/batch';
import { ApiError } from '../lib/problems';
import { revertImport } from '../domains/imports/revert';
import type { ImportInput, ImportRevertInput, ImportRevertOutcome, ImportRevertRefusal, ImportStageCursor } from '../workflows/imports.api';

export interface ImportActivityDeps {
  blobs: BlobStore;
  /** How long one staging or merging activity runs before it hands back to the workflow (its cancel point). */
  importChunkMs?: number;
  /** Reading an XLSX into staging: the same, longer (each activity re-reads the workbook from its start; a cancel stops it at once). */
  importXlsxChunkMs?: number;
  /** Rows per committed staging chunk (and heartbeat). */
  importStageRows?: number;
  /** Staged rows per merge transaction. */
  importMergeRows?: number;
  /** Merge transactions at once. */
  importMergeConcurrency?: number;
  /** XLSX: the most uncompressed bytes read (zip bombs fail with FILE_TOO_LARGE). */
  importMaxUncompressedBytes?: number;
}

type Ids = Pick<ImportInput, 'tenantId' | 'importId'>;
/** `by` is absent only in activities scheduled before it was passed: those keep the request's permissions. */
type Asked = Ids & Pick<ImportInput, 'caller' | 'fileNeeds'> & { by?: CommandAuthor };

/** An import that cannot go on (ImportError) fails at once with its code; anything else is retried. */
async function refusing<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isImportError(err)) throw ApplicationFailure.nonRetryable(err.message, err.code, err.details ?? null);
    throw err;
  }
}

/** Writes a refusal as the revert's outcome (nothing else changed); a run reverted meanwhile keeps its counts. */
async function writeRefusal(ids: Ids, error: ImportRevertRefusal): Promise<ImportRevertOutcome> {
  await ImportRun.update({ revertOutcome: { error } }, { where: { tenantId: ids.tenantId, id: ids.importId, revertedAt: null } });
  return { error };
}

/** A revert's refusal (the import's or the API's rules: changed since, escalation, last admin), or undefined for anything to retry. */
function refusalOf(err: unknown): ImportRevertRefusal | undefined {
  if (isImportError(err)) return { status: err.status, code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
  if (err instanceof ApiError) return { status: err.status, code: err.code, message: err.detail, ...(err.extra.permission ? { details: { permission: err.extra.permission } } : {}) };
  return undefined;
}

export function createImportActivities(deps: ImportActivityDeps) {
  const sequelize = () => ImportRun.sequelize!;
  const chunkMs = deps.importChunkMs ?? 20_000;
  const xlsxChunkMs = deps.importXlsxChunkMs ?? 15 * 60_000;

  /**
   * The run's file and what reading it into its target needs: the target's permission, and the file's maker's (a
   * document needs documents.read) — as the request recorded it, so a file deleted mid-run still needs it.
   */
  async function runOf(ids: Asked): Promise<{ fileSha256: string; needs: string[] }> {
    const run = await ImportRun.findOne({ where: { tenantId: ids.tenantId, id: ids.importId }, attributes: ['fileSha256', 'fileId', 'target'] });
    if (!run) throw ApplicationFailure.nonRetryable(`import ${ids.importId} not found`, 'IMPORT_NOT_FOUND');
    const file = await StoredFile.findOne({ where: { tenantId: ids.tenantId, id: run.fileId }, attributes: ['originKey'] });
    const owner = file ? ownerOf(file) : undefined;
    const needs = new Set([importTarget(run.target).permission, ...(ids.fileNeeds ?? []), ...(owner ? [owner.permission] : [])]);
    return { fileSha256: run.fileSha256, needs: [...needs] };
  }

  /**
   * The permissions this chunk runs with: the request's, narrowed by the credential's standing now (read for
   * every chunk, so a revocation stops a long import at its next chunk). Losing the target's permission, or the
   * credential itself, fails the run with PERMISSION_REVOKED; what earlier chunks merged stays (revert undoes it).
   */
  async function callerNow(input: Asked, run: { needs: string[] }, select: Select = selectWith(sequelize()), what = 'import'): Promise<PermissionSet> {
    const standing = await standingNow(select, input.tenantId, input.by?.actor ?? { type: 'system', id: null }, input.caller);
    if (!standing.permissions) throw new ImportError('PERMISSION_REVOKED', `The ${what} was stopped: ${standing.lapsed}`);
    const [needed] = standing.permissions.missing(run.needs);
    if (needed) {
      throw new ImportError('PERMISSION_REVOKED', `The ${what} was stopped: the credential that asked for it no longer holds '${needed}'`, { permission: needed });
    }
    return standing.permissions;
  }

  return {
    /**
     * Reads the file on into staging for about `importChunkMs`, from the cursor the last attempt heartbeated (a
     * retry after a crash) or the one the workflow passes; once every row is read, the next call runs the checks.
     */
    async stageImportChunk(input: Asked & { cursor: ImportStageCursor | null }): Promise<ChunkReport<ImportStageCursor>> {
      const ctx = Context.current();
      const beat = ctx.info.heartbeatDetails as { cursor: ImportStageCursor | null } | undefined;
      let cursor = beat && 'cursor' in beat ? beat.cursor : input.cursor;
      const run = await runOf(input);
      const source: ByteSource = { open: (start = 0) => deps.blobs.open(run.fileSha256, start) };
      return refusing(() => heartbeating(async (signal) => {
        const caller = await callerNow(input, run);
        const r = await stageImportChunk(sequelize(), input, {
          source, cursor: cursor ?? undefined, signal, until: Date.now() + chunkMs, xlsxUntil: Date.now() + xlsxChunkMs, chunkRows: deps.importStageRows,
          maxUncompressedBytes: deps.importMaxUncompressedBytes, caller,
          progress: (at) => {
            cursor = at;
            ctx.heartbeat({ cursor });
          },
        });
        return { cursor: r.cursor, done: r.done };
      }, () => ({ cursor })));
    },

    /** Merges staged chunks for about `importChunkMs`; chunks are recorded done in their own transactions, so a retry merges only the rest. */
    async mergeImportChunk(input: Asked): Promise<ChunkReport<null> & { counts: ImportCounts }> {
      const run = await runOf(input);
      return refusing(() => heartbeating(async (signal) => {
        const caller = await callerNow(input, run);
        const r = await mergeImportChunk(sequelize(), input, {
          signal, until: Date.now() + chunkMs, chunkRows: deps.importMergeRows, concurrency: deps.importMergeConcurrency ?? 2,
          // Read on the merge's own connection, which holds the identity lock then (no second connection is taken).
          caller, standing: (db) => callerNow(input, run, selectOn(db)),
        });
        return { cursor: null, done: r.done, counts: r.counts };
      }));
    },

    /**
     * Reverts the import in one transaction (domains/imports/revert.ts), judged by what the asker holds now, and writes
     * the outcome on the run: the counts with the revert and its audit event, or the refusal alone (nothing else
     * changed; the revert may be asked again). A retry after the revert committed answers the outcome it wrote.
     */
    async revertImport(input: ImportRevertInput): Promise<ImportRevertOutcome> {
      const where = { tenantId: input.tenantId, id: input.importId };
      const run = await ImportRun.findOne({ where, attributes: ['target', 'revertOutcome'] });
      if (!run) throw ApplicationFailure.nonRetryable(`import ${input.importId} not found`, 'IMPORT_NOT_FOUND');
      // A request clears the outcome before its run starts, and a run starts only once the last one closed: an outcome
      // here is this run's, from an attempt before (the worker died before reporting it). It stands.
      if (run.revertOutcome) return run.revertOutcome;
      const workflowId = Context.current().info.workflowExecution?.workflowId ?? null;
      const needs = { needs: [importTarget(run.target).permission, 'imports.revert'] };
      return heartbeating(async () => {
        try {
          const caller = await callerNow(input, needs, undefined, 'revert');
          return await revertImport(sequelize(), input, {
            revertedBy: input.by.actor.id, caller, standing: (db) => callerNow(input, needs, selectOn(db), 'revert'),
            within: async (db, result) => {
              const bind: unknown[] = [];
              await db.query(auditInsertSql([{
                tenantId: input.tenantId, actor: input.by.actor, requestId: input.by.requestId, workflowId, action: 'imports.import.reverted',
                entityType: 'import', entityId: input.importId, after: result, eventKey: `imports:${input.importId}:reverted`,
              }], bind), bind);
              await db.query('UPDATE imports SET revert_outcome = $3 WHERE tenant_id = $1 AND id = $2', [input.tenantId, input.importId, JSON.stringify(result)]);
            },
          });
        } catch (err) {
          const error = refusalOf(err);
          if (!error) throw err;
          // "Reverted already" by an attempt of this run whose end Temporal did not hear of (its heartbeats lost): its counts stand.
          const now = await ImportRun.findOne({ where, attributes: ['revertedAt', 'revertOutcome'] });
          if (now?.revertedAt && now.revertOutcome && !now.revertOutcome.error) return now.revertOutcome;
          return writeRefusal(input, error);
        }
      });
    },

    /** A revert that could not be carried out at all (its activity gave up): written as its outcome, so it does not read `running` for ever. */
    async recordRevertFailure(input: Ids & { error: { code: string; message: string } }): Promise<ImportRevertOutcome> {
      return writeRefusal(input, { status: 500, ...input.error });
    },

    /** The run's end (finished, failed or cancelled) and its one audit event, once: a retry changes nothing. */
    async endImport(input: Ids & { by: CommandAuthor; phase: 'finished' | 'cancelled' | 'failed'; error?: { code: string; message: string; details?: unknown } }): Promise<ImportCounts> {
      const end = input.phase === 'failed' ? { phase: input.phase, error: input.error ?? { code: 'IMPORT_FAILED', message: 'The import failed' } } : { phase: input.phase };
      const workflowId = Context.current().info.workflowExecution?.workflowId ?? null;
      return finishImport(sequelize(), input, end, (counts) => ({
        tenantId: input.tenantId, actor: input.by.actor, requestId: input.by.requestId, workflowId,
        action: `imports.import.${input.phase}`, entityType: 'import', entityId: input.importId,
        after: input.phase === 'failed' ? { counts, error: end.phase === 'failed' ? { code: end.error.code, message: end.error.message } : undefined } : { counts },
        eventKey: `imports:${input.importId}:end`,
      }));
    },
  };
}

export type ImportActivities = ReturnType<typeof createImportActivities>;
