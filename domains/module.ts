// A domain's registration: what it adds to the database, the workers and the API, declared in its own
// domains/<domain>/index.ts. domains/index.ts lists the domains; db/index.ts, workers/queues.ts,
// activities/index.ts and api/app.ts read that list, so adding a domain touches no other central file.
import type { Sequelize } from 'sequelize';
import type { ActivityDeps } from '../activities/deps';
import type { RouteDeps, RouteHandlers } from '../api/types';
import type { AttemptBudget } from '../lib/activity-retries';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ActivityFunction = (...args: any[]) => Promise<unknown>;

/**
 * A workflow whose start the API records as an intent beside the row it owns (lib/temporal.ts startIntent),
 * so the start reconciler (activities/system.ts) can make a start the API lost: the row's table, its audit
 * entity type, and the SQL condition under which the row still waits for its workflow.
 */
export interface StartIntentRow {
  table: string;
  entityType: string;
  waiting: string;
  /**
   * The row owns successive runs of one workflow id (a campaign's send, then each retry of its failed recipients):
   * a closed earlier run is not this intent's start, so only a running workflow (or `waiting` false) drops it.
   */
  runs?: boolean;
}

export interface DomainModule {
  name: string;
  /** Initialises its Sequelize models (db/models/<domain>.ts) on a connection. */
  models?: (sequelize: Sequelize) => void;
  /** Its task queues by short name (the names WORKER_QUEUES picks). */
  queues?: Readonly<Record<string, string>>;
  /** Its activities (activities/<domain>.ts), built from the worker's dependencies. */
  activities?: (deps: ActivityDeps) => Record<string, ActivityFunction>;
  /** Attempts its activities get for errors that are not outages (lib/activity-retries.ts); others get the default. */
  attempts?: Readonly<Record<string, AttemptBudget>>;
  /** Its workflows started with a start intent, by workflow type (what the start reconciler may recover). */
  startIntents?: Readonly<Record<string, StartIntentRow>>;
  /** Its operations' handlers (api/routes/<domain>.ts), by operationId. */
  routes?: (deps: RouteDeps) => RouteHandlers;
}

export type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** A domain module, its declarations' own types kept (so merged activities and routes stay typed). */
export const defineDomain = <const M extends DomainModule>(m: M): M => m;

/**
 * Merges what each domain declares under one kind (queues, activities, routes …) into one record; a name
 * declared by two domains is a mistake that would silently shadow one of them, so it fails at start.
 */
export function mergeDeclared<T>(kind: string, parts: readonly { domain: string; declared: Readonly<Record<string, T>> }[]): Record<string, T> {
  const merged: Record<string, T> = {};
  const owner: Record<string, string> = {};
  for (const { domain, declared } of parts) {
    for (const [name, value] of Object.entries(declared)) {
      if (Object.hasOwn(owner, name)) throw new Error(`${kind} "${name}" is declared by both ${owner[name]} and ${domain}`);
      owner[name] = domain;
      merged[name] = value;
    }
  }
  return merged;
}
