// One run of a scheduled job: a row in job_runs (running → completed / failed / cancelled), the job
// itself as one heartbeating activity with the schedule's retry policy, and a timer that tells the schedule's
// long-run alert once if the job is still going when it fires.
import {
  ActivityFailure, ApplicationFailure, CancellationScope, condition, isCancellation, log, proxyActivities, uuid4, workflowInfo,
} from '@temporalio/workflow';
import type { JobActivities } from '../activities/jobs';
import { JobRunInput, JobRunOutcome, LONG_RUN_ALERT_PATCH } from './jobs.api';
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

export async function jobRunWorkflow(input: JobRunInput): Promise<JobRunOutcome> {
  // Given by the API for a run it started (no random draw then: a schedule's runs replay as before).
  const runId = input.runId ?? uuid4();
  const workflowId = workflowInfo().workflowId;
  const job = proxyActivities<JobActivities>({
    startToCloseTimeout: '1 hour',
    // Jobs heartbeat at least every few seconds: a lost worker is noticed, and a cancel reaches the job.
    heartbeatTimeout: '30 seconds',
    // The schedule's maximumAttempts is counted by the activity (runJob's `attempts`), for errors that are not
    // an outage of Docket's database or Temporal: those are waited out rather than failing the run.
    retry: {
      initialInterval: `${input.retry.initialIntervalSeconds} seconds`, backoffCoefficient: 2,
      nonRetryableErrorTypes: ['JobParamsError', 'OutboundBlockedError'],
    },
  });
  const startedAt = new Date().toISOString();
  const ref = { tenantId: input.tenantId, runId, workflowId };
  setWorkflowStatus('running', input.patches);
  const started = await bookkeeping.jobRunStarted({ ...ref, scheduleId: input.scheduleId, jobType: input.jobType, startedAt });
  // Runs started before the alert existed replay without its timer.
  const alertAfterMs = hasPatch(input.patches, LONG_RUN_ALERT_PATCH) ? started?.longRunAlertMs ?? null : null;
  let ended = false;
  const watching = alertAfterMs ? watchForLongRun(alertAfterMs, () => ended, () => bookkeeping.tellOfLongRun({ ...ref, afterSeconds: alertAfterMs / 1000 })) : undefined;
  try {
    let result: Record<string, unknown>;
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
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => bookkeeping.jobRunFinished({ ...ref, status: 'cancelled', error: 'cancelled' }));
      setWorkflowStatus('cancelled', input.patches);
      throw err;
    }
    await watching;
    const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
    const error = (cause as Error).message;
    await bookkeeping.jobRunFinished({ ...ref, status: 'failed', error });
    setWorkflowStatus('failed', input.patches);
    // The run fails in Temporal too, so the UI shows it red; the schedule keeps going.
    throw ApplicationFailure.nonRetryable(error, 'JobFailed');
  }
}
