// Document jobs: one workflow per document (render → store → ready|failed) and one per batch, which
// renders its items chunk by chunk on the batch kit (bounded concurrency inside the activity, progress
// after every chunk, continue-as-new to keep its history small).
import { ActivityCancellationType, CancellationScope, ContinueAsNew, continueAsNew, isCancellation, log, proxyActivities } from '@temporalio/workflow';
import type { DocumentActivities } from '../activities/documents';
import { runBatch } from './batch';
import { endCancelled, failureMessage } from './failures';
import { BATCH_FAILED_WRITE_PATCH, BatchInput, BatchResult, DocumentJobInput, DocumentJobResult, PreviewInput, TEMPLATE_RENDER_ERROR } from './documents.api';
import { CANCELLED_WRITE_PATCH, hasPatch } from './patches';
import { setWorkflowStatus } from './status';
import { OUTAGE_RETRY } from './retry';

// No attempt limit anywhere here: a database or Temporal outage is retried until it is over, so an accepted
// document never fails for it; the activities give up on any other error themselves (activities/index.ts).
const short = proxyActivities<DocumentActivities>({
  startToCloseTimeout: '1 minute',
  retry: OUTAGE_RETRY,
});

// A template that cannot render fails at once; a crashed browser or worker is retried (a dead worker
// is noticed by its missing heartbeats, which the activities send every 5 s while they render).
const render = proxyActivities<DocumentActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: [TEMPLATE_RENDER_ERROR] },
});

// A chunk heartbeats after every item: a dead worker is noticed after the heartbeat timeout and
// another worker carries on with the items not yet stored.
const CHUNK = { startToCloseTimeout: '30 minutes', heartbeatTimeout: '15 seconds', retry: OUTAGE_RETRY } as const;
const chunk = proxyActivities<DocumentActivities>(CHUNK);
// Batches started with CANCELLED_WRITE_PATCH: a cancelled chunk is waited for (it stops starting items and ends within
// the renders it has under way), so no item it renders lands after the batch's end is written.
const chunkWaitingOnCancel = proxyActivities<DocumentActivities>({ ...CHUNK, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });

export async function documentWorkflow(input: DocumentJobInput): Promise<DocumentJobResult> {
  setWorkflowStatus('rendering');
  try {
    const { fileId } = await render.renderDocument(input);
    setWorkflowStatus('ready');
    return { status: 'ready', fileId };
  } catch (err) {
    await endCancelled(err, (error) => short.failDocument({ ...input, error }), { known: input.patches });
    const error = failureMessage(err);
    await short.failDocument({ ...input, error });
    setWorkflowStatus('failed');
    return { status: 'failed', error };
  }
}

/** Chunks per run before continuing as new (each chunk adds ~6 history events). */
const CHUNKS_PER_RUN = 100;

/**
 * A batch cancelled in Temporal (the UI, the CLI; the API has no cancel for batches) ends like one that finished: its
 * items not rendered are failed with 'cancelled in Temporal', the batch is ready with its counts (its
 * document_batch.finished event says them), Status `cancelled`; the run ends cancelled. A batch whose run fails (a
 * step gave up after its attempts, e.g. Chromium never started) ends the same way with the failure's message instead
 * (BATCH_FAILED_WRITE_PATCH), Status `failed`; the run still fails.
 */
export async function documentBatchWorkflow(input: BatchInput): Promise<BatchResult> {
  const { batch, resumed, ...base } = input;
  const chunks = base.patches?.includes(CANCELLED_WRITE_PATCH) ? chunkWaitingOnCancel : chunk;
  setWorkflowStatus('running');
  try {
    if (!resumed) await short.markBatchRunning(base);
    await runBatch({
      resume: batch,
      maxChunksPerRun: CHUNKS_PER_RUN,
      chunk: async (cursor) => {
        const r = await chunks.renderBatchChunk({ ...base, cursor });
        // Results recorded before the batch kit carry only `remaining`.
        return { ...r, cursor: r.cursor ?? null, done: r.done ?? r.remaining === 0 };
      },
      continueAsNew: (next) => continueAsNew<typeof documentBatchWorkflow>({ ...base, resumed: true, batch: next }),
    });
    const result = await short.finishBatch(base);
    setWorkflowStatus('ready');
    return { status: 'ready', ...result };
  } catch (err) {
    // ContinueAsNew is no cancellation: it goes on up.
    await endCancelled(err, (error) => short.cancelBatch({ ...base, error }).then(() => undefined), { known: base.patches, status: 'cancelled' });
    // Any other failure: the batch's end, outside any cancelled scope (a cancel that comes meanwhile does not stop the
    // write), then the run fails with what made it fail. Batches that failed before the patch replay without it.
    if (!(err instanceof ContinueAsNew) && !isCancellation(err) && hasPatch(base.patches, BATCH_FAILED_WRITE_PATCH)) {
      const error = failureMessage(err);
      // If the end cannot be written either (the step that gave up was finishBatch), the run still fails with what
      // made it fail; the second failure is logged.
      await CancellationScope.nonCancellable(() => short.cancelBatch({ ...base, error }))
        .catch((e: unknown) => log.warn('the failed batch\'s end could not be written', { error: (e as Error).message }));
      setWorkflowStatus('failed');
    }
    throw err;
  }
}

/** A PDF preview: rendered by the worker's pool, returned (base64) to the caller, stored nowhere. */
export async function documentPreviewWorkflow(input: PreviewInput): Promise<string> {
  return render.renderPreview(input);
}
