// Import activities: staging and merging in time-boxed chunks for the batch kit's loop (each resumes from the
// heartbeated cursor or the merge's committed chunks), and the run's end with its audit event.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ImportRun } from '../db/models/imports';
import { PermissionSet } from '../domains/identity/permissions';
import { finishImport, isImportError, mergeImportChunk, stageImportChunk, type ImportCounts } from '../domains/imports/pipeline';
import type { ByteSource } from '../domains/imports/source';
import type { CommandAuthor } from '../lib/audit';
import { heartbeating } from '../lib/batch';
import type { BlobStore } from '../lib/blob-store';
import type { ChunkReport } from '../workflows/batch';
import type { ImportInput, ImportStageCursor } from '../workflows/imports.api';

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

/** An import that cannot go on (ImportError) fails at once with its code; anything else is retried. */
async function refusing<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isImportError(err)) throw ApplicationFailure.nonRetryable(err.message, err.code, err.details ?? null);
    throw err;
  }
}

export function createImportActivities(deps: ImportActivityDeps) {
  const sequelize = () => ImportRun.sequelize!;
  const chunkMs = deps.importChunkMs ?? 20_000;
  const xlsxChunkMs = deps.importXlsxChunkMs ?? 15 * 60_000;

  async function sourceOf(ids: Ids): Promise<ByteSource> {
    const run = await ImportRun.findOne({ where: { tenantId: ids.tenantId, id: ids.importId }, attributes: ['fileSha256'] });
    if (!run) throw ApplicationFailure.nonRetryable(`import ${ids.importId} not found`, 'IMPORT_NOT_FOUND');
    return { open: (start = 0) => deps.blobs.open(run.fileSha256, start) };
  }

  return {
    /**
     * Reads the file on into staging for about `importChunkMs`, from the cursor the last attempt heartbeated (a
     * retry after a crash) or the one the workflow passes; once every row is read, the next call runs the checks.
     */
    async stageImportChunk(input: Ids & Pick<ImportInput, 'caller'> & { cursor: ImportStageCursor | null }): Promise<ChunkReport<ImportStageCursor>> {
      const ctx = Context.current();
      const beat = ctx.info.heartbeatDetails as { cursor: ImportStageCursor | null } | undefined;
      let cursor = beat && 'cursor' in beat ? beat.cursor : input.cursor;
      const source = await sourceOf(input);
      return refusing(() => heartbeating(async (signal) => {
        const r = await stageImportChunk(sequelize(), input, {
          source, cursor: cursor ?? undefined, signal, until: Date.now() + chunkMs, xlsxUntil: Date.now() + xlsxChunkMs, chunkRows: deps.importStageRows,
          maxUncompressedBytes: deps.importMaxUncompressedBytes, caller: new PermissionSet(input.caller.fromRoles, input.caller.scopes),
          progress: (at) => {
            cursor = at;
            ctx.heartbeat({ cursor });
          },
        });
        return { cursor: r.cursor, done: r.done };
      }, () => ({ cursor })));
    },

    /** Merges staged chunks for about `importChunkMs`; chunks are recorded done in their own transactions, so a retry merges only the rest. */
    async mergeImportChunk(input: Ids & Pick<ImportInput, 'caller'>): Promise<ChunkReport<null> & { counts: ImportCounts }> {
      return refusing(() => heartbeating(async (signal) => {
        const r = await mergeImportChunk(sequelize(), input, {
          signal, until: Date.now() + chunkMs, chunkRows: deps.importMergeRows, concurrency: deps.importMergeConcurrency ?? 2,
          caller: new PermissionSet(input.caller.fromRoles, input.caller.scopes),
        });
        return { cursor: null, done: r.done, counts: r.counts };
      }));
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
