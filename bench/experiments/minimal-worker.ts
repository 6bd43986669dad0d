// A worker process for the minimal workflows of temporal-ceiling.workflow.ts (an Update that counts, a timer that
// fires, and their floors that record themselves in Postgres): the SDK's defaults and nothing of Docket. replay-cost.ts's
// `bare` phases run it to learn what the SDK itself costs a worker per task; temporal-ceiling.ts runs it
// (TEMPORAL_CEILING_WORKER_PROCESS=1) so its load generator does not share the worker's event loop and core.
//   TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE (default), BARE_TASK_QUEUE, WORKER_MAX_CACHED_WORKFLOWS (250),
//   FLOOR_DATABASE_URL (the floors' Postgres, with its `records` table; none: no activity); stops on SIGTERM.
import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Pool } from 'pg';
import type { FloorActivities } from './temporal-ceiling.workflow';

// tsx turns Node's source maps on; a deployed worker runs without them (as temporal-ceiling.ts).
process.setSourceMapsEnabled(false);

/** The floors' one write: an idempotent INSERT, as a delivery ledger's. */
export function floorActivities(pool: Pool): FloorActivities {
  return { record: async (id: string) => { await pool.query('INSERT INTO records (id) VALUES ($1) ON CONFLICT DO NOTHING', [id]); } };
}

async function main(): Promise<void> {
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  const pool = process.env.FLOOR_DATABASE_URL ? new Pool({ connectionString: process.env.FLOOR_DATABASE_URL, max: 10 }) : undefined;
  pool?.on('error', () => undefined); // Postgres stopping first at the end of a run is no failure of the run
  const worker = await Worker.create({
    connection, namespace: process.env.TEMPORAL_NAMESPACE || 'default', taskQueue: process.env.BARE_TASK_QUEUE!,
    maxCachedWorkflows: Number(process.env.WORKER_MAX_CACHED_WORKFLOWS ?? 250),
    workflowsPath: path.join(__dirname, 'temporal-ceiling.workflow.ts'),
    ...(pool ? { activities: floorActivities(pool) } : {}),
  });
  process.once('SIGTERM', () => worker.shutdown());
  await worker.run();
  await connection.close();
  await pool?.end();
}

if (require.main === module) main().catch((err) => { console.error(err); process.exit(1); });
