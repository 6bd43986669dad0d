// The import workflow `imports:<tenant>:<id>`: staging chunks (parsing, then the set-based checks as `staging`),
// then merge chunks, on the batch kit (cancel between chunks, continue-as-new within the history budget). The
// history carries cursors and counts only, never rows.
import {
  ActivityCancellationType, ApplicationFailure, CancellationScope, condition, ContinueAsNew, continueAsNew, isCancellation,
  proxyActivities, setHandler,
} from '@temporalio/workflow';
import type { ImportActivities } from '../activities/imports';
import type { CommandAuthor } from '../lib/audit';
import { BatchControl, runBatch } from './batch';
import { endCancelledRun, failureCause, failureMessage } from './failures';
import {
  CANCEL_STAGING_PATCH, cancelImportUpdate, ImportInput, ImportOutcome, ImportRevertInput, ImportRevertOutcome, ImportStageCursor,
} from './imports.api';
import { CANCELLED_RUN_PATCH, hasPatch } from './patches';
import { setWorkflowStatus } from './status';
import { OUTAGE_RETRY } from './retry';

/** Where the run stands: staging (with the stage cursor) or merging (whose progress is in Postgres). */
type ImportCursor = { phase: 'staging'; stage: ImportStageCursor | null } | { phase: 'merging' };

// Chunks run for about 20 s and heartbeat their cursor: a dead worker is noticed after 10 s and another
// resumes from the cursor. No attempt limit here: the activities give up on errors that are not outages.
const chunks = proxyActivities<ImportActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
});
// With the input's list (CANCELLED_RUN_PATCH), a run cancelled from Temporal waits for its running merge chunk to
// stop (after the page it is writing) before it writes its end: no merged row lands after the counts are final.
// Histories without the list went on at once, and replay so.
const merging = proxyActivities<ImportActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
// A staging chunk that a cancel stops (see stopOnCancel) ends before the workflow goes on: no write of it lands
// after the run is recorded cancelled.
const staging = proxyActivities<ImportActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
const short = proxyActivities<ImportActivities>({
  startToCloseTimeout: '1 minute',
  retry: OUTAGE_RETRY,
});

// A revert is one transaction however many rows (all or nothing is what it promises), heartbeating while it runs:
// a dead worker's transaction rolls back and another worker runs it again.
const reverting = proxyActivities<ImportActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
});

function errorOf(err: unknown): { code: string; message: string; details?: unknown } {
  const cause = failureCause(err);
  if (cause instanceof ApplicationFailure && cause.type && /^[A-Z_]+$/.test(cause.type)) {
    const details = cause.details?.[0];
    return { code: cause.type, message: cause.message, ...(details ? { details } : {}) };
  }
  return { code: 'IMPORT_FAILED', message: failureMessage(err) };
}

/**
 * Runs a staging chunk that a cancel stops while it runs (through the activity's cancellation, delivered with a
 * heartbeat): reading an XLSX is one long chunk (a workbook cannot be seeked, so it is not cut at 20 s). Answers
 * undefined when the cancel stopped it.
 */
async function stopOnCancel<T>(control: BatchControl, known: readonly string[] | undefined, work: () => Promise<T>): Promise<T | undefined> {
  let settled = false;
  const scope = new CancellationScope();
  const running = scope.run(work);
  // A run cancelled from Temporal itself cancels this condition too (and the chunk, through its scope): caught, or
  // its rejection would fail every workflow task and the run would never end.
  void condition(() => settled || control.cancelled).then(() => {
    if (!settled && hasPatch(known, CANCEL_STAGING_PATCH)) scope.cancel();
  }, () => undefined);
  try {
    return await running;
  } catch (err) {
    if (control.cancelled && isCancellation(err)) return undefined;
    throw err;
  } finally {
    settled = true;
  }
}

export async function importWorkflow(input: ImportInput): Promise<ImportOutcome> {
  const { resume, ...base } = input;
  const ids = { tenantId: base.tenantId, importId: base.importId };
  const known = base.patches;
  const waitsOnCancel = known?.includes(CANCELLED_RUN_PATCH) === true;
  const control = new BatchControl(resume?.batch);
  let cancelledBy: CommandAuthor = base.by;
  setHandler(cancelImportUpdate, async ({ by }) => {
    cancelledBy = by;
    await control.cancel();
  }, { validator: (_cmd: { by: CommandAuthor }) => control.validate('cancel') });

  const end = async (phase: 'finished' | 'cancelled' | 'failed', by: CommandAuthor, error?: ReturnType<typeof errorOf>) => {
    await short.endImport({ ...ids, by, phase, error });
    setWorkflowStatus(phase, known);
  };

  try {
    const first: ImportCursor = resume?.phase === 'merging' ? { phase: 'merging' } : { phase: 'staging', stage: resume?.batch.cursor ?? null };
    const result = await runBatch<ImportCursor, { cursor: ImportCursor; done: boolean }>({
      resume: resume ? { cursor: first, paused: false } : undefined,
      control,
      known,
      historyBudget: base.historyBudget,
      async chunk(at) {
        const cur = at ?? first;
        if (cur.phase === 'staging') {
          setWorkflowStatus(cur.stage?.done ? 'staging' : 'parsing', known);
          const r = await stopOnCancel(control, known, () => staging.stageImportChunk({ ...ids, by: base.by, caller: base.caller, fileNeeds: base.fileNeeds, cursor: cur.stage }));
          // Stopped by a cancel: the loop applies it next.
          if (!r) return { cursor: cur, done: false };
          return { cursor: r.done ? { phase: 'merging' } : { phase: 'staging', stage: r.cursor }, done: false };
        }
        setWorkflowStatus('merging', known);
        const r = await (waitsOnCancel ? merging : chunks).mergeImportChunk({ ...ids, by: base.by, caller: base.caller, fileNeeds: base.fileNeeds });
        return { cursor: { phase: 'merging' }, done: r.done };
      },
      continueAsNew: (next) => {
        const at = next.cursor ?? first;
        return continueAsNew<typeof importWorkflow>({
          ...base,
          resume: at.phase === 'merging' ? { phase: 'merging', batch: { cursor: null, paused: false } } : { phase: 'staging', batch: { cursor: at.stage, paused: false } },
        });
      },
      // The cancel is written (phase, counts, its audit event) before the caller's Update answers.
      onControl: async (state) => { if (state === 'cancelled') await end('cancelled', cancelledBy); },
    });
    if (result.cancelled) return { phase: 'cancelled' };
    await end('finished', base.by);
    return { phase: 'finished' };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    // Cancelled from Temporal itself (the UI, the CLI).
    if (await endCancelledRun(err, known, (by) => end('cancelled', by))) return { phase: 'cancelled' };
    const error = errorOf(err);
    await end('failed', base.by, error);
    return { phase: 'failed', error: { code: error.code, message: error.message } };
  }
}

/**
 * Reverts a finished or cancelled import, `import-reverts:<tenant>:<import id>`: the rows it created go and the fields
 * it overwrote come back, in one transaction — or it is refused (a row changed since, the asker may not) and nothing
 * changes. Either way the outcome is written on the import and returned (the API waits a little for it).
 */
export async function importRevertWorkflow(input: ImportRevertInput): Promise<ImportRevertOutcome> {
  setWorkflowStatus('reverting');
  let outcome: ImportRevertOutcome;
  try {
    outcome = await reverting.revertImport(input);
  } catch (err) {
    // Its attempts spent on an error that is not an outage: nothing was reverted (each attempt is one transaction).
    const { code, message } = errorOf(err);
    outcome = await short.recordRevertFailure({ tenantId: input.tenantId, importId: input.importId, error: { code: 'IMPORT_REVERT_FAILED', message: code === 'IMPORT_FAILED' ? message : `${code}: ${message}` } });
  }
  setWorkflowStatus(outcome.error ? 'refused' : 'reverted');
  return outcome;
}
