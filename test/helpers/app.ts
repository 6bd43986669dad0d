// The API built in-process against the run's Postgres and Temporal, with every response contract-checked.
import http from 'node:http';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Sequelize } from 'sequelize';
import request from 'supertest';
import { createActivities, rendererFromConfig } from '../../activities';
import { createApp, DocketApp } from '../../api/app';
import { createHttpServer } from '../../api/http-server';
import { Config, loadConfig } from '../../config';
import { createSequelize, SequelizeOptions } from '../../db';
import { blobStoreFor } from '../../lib/s3-blob-store';
import { createLogger, type Logger } from '../../lib/logger';
import { createEmailSender } from '../../lib/notify/email';
import { createMetrics, Metrics } from '../../lib/metrics';
import { createWorkers } from '../../workers/create';
import { selectQueues } from '../../workers/queues';
import { connectTemporal } from '../../lib/temporal';
import { endTenantsWork } from './cleanup';
import { closeWorkPool } from '../../domains/work-pool';
import { relaySettings } from '../../domains/webhooks/relay';
import { ContractChecker } from './contract';
import { tenantsBuilt } from './factories';

export interface TestApp {
  config: Config;
  docket: DocketApp;
  sequelize: Sequelize;
  client: Client;
  metrics: Metrics;
  server: http.Server;
  /** A request whose response is checked against openapi.yaml before the test sees it. */
  call(method: 'get' | 'post' | 'put' | 'patch' | 'delete', url: string, key?: string): request.Test;
  /** `call` against another API (e.g. an API process at http://127.0.0.1:<port>), checked the same way. */
  callAt(baseUrl: string): TestApp['call'];
  /** Runs every task queue's worker in this process; email goes to `smtpUrl` (a test sink) if given. */
  startWorker(opts?: { exportPageSize?: number; smtpUrl?: string }): Promise<void>;
  /** The worker's Chromium pool (made by startWorker). */
  renderer?: ReturnType<typeof rendererFromConfig>;
  close(): Promise<void>;
}

let shared: { sequelize: Sequelize; users: number } | undefined;

export async function startTestApp(env: Record<string, string> = {}, opts: { ping?: () => Promise<void>; logger?: Logger; sequelize?: SequelizeOptions } = {}): Promise<TestApp> {
  const config = loadConfig({ ...process.env, RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '0', LINK_LIMIT_PER_MINUTE: '0', ...env });
  // Models are bound to one Sequelize per module registry (one per test file): share it between apps.
  shared ??= { sequelize: createSequelize(config.databaseUrl, { poolMax: 5, ...opts.sequelize }), users: 0 };
  shared.users++;
  const { sequelize } = shared;
  // The API's own connection (native, as api/server.ts makes it), so tests exercise what production runs.
  const { connection, client } = await connectTemporal(config.temporal.address, config.temporal.namespace);
  const metrics = createMetrics({ defaults: false });
  const blobs = blobStoreFor(config);
  const docket = await createApp({
    config, sequelize, metrics, blobs, logger: opts.logger ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', 'test'),
    temporal: { client, ping: opts.ping ?? (async () => { await connection.workflowService.getSystemInfo({}); }) },
  });
  const server = createHttpServer(docket.app);
  const checker = new ContractChecker(docket.api);
  let workers: Worker[] = [];
  let running: Promise<unknown> = Promise.resolve();
  let native: NativeConnection | undefined;

  const callAt = (target: http.Server | string): TestApp['call'] => (method, url, key) => {
    const t = request(target)[method](url);
    if (key) t.set('X-API-Key', key);
    // supertest runs .expect callbacks in order: this one first, so every test checks the contract.
    return t.expect((res) => checker.check(method.toUpperCase(), url, res));
  };
  const call = callAt(server);

  const testApp: TestApp = {
    config, docket, sequelize, client, metrics, server, call, callAt,
    async startWorker(wopts = {}) {
      native = await NativeConnection.connect({ address: config.temporal.address });
      const renderer = rendererFromConfig(config);
      testApp.renderer = renderer;
      workers = await createWorkers({
        connection: native, namespace: config.temporal.namespace, queues: selectQueues([]),
        activities: createActivities({
          blobs, exportPageSize: wopts.exportPageSize, linkSecret: config.linkSecret, secretsKey: config.secretsKey, publicUrl: config.publicUrl,
          // Tests receive webhooks and http jobs on local servers.
          allowPrivateNetworks: true,
          webhookAutoDisableAfterMs: config.webhooks.autoDisableAfterMs, webhookRelay: relaySettings(config),
          email: createEmailSender({ smtpUrl: wopts.smtpUrl, from: 'docket@example.test' }),
          renderer, batchConcurrency: config.documents.poolSize,
          importChunkMs: config.imports.chunkMs, importXlsxChunkMs: config.imports.xlsxChunkMs, importStageRows: config.imports.stageRows, importMergeRows: config.imports.mergeRows,
          importMergeConcurrency: config.imports.mergeConcurrency, importMaxUncompressedBytes: config.imports.maxUncompressedBytes,
          campaignBatchSize: config.campaigns.batchSize, campaignConcurrency: config.campaigns.concurrency, campaignChunkMs: config.campaigns.chunkMs,
          campaignLanes: config.campaigns.lanes, campaignSnapshotTimeoutMs: config.campaigns.snapshotTimeoutMs, senderDomainsMode: config.senderDomains.mode,
        }),
        bundlePath: process.env.DOCKET_TEST_BUNDLE,
      });
      running = Promise.all(workers.map((w) => w.run()));
    },
    async close() {
      // The file's last app ends the file's leftover workflows and schedules, before its workers stop.
      if (shared!.users === 1) await endTenantsWork(client, [...tenantsBuilt]);
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
      await testApp.renderer?.close();
      await native?.close();
      await connection.close();
      await docket.close();
      if (--shared!.users === 0) {
        await sequelize.close();
        shared = undefined;
        // This file's work pool (previews, recurrences): its warm thread would otherwise outlive the file.
        await closeWorkPool();
      }
      server.close();
    },
  };
  return testApp;
}
