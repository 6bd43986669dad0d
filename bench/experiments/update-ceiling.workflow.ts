// The smallest workflow that answers an Update: what one Update round trip costs the Temporal server and
// a worker, with no Docket code (no activity, no Postgres, no search attributes). See update-ceiling.ts.
import { condition, defineUpdate, setHandler } from '@temporalio/workflow';

export const bump = defineUpdate<number, [string]>('bump');

export async function ceilingWorkflow(): Promise<void> {
  let count = 0;
  setHandler(bump, () => ++count, { validator: (who) => { if (!who) throw new Error('who?'); } });
  await condition(() => false);
}
