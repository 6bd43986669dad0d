// Experiment, not a suite: the ceiling of a Temporal Update round trip on this machine's dev server, with
// nothing of Docket in the way. It bounds what the approvals "sign" target (p95 < 150 ms at 50 concurrent
// approvers) can reach here: a sign is this round trip plus Docket's validation, read-model write and HTTP.
//
//   npx tsx bench/experiments/update-ceiling.ts
//
// Stands up its own dev server (as `npm run bench` does) and an in-process worker for a minimal workflow
// (update-ceiling.workflow.ts), starts UPDATE_CEILING_WORKFLOWS of them, then runs two closed loops of
// UPDATE_CEILING_UPDATES updates at UPDATE_CEILING_CONCURRENCY in flight:
//   spread — each update on a different workflow, most of them outside the worker's 250-workflow cache
//            (what the approvals suite does: each of 2,000 signs on another of 10,000 flows);
//   cached — each lane updates one workflow again and again, so the workflow is always in the cache.
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { freePort, startTemporalDevServer } from '../../scripts/stack';
import { cpuMeter, processTree } from '../lib/cpu';
import { percentile, runConcurrent, samplesOf } from '../lib/measure';
import { bump, ceilingWorkflow } from './update-ceiling.workflow';

// tsx turns Node's source maps on; a deployed worker runs without them (see benchEntry in bench/lib/stack.ts).
process.setSourceMapsEnabled(false);

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const WORKFLOWS = env('UPDATE_CEILING_WORKFLOWS', 3000);
const UPDATES = env('UPDATE_CEILING_UPDATES', 2000);
const CONCURRENCY = env('UPDATE_CEILING_CONCURRENCY', 50);
const CACHE = env('UPDATE_CEILING_MAX_CACHED', 250);
const log = (m: string) => console.log(`[ceiling] ${m}`);

async function main(): Promise<void> {
  const temporal = await startTemporalDevServer({ port: await freePort(), log });
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  const taskQueue = 'update-ceiling';
  const worker = await Worker.create({
    connection: nativeConnection, taskQueue, maxCachedWorkflows: CACHE,
    workflowsPath: path.join(__dirname, 'update-ceiling.workflow.ts'),
  });
  const running = worker.run();
  try {
    const ids = Array.from({ length: WORKFLOWS }, (_, i) => `ceiling-${i}`);
    const starts = await runConcurrent(WORKFLOWS, 50, async (i) => { await client.workflow.start(ceilingWorkflow, { taskQueue, workflowId: ids[i] }); });
    log(`started ${starts.ok} workflows at ${starts.perSecond}/s`);
    // Their first workflow tasks run (the worker goes idle) before anything is measured.
    await new Promise((r) => setTimeout(r, 15_000));
    const groups = { temporal: () => processTree(temporal.process.pid!), 'bench+worker': () => [process.pid] };
    for (const mode of ['spread', 'cached'] as const) {
      const meter = cpuMeter(groups);
      const r = await runConcurrent(UPDATES, CONCURRENCY, async (i) => {
        const id = mode === 'spread' ? ids[(i * 7919) % WORKFLOWS] : ids[i % CONCURRENCY];
        await client.workflow.getHandle(id).executeUpdate(bump, { args: ['bench'] });
      });
      const cpu = meter();
      const sorted = [...samplesOf(r)].sort((a, b) => a - b);
      log(`${mode}: ${r.ok}/${r.total} updates at ${r.perSecond}/s, p50 ${r.latencyMs.p50} ms, p95 ${percentile(sorted, 95).toFixed(1)} ms, p99 ${r.latencyMs.p99} ms; CPU % of a core ${JSON.stringify(cpu.cores)}; machine ${cpu.machineBusyPct} % busy`);
    }
    log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, node ${process.version}`);
  } finally {
    worker.shutdown();
    await running;
    await nativeConnection.close();
    await connection.close();
    await temporal.stop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
