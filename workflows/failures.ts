// How a workflow records a failed step: what made it fail (the ApplicationFailure an activity threw, which Temporal
// wraps in an ActivityFailure, else the error itself), and a run cancelled from Temporal's own UI or CLI.
import { ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import { setWorkflowStatus } from './status';

export function failureCause(err: unknown): unknown {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : err;
}

export function failureMessage(err: unknown): string {
  const cause = failureCause(err);
  return cause instanceof Error ? cause.message : String(cause);
}

/** Runs cancelled before `endCancelled` existed left their row as it was and replay so. */
const CANCELLED_WRITE_PATCH = 'cancelled-write';

/**
 * For a run cancelled from Temporal itself (the UI, the CLI), which Docket's API never does to these kinds: records
 * the work as failed with 'cancelled in Temporal' (outside the cancelled scope, which would refuse the write, so the
 * row does not stay `running` for ever), sets Status `failed`, and rethrows, so the run still ends cancelled. Any
 * other error returns, for the caller's own failure path.
 */
export async function endCancelled(err: unknown, markFailed: (error: string) => Promise<void>): Promise<void> {
  if (!isCancellation(err) || !patched(CANCELLED_WRITE_PATCH)) return;
  await CancellationScope.nonCancellable(() => markFailed('cancelled in Temporal'));
  setWorkflowStatus('failed');
  throw err;
}
