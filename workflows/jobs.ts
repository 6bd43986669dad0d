// One run of a scheduled job: a row in job_runs (running → completed / failed / cancelled), the job
// itself as one heartbeating activity with the schedule's retry policy, and a timer that tells the schedule's
// long-run alert once if the job is still going when it fires. A cancelled run's end is written once its job has
// stopped (the job stops between batches), with what the job did until then.
import {
  ActivityCancellationType, ActivityFailure, ApplicationFailure, CancellationScope, CancelledFailure, condition, isCancellation, log,
  proxyActivities, uuid4, workflowInfo,
} from '@temporalio/workflow';
import type { JobActivities } from '../activities/jobs';
import { JOB_ENDS_WHEN_STOPPED_PATCH, JobRunInput, JobRunOutcome, LONG_RUN_ALERT_PATCH } from './jobs.api';
import { hasPatch } from './patches';
import { setWorkflowStatus } from './status';
import { OUTAGE_RETRY } from './retry';

// The run's rows are written whatever the outage: no attempt limit (the activities give up on other errors
// themselves, activities/index.ts).
const bookkeeping = proxyActivities<JobActivities>({ startToCloseTimeout: '30 seconds', retry: OUTAGE_RETRY });

/**
 * Waits `afterMs` for the run to end; if it has not, tells (once). A timer, so it survives worker restarts; cancelled
 * with the run (a cancelled run is not "long"). Best effort: an alert that cannot be sent (its activity gave up) is
 * logged and never fails, stalls or hides the run it is about.
 */
async function watchForLongRun(afterMs: number, ended: () => boolean, tell: () => Promise<void>): Promise<void> {
  try {
    if (!(await condition(ended, afterMs))) await tell();
  } catch (err) {
    if (!isCancellation(err)) log.warn('The long-run alert could not be sent', { error: String(err) });
  }
}

/** What a job that stopped when cancelled had done (the details of its CancelledFailure, activities/jobs.ts), if it says. */
function doneBeforeStop(err: unknown): Record<string, unknown> | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const done = cause instanceof CancelledFailure ? cause.details[0] : undefined;
  return done && typeof done === 'object' && !Array.isArray(done) ? done as Record<string, unknown> : undefined;
}

export async function jobRunWorkflow(input: JobRunInput): Promise<JobRunOutcome> {
  // Given by the API for a run it started (no random draw then: a schedule's runs replay as before).
  const runId = input.runId ?? uuid4();
  const workflowId = workflowInfo().workflowId;
  // Runs started before this replay as they ran: the row written before the try, a cancel's end written at once.
  const endsWhenStopped = hasPatch(input.patches, JOB_ENDS_WHEN_STOPPED_PATCH);
  const job = proxyActivities<JobActivities>({
    startToCloseTimeout: '1 hour',
    // Jobs heartbeat every 2 seconds (lib/batch.ts heartbeating): a lost worker is noticed, and a cancel reaches the
    // job with the answer to a heartbeat, which the worker sends at most every 0.8 × this timeout.
    heartbeatTimeout: endsWhenStopped ? '10 seconds' : '30 seconds',
    // The schedule's maximumAttempts is counted by the activity (runJob's `attempts`), for errors that are not
    // an outage of Docket's database or Temporal: those are waited out rather than failing the run.
    retry: {
      initialInterval: `${input.retry.initialIntervalSeconds} seconds`, backoffCoefficient: 2,
      nonRetryableErrorTypes: ['JobParamsError', 'OutboundBlockedError'],
    },
    // A cancelled run waits for its job to stop: nothing is deleted after the run reads cancelled.
    ...(endsWhenStopped ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
  });
  const startedAt = new Date().toISOString();
  const ref = { tenantId: input.tenantId, runId, workflowId };
  setWorkflowStatus('running', input.patches);
  const writeStarted = () => bookkeeping.jobRunStarted({ ...ref, scheduleId: input.scheduleId, jobType: input.jobType, startedAt });
  let started = endsWhenStopped ? undefined : await writeStarted();
  let ended = false;
  let watching: Promise<void> | undefined;
  // The job's result once it has returned: a run cancelled after that records it with its cancel.
  let result: Record<string, unknown> | undefined;
  try {
    // Not cancelled half way: a cancel that lands meanwhile is taken once the row is written, so the end written
    // next finds it (a schedule's run has no row before this).
    if (endsWhenStopped) started = await CancellationScope.nonCancellable(writeStarted);
    // Runs started before the alert existed replay without its timer.
    const alertAfterMs = hasPatch(input.patches, LONG_RUN_ALERT_PATCH) ? started?.longRunAlertMs ?? null : null;
    watching = alertAfterMs ? watchForLongRun(alertAfterMs, () => ended, () => bookkeeping.tellOfLongRun({ ...ref, afterSeconds: alertAfterMs / 1000 })) : undefined;
    try {
      result = await job.runJob({ tenantId: input.tenantId, jobType: input.jobType, params: input.params, attempts: input.retry.maximumAttempts });
    } finally {
      ended = true;
    }
    await watching; // an alert being sent is finished first: the run's history then ends with its outcome
    await bookkeeping.jobRunFinished({ ...ref, status: 'completed', result });
    setWorkflowStatus('completed', input.patches);
    return { runId, status: 'completed', result };
  } catch (err) {
    // Cancelled; with the patch also a job that failed or timed out while it was being cancelled (its worker gone).
    if (isCancellation(err) || (endsWhenStopped && CancellationScope.current().consideredCancelled)) {
      const done = endsWhenStopped ? result ?? doneBeforeStop(err) : undefined;
      await CancellationScope.nonCancellable(() => bookkeeping.jobRunFinished({ ...ref, status: 'cancelled', error: 'cancelled', ...(done ? { result: done } : {}) }));
      setWorkflowStatus('cancelled', input.patches);
      throw isCancellation(err) ? err : new CancelledFailure('cancelled', [], err as Error);
    }
    await watching;
    // Not failureMessage (workflows/failures.ts): that keeps the ActivityFailure's own message unless the cause is an
    // ApplicationFailure, so a timed-out job would read "Activity task timed out" instead of which timeout it was.
    const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
    const error = (cause as Error).message;
    await bookkeeping.jobRunFinished({ ...ref, status: 'failed', error });
    setWorkflowStatus('failed', input.patches);
    // The run fails in Temporal too, so the UI shows it red; the schedule keeps going.
    throw ApplicationFailure.nonRetryable(error, 'JobFailed');
  }
}
