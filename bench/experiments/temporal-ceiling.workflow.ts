// The smallest workflows for temporal-ceiling.ts: what the Temporal server and a worker cost per Update and
// per timer firing, with no Docket code (no activity, no Postgres, no search attributes).
import { condition, defineUpdate, proxyLocalActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';

export const bump = defineUpdate<number, [string]>('bump');

/** Answers Updates, forever. */
export async function ceilingWorkflow(): Promise<void> {
  let count = 0;
  setHandler(bump, () => ++count, { validator: (who) => { if (!who) throw new Error('who?'); } });
  await condition(() => false);
}

/** Sleeps until `dueMs`, then answers how late its workflow task ran (workflow time is the task's start). */
export async function timerWorkflow(dueMs: number): Promise<number> {
  await sleep(Math.max(1, dueMs - Date.now()));
  return Date.now() - dueMs;
}

export interface FloorActivities { record(id: string): Promise<void> }
const { record } = proxyLocalActivities<FloorActivities>({ startToCloseTimeout: '10 seconds' });

/**
 * ceilingWorkflow plus the least a durable sign must do: record it in Postgres (one idempotent INSERT, as a local
 * activity, as Docket's read-model write is) before the Update answers. The floor under the signs' target.
 */
export async function ceilingWriteWorkflow(): Promise<void> {
  let count = 0;
  setHandler(bump, async () => {
    const n = ++count;
    await record(`${workflowInfo().workflowId}:${n}`);
    return n;
  }, { validator: (who) => { if (!who) throw new Error('who?'); } });
  await condition(() => false);
}

/**
 * timerWorkflow plus the least a durable firing must do: record it in Postgres (one idempotent INSERT, as a local
 * activity, as a Docket reminder's in-app delivery is). The floor under the reminders' firing target.
 */
export async function timerWriteWorkflow(dueMs: number, id: string): Promise<number> {
  await sleep(Math.max(1, dueMs - Date.now()));
  const late = Date.now() - dueMs;
  await record(id);
  return late;
}
