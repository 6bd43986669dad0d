// Scheduled jobs: the shared definitions of the job run workflow that Temporal Schedules start.
import { STATUS_UPSERT_PATCH } from './patches';

export const JOBS_TASK_QUEUE = 'docket-jobs';
export const JOBS_DOMAIN = 'jobs';
/** Runs started before the long-run alert existed replay without its timer. */
export const LONG_RUN_ALERT_PATCH = 'job-long-run-alert';
/**
 * A run's end is written once its job has stopped: a cancel waits for the job to stop (between batches) and records
 * what it did, and the run's row is written inside the run's failure and cancel handling. Runs started before
 * replay as they ran (the end written at once; the row written before).
 */
export const JOB_ENDS_WHEN_STOPPED_PATCH = 'job-ends-when-stopped';
/**
 * The patches the job run's code has, named in the input of every run the API starts and of every schedule it
 * writes, so a run takes their paths without patched() (workflows/patches.ts).
 */
export const JOB_PATCHES = [LONG_RUN_ALERT_PATCH, STATUS_UPSERT_PATCH, JOB_ENDS_WHEN_STOPPED_PATCH];

export interface JobRetry {
  maximumAttempts: number;
  initialIntervalSeconds: number;
}

export interface JobRunInput {
  tenantId: string;
  /** Null for a run not started by a schedule. */
  scheduleId: string | null;
  /** The run's id when the API started it (its row exists already); a schedule's runs make their own. */
  runId?: string;
  jobType: string;
  params: Record<string, unknown>;
  retry: JobRetry;
  /** The patches the starting code had (JOB_PATCHES): their new paths are taken without patched(). */
  patches?: string[];
}

export interface JobRunOutcome {
  runId: string;
  status: 'completed' | 'failed' | 'cancelled';
  result?: Record<string, unknown>;
  error?: string;
}
