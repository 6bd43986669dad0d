// How a workflow records a failed step: what made it fail (the ApplicationFailure an activity threw, which Temporal
// wraps in an ActivityFailure, else the error itself), and a run cancelled from Temporal's own UI or CLI.
import { ActivityFailure, ApplicationFailure, CancellationScope, CancelledFailure, isCancellation } from '@temporalio/workflow';
import type { CommandAuthor } from '../lib/audit';
import { CANCELLED_RUN_PATCH, CANCELLED_WRITE_PATCH, hasPatch } from './patches';
import { setWorkflowStatus } from './status';

export function failureCause(err: unknown): unknown {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : err;
}

export function failureMessage(err: unknown): string {
  const cause = failureCause(err);
  return cause instanceof Error ? cause.message : String(cause);
}

/** What a run cancelled from Temporal itself records as the reason its work did not finish. */
export const CANCELLED_IN_TEMPORAL = 'cancelled in Temporal';

/**
 * For a run cancelled from Temporal itself (the UI, the CLI), which Docket's API never does to these kinds: records
 * the work as failed with 'cancelled in Temporal' (outside the cancelled scope, which would refuse the write, so the
 * row does not stay `running` for ever), sets Status (`failed` unless `status` says otherwise), and rethrows, so the
 * run still ends cancelled. An activity that fails while the run is being cancelled counts as cancelled too (one
 * that waits for its cancellation to complete times out instead when its worker is gone). Any other error returns,
 * for the caller's own failure path. `known`: the patches the workflow's input names (workflows/patches.ts).
 */
export async function endCancelled(err: unknown, markFailed: (error: string) => Promise<void>, opts: { known?: readonly string[]; status?: string } = {}): Promise<void> {
  const cancelled = isCancellation(err) || CancellationScope.current().consideredCancelled;
  if (!cancelled || !hasPatch(opts.known, CANCELLED_WRITE_PATCH)) return;
  await CancellationScope.nonCancellable(() => markFailed(CANCELLED_IN_TEMPORAL));
  setWorkflowStatus(opts.status ?? 'failed', opts.known);
  throw isCancellation(err) ? err : new CancelledFailure(CANCELLED_IN_TEMPORAL, [], err as Error);
}

/**
 * For a run that writes its own end when cancelled from Temporal itself (a reminder, an approval flow): with
 * CANCELLED_WRITE_PATCH, `writeEnd` runs outside the cancelled scope (which would refuse the write); the error is
 * rethrown either way, so the run still ends as it would have.
 */
export async function writeEndIfCancelled(err: unknown, known: readonly string[] | undefined, writeEnd: () => Promise<void>): Promise<never> {
  // isCancellation first: the patch is only checked (and marked) for a cancel, as the code before this helper did.
  if (isCancellation(err) && hasPatch(known, CANCELLED_WRITE_PATCH)) await CancellationScope.nonCancellable(writeEnd);
  throw err;
}

/** Who the end of a run cancelled from Temporal names. */
export const SYSTEM: CommandAuthor = { actor: { type: 'system', id: null }, requestId: null };

/**
 * For an import or a campaign cancelled from Temporal itself (the UI, the CLI): records the cancel as the system's
 * (`recordCancelled`, outside the cancelled scope), then rethrows, so the run ends cancelled; runs from before
 * CANCELLED_RUN_PATCH completed instead, and for them this answers true (the caller returns its cancelled outcome).
 * With the input's list (`known`), a step that failed while the run was being cancelled counts as cancelled too (a
 * chunk waited for times out when its worker is gone). Any other error: false, for the caller's own failure path.
 */
export async function endCancelledRun(err: unknown, known: readonly string[] | undefined, recordCancelled: (by: CommandAuthor) => Promise<void>): Promise<boolean> {
  const listed = known?.includes(CANCELLED_RUN_PATCH) === true;
  if (!isCancellation(err) && !(listed && CancellationScope.current().consideredCancelled)) return false;
  await CancellationScope.nonCancellable(() => recordCancelled(SYSTEM));
  if (hasPatch(known, CANCELLED_RUN_PATCH)) throw isCancellation(err) ? err : new CancelledFailure(CANCELLED_IN_TEMPORAL, [], err as Error);
  return true;
}
