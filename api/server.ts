// API process entry: config → db (migrations) → Temporal client → listen; graceful shutdown.
import http from 'node:http';
import { loadConfig } from '../config';
import { createSequelize } from '../db';
import { migrate } from '../db/migrate';
import { DiskBlobStore } from '../lib/blob-store';
import { createLogger } from '../lib/logger';
import { createMetrics } from '../lib/metrics';
import { connectTemporal } from '../lib/temporal';
import { closeWorkPool, workPool } from '../lib/work-pool';
import { createApp } from './app';

/** A request waits this long for a database connection at most, then answers 503 (Postgres down or the pool exhausted). */
export const API_DB_ACQUIRE_TIMEOUT_MS = 3_000;

export interface RunningApi {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export async function startApi(env: NodeJS.ProcessEnv = process.env): Promise<RunningApi> {
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel, 'docket-api');
  const sequelize = createSequelize(config.databaseUrl, { poolMax: 20, acquireTimeoutMs: API_DB_ACQUIRE_TIMEOUT_MS });
  await migrate(sequelize);
  const temporal = await connectTemporal(config.temporal.address, config.temporal.namespace);
  const { app } = await createApp({
    config, sequelize, logger, metrics: createMetrics(), blobs: new DiskBlobStore(config.fileStoreDir),
    temporal: { client: temporal.client, ping: async () => { await temporal.connection.workflowService.getSystemInfo({}); } },
  });
  workPool(); // its first thread starts now, not on the first preview
  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  logger.info({ port: config.port }, 'api listening');
  return {
    server,
    url: `http://localhost:${config.port}`,
    async close() {
      // Stop accepting, let in-flight requests finish, then release the pools.
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeIdleConnections(); });
      await temporal.connection.close();
      await sequelize.close();
      await closeWorkPool();
      logger.info('api stopped');
    },
  };
}

if (require.main === module) {
  startApi().then((api) => {
    const stop = () => { api.close().then(() => process.exit(0), () => process.exit(1)); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }, (err) => {
    console.error(err);
    process.exit(1);
  });
}
