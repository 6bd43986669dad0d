// Activities and outages. An infrastructure error (Postgres unreachable or restarting, Temporal unavailable,
// a serialization failure …) is left to Temporal, which retries it for as long as the outage lasts: the
// workflows' retry policies have no attempt limit. Any other error counts against a budget of attempts
// and becomes final (non-retryable) once the budget is spent, so a broken job still ends. Business
// refusals (ApplicationFailure.nonRetryable with a type) are final at once, as before.
import { CancelledFailure, Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { isInfrastructureError } from './dependency-errors';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyActivity = (...args: any[]) => Promise<unknown>;

/** Attempts an activity gets for errors that are not outages: a number, or read from the activity's input. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AttemptBudget = number | ((...args: any[]) => number);

/** The type of the final failure an activity gives up with, once its budget for other errors is spent. */
export const GAVE_UP = 'ActivityGaveUp';

const passesAsItIs = (err: unknown) => err instanceof ApplicationFailure || err instanceof CancelledFailure || isInfrastructureError(err);
// 0 (or less) means no limit, as in a Temporal retry policy.
const spent = (attempt: number, attempts: number) => attempts > 0 && attempt >= attempts;

const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));

function finalFailure(err: unknown): ApplicationFailure {
  const e = asError(err);
  return ApplicationFailure.create({ message: e.message, type: e.name === 'Error' ? GAVE_UP : e.name, nonRetryable: true, cause: e });
}

function wrap<A extends AnyActivity>(fn: A, budget: AttemptBudget): A {
  return (async (...args: Parameters<A>) => {
    try {
      return await fn(...args);
    } catch (err) {
      if (passesAsItIs(err)) throw err;
      const attempts = typeof budget === 'function' ? budget(...args) : budget;
      if (spent(Context.current().info.attempt, attempts)) throw finalFailure(err);
      throw err;
    }
  }) as A;
}

/**
 * The same rule for an activity that counts its own attempts, because some of its retries are not attempts (a
 * delivery that found no room in its tenant's send limit sent nothing): the error to throw on its `attempt`th real
 * attempt of `attempts`. Final once they are spent; before that an ApplicationFailure of the error's type, retryable,
 * which withOutageRetries passes on as it is (it counts Temporal's attempts, the waits among them).
 */
export function countedFailure(err: unknown, attempt: number, attempts: number): unknown {
  if (passesAsItIs(err)) return err;
  if (spent(attempt, attempts)) return finalFailure(err);
  const e = asError(err);
  return ApplicationFailure.create({ message: e.message, type: e.name, nonRetryable: false, cause: e });
}

/**
 * The activities with outage-aware retries: `budgets` names the attempts of an activity for errors that
 * are not outages (`default` for the rest).
 */
export function withOutageRetries<T extends Record<string, AnyActivity>>(activities: T, budgets: { default: number } & Record<string, AttemptBudget>): T {
  const out: Record<string, AnyActivity> = {};
  for (const [name, fn] of Object.entries(activities)) out[name] = wrap(fn, budgets[name] ?? budgets.default);
  return out as T;
}
