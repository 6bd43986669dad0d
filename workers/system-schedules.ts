// The deployment's system Schedules (one per namespace, acting on every tenant), made sure of at worker boot.
import { Client, ScheduleAlreadyRunning, ScheduleOptions, ScheduleOverlapPolicy } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Config } from '../config';
import { ENTITY_ID, ENTITY_TYPE } from '../workflows/search-attributes';
import { RECONCILE_STARTS_SCHEDULE_ID, SYSTEM_TASK_QUEUE } from '../workflows/system.api';

/**
 * Creates the start reconciler's Schedule, or brings an existing one's spec and action up to date: every
 * worker serving the system queue does this at boot, so several booting at once are fine (one creates,
 * the others update to the same). Its runs never overlap. No TenantId: it belongs to no tenant.
 */
export async function ensureSystemSchedules(client: Client, everySeconds: number): Promise<void> {
  const attributes = [{ key: ENTITY_TYPE, value: 'system' }, { key: ENTITY_ID, value: 'reconcile-starts' }];
  const options = {
    spec: { intervals: [{ every: `${everySeconds} seconds` }] },
    action: {
      type: 'startWorkflow', workflowType: 'reconcileStartsWorkflow', taskQueue: SYSTEM_TASK_QUEUE, args: [],
      // Temporal appends the scheduled time: system:reconcile-starts-<time>.
      workflowId: RECONCILE_STARTS_SCHEDULE_ID, typedSearchAttributes: attributes,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
  } as Omit<ScheduleOptions, 'scheduleId'>;
  try {
    await client.schedule.create({ scheduleId: RECONCILE_STARTS_SCHEDULE_ID, ...options, typedSearchAttributes: attributes });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(RECONCILE_STARTS_SCHEDULE_ID).update((prev) => ({ ...prev, spec: options.spec, action: options.action, policies: options.policies } as typeof prev));
  }
}

/** At a worker's boot: if it serves the system queue, it makes sure of the system Schedules. */
export async function ensureSystemSchedulesIfServed(connection: NativeConnection, config: Config, queues: string[]): Promise<void> {
  if (queues.includes(SYSTEM_TASK_QUEUE)) await ensureSystemSchedules(new Client({ connection, namespace: config.temporal.namespace }), config.reconcileStartsEverySeconds);
}
