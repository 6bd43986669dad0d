// One run of a scheduled job: a row in job_runs (running → completed / failed / cancelled), the job
// itself as one heartbeating activity with the schedule's retry policy.
import {
  ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, proxyActivities, uuid4, workflowInfo,
} from '@temporalio/workflow';
import type { JobActivities } from '../activities/jobs';
import { JobRunInput, JobRunOutcome } from './jobs.api';
import { setWorkflowStatus } from './status';
import { OUTAGE_RETRY } from './retry';

// The run's rows are written whatever the outage: no attempt limit (the activities give up on other errors
// themselves, activities/index.ts).
const bookkeeping = proxyActivities<JobActivities>({ startToCloseTimeout: '30 seconds', retry: OUTAGE_RETRY });

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
  setWorkflowStatus('running');
  await bookkeeping.jobRunStarted({ ...ref, scheduleId: input.scheduleId, jobType: input.jobType, startedAt });
  try {
    const result = await job.runJob({ tenantId: input.tenantId, jobType: input.jobType, params: input.params, attempts: input.retry.maximumAttempts });
    await bookkeeping.jobRunFinished({ ...ref, status: 'completed', result });
    setWorkflowStatus('completed');
    return { runId, status: 'completed', result };
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => bookkeeping.jobRunFinished({ ...ref, status: 'cancelled', error: 'cancelled' }));
      setWorkflowStatus('cancelled');
      throw err;
    }
    const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
    const error = (cause as Error).message;
    await bookkeeping.jobRunFinished({ ...ref, status: 'failed', error });
    setWorkflowStatus('failed');
    // The run fails in Temporal too, so the UI shows it red; the schedule keeps going.
    throw ApplicationFailure.nonRetryable(error, 'JobFailed');
  }
}
