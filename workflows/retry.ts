// The retry policy of an activity that fails only while a dependency (Postgres, the file store, the Temporal
// server) is down: no attempt limit, so the workflow waits out an outage instead of failing the user's work;
// backoff from 1 s, capped at 30 s, so it resumes within half a minute of the outage ending. Activities give up
// on errors a retry cannot change themselves (ApplicationFailure with nonRetryable, or a type listed by the caller).
import type { RetryPolicy } from '@temporalio/workflow';

export const OUTAGE_RETRY: RetryPolicy = { initialInterval: '1 second', maximumInterval: '30 seconds' };
