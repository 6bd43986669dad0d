// Bare timer firing: `count` of temporal-ceiling.workflow.ts's smallest workflows due spread over one minute, fired by
// whatever worker polls `taskQueue`. It is the baseline of #18's firing ratio. temporal-ceiling.ts measures it on a
// fresh server of its own; the reminders suite measures it on its own server, before and after Docket's firing, so
// both sides fire on a server that is equally full.
import type { Client } from '@temporalio/client';
import { timerWorkflow, timerWriteWorkflow } from '../experiments/temporal-ceiling.workflow';
import { cpuMeter, CpuUsage, ProcessGroups } from './cpu';
import { percentile, runConcurrent } from './measure';
import { round } from './stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TimerRun {
  /** Workflows started per second (50 in flight). */
  starts: number;
  fired: number;
  /** Rows the floor's workflows wrote (`write`), counted by the caller's `written`. */
  written?: number;
  latenessMs: { p50: number; p95: number; p99: number; max: number };
  /** From the first due time until the last timer's workflow task ran: 5,000 over ~60 s is a server that keeps up. */
  firedOverSeconds: number;
  /** From the first due time until every result was in. */
  cpu: CpuUsage;
}

/**
 * Starts `count` timer workflows due spread over one minute that begins once all have started (at 50 in flight) and
 * their first tasks ran, with a minute's margin; waits for every result. With `write`, each firing also records
 * itself in Postgres through the worker's `record` local activity (the floor: the least a durable firing does).
 */
export async function fireTimers(client: Client, opts: {
  count: number; taskQueue: string; idPrefix: string; groups: ProcessGroups; write?: boolean; written?: () => Promise<number>;
}): Promise<TimerRun> {
  const t0 = Date.now() + Math.ceil((opts.count / 60) * 1000) + 60_000;
  const started: { id: string; due: number }[] = [];
  const starts = await runConcurrent(opts.count, 50, async (i) => {
    const id = `${opts.idPrefix}-${i}`;
    const due = t0 + Math.floor((i * 60_000) / opts.count);
    if (opts.write) await client.workflow.start(timerWriteWorkflow, { taskQueue: opts.taskQueue, workflowId: id, args: [due, id] });
    else await client.workflow.start(timerWorkflow, { taskQueue: opts.taskQueue, workflowId: id, args: [due] });
    started.push({ id, due });
  });
  await sleep(Math.max(0, t0 - Date.now()));
  const meter = cpuMeter(opts.groups);
  const late: number[] = [];
  let lastFired = t0;
  await runConcurrent(started.length, 50, async (i) => {
    const ms = await client.workflow.getHandle<typeof timerWorkflow>(started[i].id).result();
    late.push(ms);
    lastFired = Math.max(lastFired, started[i].due + ms);
  });
  const cpu = meter();
  late.sort((a, b) => a - b);
  return {
    starts: starts.perSecond, fired: late.length, ...(opts.written ? { written: await opts.written() } : {}),
    latenessMs: { p50: percentile(late, 50), p95: percentile(late, 95), p99: percentile(late, 99), max: late[late.length - 1] ?? 0 },
    firedOverSeconds: round((lastFired - t0) / 1000, 1), cpu,
  };
}
