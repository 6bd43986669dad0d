// The smallest workflows for temporal-ceiling.ts: what the Temporal server and a worker cost per Update and
// per timer firing, with no Docket code (no activity, no Postgres, no search attributes).
import { condition, defineUpdate, setHandler, sleep } from '@temporalio/workflow';

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
