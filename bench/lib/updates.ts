// Bare Updates: temporal-ceiling.workflow.ts's smallest workflow answering Updates, polled by whatever worker serves
// `taskQueue`. The baseline of #18's signs ratio: temporal-ceiling.ts measures it on a fresh server of its own; the
// approvals suite on its own server, before and after its signs, on as many open workflows as it has open flows.
import type { Client } from '@temporalio/client';
import { bump, ceilingWorkflow } from '../experiments/temporal-ceiling.workflow';
import { cpuMeter, CpuUsage, ProcessGroups } from './cpu';
import { LoopResult, percentile, runConcurrent, samplesOf } from './measure';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface UpdateRun {
  ok: number;
  total: number;
  perSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  cpu: CpuUsage;
}

/** Starts `count` ceiling workflows (50 in flight) and waits until their first tasks have run (~100 a second here). */
export async function startCeilingWorkflows(client: Client, opts: { count: number; taskQueue: string; idPrefix: string }): Promise<{ ids: string[]; starts: LoopResult }> {
  const ids = Array.from({ length: opts.count }, (_, i) => `${opts.idPrefix}-${i}`);
  const starts = await runConcurrent(opts.count, 50, async (i) => { await client.workflow.start(ceilingWorkflow, { taskQueue: opts.taskQueue, workflowId: ids[i] }); });
  await sleep(15_000 + 10 * opts.count);
  return { ids, starts };
}

/** `updates` Updates, `concurrency` in flight, each to the workflow `pick(i)` names. */
export async function runUpdates(client: Client, opts: { updates: number; concurrency: number; pick: (i: number) => string; groups: ProcessGroups }): Promise<UpdateRun> {
  const meter = cpuMeter(opts.groups);
  const r = await runConcurrent(opts.updates, opts.concurrency, async (i) => {
    await client.workflow.getHandle(opts.pick(i)).executeUpdate(bump, { args: ['bench'] });
  });
  const cpu = meter();
  const sorted = [...samplesOf(r)].sort((a, b) => a - b);
  return { ok: r.ok, total: r.total, perSecond: r.perSecond, p50Ms: r.latencyMs.p50, p95Ms: percentile(sorted, 95), p99Ms: r.latencyMs.p99, cpu };
}

/** Spread over `ids` so consecutive Updates land on workflows far apart: with more open than the cache holds, each misses. */
export const spread = (ids: string[], offset = 0) => (i: number): string => ids[((i + offset) * 7919) % ids.length];
