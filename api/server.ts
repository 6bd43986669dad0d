// API process entry: config → db (migrations) → Temporal client → listen; graceful shutdown.
import http from 'node:http';
import { loadConfig } from '../config';
import { createSequelize } from '../db';
import { migrate } from '../db/migrate';
import { blobStoreFor } from '../lib/s3-blob-store';
import { createLogger } from '../lib/logger';
import { createMetrics } from '../lib/metrics';
import { connectTemporal, flushStartIntents } from '../lib/temporal';
import { closeWorkPool, workPool } from '../domains/work-pool';
import { createApp } from './app';
import { createMetricsServer } from './metrics';
import { createHttpServer } from './http-server';

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
  for (const warning of config.warnings) logger.warn(warning);
  const sequelize = createSequelize(config.databaseUrl, { poolMax: 20, acquireTimeoutMs: API_DB_ACQUIRE_TIMEOUT_MS });
  await migrate(sequelize);
  const temporal = await connectTemporal(config.temporal.address, config.temporal.namespace);
  const metrics = createMetrics();
  const docket = await createApp({
    config, sequelize, logger, metrics, blobs: blobStoreFor(config),
    temporal: { client: temporal.client, ping: async () => { await temporal.connection.workflowService.getSystemInfo({}); } },
  });
  workPool(); // its first thread starts now, not on the first preview
  const server = createHttpServer(docket.app);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  logger.info({ port: config.port }, 'api listening');
  let metricsServer: http.Server | undefined;
  if (config.metrics.port) {
    metricsServer = createMetricsServer({ metrics, token: config.metrics.token });
    await new Promise<void>((resolve) => metricsServer!.listen(config.metrics.port, config.host, resolve));
    logger.info({ port: config.metrics.port }, 'metrics listening');
  }
  return {
    server,
    url: `http://localhost:${config.port}`,
    async close() {
      // Stop accepting, let in-flight requests finish, then release the pools.
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeIdleConnections(); });
      if (metricsServer) await new Promise<void>((resolve) => { metricsServer!.close(() => resolve()); metricsServer!.closeIdleConnections(); });
      await docket.close();
      await flushStartIntents();
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
