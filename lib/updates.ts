// Commands to a running workflow are Temporal Updates: the workflow's validator refuses a bad one at once
// (nothing is written to its history). One place turns those refusals into the API's errors.
import { WorkflowHandle, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, UpdateDefinition } from '@temporalio/common';
import { ApiError } from './problems';

export interface Refusals {
  /** The refusal types the workflow's validators throw (ApplicationFailure.type) and the status each answers with. */
  statuses: Readonly<Record<string, number>>;
  /** The refusal when the workflow has ended (completed, or no longer there). */
  closed: () => ApiError;
}

/**
 * Runs `update` on the workflow and answers its result. A refusal becomes an ApiError with its own code and
 * status; a workflow that has ended, `refusals.closed()`. Anything else — Temporal unreachable included, which
 * the API answers 503 — is thrown as it is.
 */
export async function executeCommand<Ret, Args extends unknown[]>(
  handle: WorkflowHandle, update: UpdateDefinition<Ret, Args>, args: Args, refusals: Refusals,
): Promise<Ret> {
  try {
    // The SDK overloads executeUpdate on whether there are arguments; both take { args }.
    const execute = handle.executeUpdate.bind(handle) as (def: UpdateDefinition<Ret, Args>, options: { args: Args }) => Promise<Ret>;
    return await execute(update, { args });
  } catch (err) {
    const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type && Object.hasOwn(refusals.statuses, cause.type)) {
      throw new ApiError(refusals.statuses[cause.type], cause.type, cause.message);
    }
    if (err instanceof WorkflowNotFoundError || /already completed/i.test((err as Error).message)) throw refusals.closed();
    throw err;
  }
}
