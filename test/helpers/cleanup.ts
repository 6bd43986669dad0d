// Ends what a test file left running in Temporal: the open workflows and the schedules of the tenants it
// built. Files share the task queues, so without this a later file's worker would pick up an earlier
// file's timers and runs, and results would depend on the order files run in.
import type { Client } from '@temporalio/client';

/** Tenant ids per query: a visibility query stays short. */
const CHUNK = 40;

export async function endTenantsWork(client: Client, tenantIds: string[]): Promise<{ workflows: number; schedules: number }> {
  let workflows = 0;
  for (let i = 0; i < tenantIds.length; i += CHUNK) {
    const ids = tenantIds.slice(i, i + CHUNK).map((t) => `"${t}"`).join(', ');
    const open: string[] = [];
    for await (const wf of client.workflow.list({ query: `TenantId IN (${ids}) AND ExecutionStatus = "Running"` })) open.push(wf.workflowId);
    // Already finished by the time we get to it is fine: that is what we want.
    await Promise.all(open.map((id) => client.workflow.getHandle(id).terminate('test file finished').catch(() => undefined)));
    workflows += open.length;
  }
  const tenants = new Set(tenantIds);
  const schedules: string[] = [];
  for await (const s of client.schedule.list()) {
    if (tenants.has(s.scheduleId.split(':')[1])) schedules.push(s.scheduleId);
  }
  await Promise.all(schedules.map((id) => client.schedule.getHandle(id).delete().catch(() => undefined)));
  return { workflows, schedules: schedules.length };
}
