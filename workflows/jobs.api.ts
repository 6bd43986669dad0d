// Scheduled jobs: the shared definitions of the job run workflow that Temporal Schedules start.
export const JOBS_TASK_QUEUE = 'docket-jobs';
export const JOBS_DOMAIN = 'jobs';

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
}

export interface JobRunOutcome {
  runId: string;
  status: 'completed' | 'failed' | 'cancelled';
  result?: Record<string, unknown>;
  error?: string;
}
