// What made a workflow's step fail, as it records it: the ApplicationFailure an activity threw (Temporal wraps it in
// an ActivityFailure), else the error itself. Deterministic: it only reads the error.
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

export function failureCause(err: unknown): unknown {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : err;
}

export function failureMessage(err: unknown): string {
  const cause = failureCause(err);
  return cause instanceof Error ? cause.message : String(cause);
}

/** What an export records as its error when its run was cancelled from Temporal (the UI, the CLI). */
export const CANCELLED_MESSAGE = 'cancelled in Temporal';
