// System workflows, run by their Schedules (workers/system-schedules.ts): deterministic shells around one activity.
import { proxyActivities } from '@temporalio/workflow';
import type { SystemActivities } from '../activities/system';
import type { ReconcileStartsResult } from './system.api';
import { OUTAGE_RETRY } from './retry';

const acts = proxyActivities<SystemActivities>({
  startToCloseTimeout: '10 minutes',
  // It heartbeats after every intent: a dead worker's run is taken over within a minute.
  heartbeatTimeout: '1 minute',
  retry: OUTAGE_RETRY,
});

/**
 * Starts the workflows whose start was lost between their row's commit and the start, removes the job
 * schedules left without a row, and seals job header values stored plain (see activities/system.ts).
 */
export async function reconcileStartsWorkflow(): Promise<ReconcileStartsResult> {
  const starts = await acts.reconcileWorkflowStarts();
  const schedulesRemoved = await acts.removeOrphanJobSchedules();
  // Last: a run begun before this step existed replays its commands as they were, then takes it.
  return { ...starts, schedulesRemoved, jobHeadersSealed: await acts.sealStoredJobHeaders() };
}
