// Worker process entry: config → db → Temporal → one Worker per selected task queue.
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../config';
import { activityDepsFromConfig, createActivities } from '../activities';
import { createSequelize } from '../db';
import { closeWorkPool, workPool } from '../domains/work-pool';
import { createLogger } from '../lib/logger';
import { flushStartIntents } from '../lib/temporal';
import { createWorkers, runWorkers } from './create';
import { selectQueues } from './queues';
import { ensureSystemSchedulesIfServed } from './system-schedules';

export async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'docket-worker');
  for (const warning of config.warnings) log.warn(warning);
  const sequelize = createSequelize(config.databaseUrl);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const queues = selectQueues(config.workerQueues);
  const deps = activityDepsFromConfig(config, log);
  // Tenant templates render on the pool: every thread is started now, so no document waits for one to start (a
  // task's budget never counts that wait; the API keeps one thread warm).
  workPool({ warmThreads: 2 });
  const workers = await createWorkers({
    connection, namespace: config.temporal.namespace, queues,
    activities: createActivities(deps),
    maxCachedWorkflows: config.workerMaxCachedWorkflows,
  });
  await ensureSystemSchedulesIfServed(connection, config, queues);
  log.info({ queues }, 'worker started');
  try {
    await runWorkers(workers);
  } finally {
    await deps.renderer.close();
    // Campaign messages render on its threads.
    await closeWorkPool();
    // Pooled SMTP connections go once the sends in flight are answered.
    await Promise.all([deps.email.close(), deps.bulkEmail?.close()]);
    await flushStartIntents();
    await connection.close();
    await sequelize.close();
    log.info('worker stopped');
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
