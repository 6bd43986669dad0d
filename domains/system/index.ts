// System: deployment-wide housekeeping on every tenant — the start reconciler (lost workflow starts, job
// schedules left without their row, job header values stored plain), on its own queue and Schedule
// (workers/system-schedules.ts).
import { createSystemActivities } from '../../activities/system';
import { SYSTEM_TASK_QUEUE } from '../../workflows/system.api';
import { defineDomain } from '../module';

export const system = defineDomain({
  name: 'system',
  queues: { system: SYSTEM_TASK_QUEUE },
  activities: createSystemActivities,
  // The next scheduled run (a minute later) tries again anyway.
  attempts: { reconcileWorkflowStarts: 3, removeOrphanJobSchedules: 3, sealStoredJobHeaders: 3 },
});
