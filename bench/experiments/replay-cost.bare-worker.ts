// The bare worker of replay-cost.ts's `bare` phases: the SDK's defaults, the minimal workflows of
// temporal-ceiling.workflow.ts (an Update that counts, a timer that fires), no activity, no Postgres. What the SDK
// itself costs a worker per Update and per timer firing, on a cached workflow and on one it must replay first.
//   TEMPORAL_ADDRESS, BARE_TASK_QUEUE, WORKER_MAX_CACHED_WORKFLOWS; stops on SIGTERM.
import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';

// tsx turns Node's source maps on; a deployed worker runs without them (as temporal-ceiling.ts).
process.setSourceMapsEnabled(false);

async function main(): Promise<void> {
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  const worker = await Worker.create({
    connection, namespace: 'default', taskQueue: process.env.BARE_TASK_QUEUE!,
    maxCachedWorkflows: Number(process.env.WORKER_MAX_CACHED_WORKFLOWS ?? 250),
    workflowsPath: path.join(__dirname, 'temporal-ceiling.workflow.ts'),
  });
  process.once('SIGTERM', () => worker.shutdown());
  await worker.run();
  await connection.close();
}

main().catch((err) => { console.error(err); process.exit(1); });
