// Shared definitions of the system workflows: deployment-wide housekeeping that acts on every tenant.
export const SYSTEM_TASK_QUEUE = 'docket-system';

/**
 * One per deployment (namespace); created, or its spec updated, by every worker serving the system queue at
 * boot, to run every RECONCILE_STARTS_EVERY_SECONDS.
 */
export const RECONCILE_STARTS_SCHEDULE_ID = 'system:reconcile-starts';

export interface ReconcileStartsResult {
  /** Workflows started for rows whose start was lost. */
  started: number;
  /** Intents removed without a start: the workflow existed, or the row was taken back or had moved on. */
  dropped: number;
  /** Job schedules Temporal held without a row, deleted. */
  schedulesRemoved: number;
  /** Job schedules whose header values stored plain were sealed (row and Temporal Schedule). */
  jobHeadersSealed: number;
}
