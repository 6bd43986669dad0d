// Once per test run: a throwaway Postgres and Temporal dev server (unless DATABASE_URL / TEMPORAL_ADDRESS
// point at existing ones), migrations, and the prebuilt workflow bundle.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSequelize } from '../../db';
import { migrate } from '../../db/migrate';
import { freePort, RunningPostgres, RunningTemporal, startEmbeddedPostgres, startTemporalDevServer } from '../../scripts/stack';
import { ensureChromium, ensureTemporalTestServer } from '../../scripts/tools';
import { writeWorkflowBundle } from '../../workers/bundle';

export interface TestStack {
  dir: string;
  pg?: RunningPostgres;
  temporal?: RunningTemporal;
}

export default async function globalSetup(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-test-'));
  fs.chmodSync(dir, 0o755); // as root, Postgres runs as the 'postgres' user and must reach its folder
  const stack: TestStack = { dir };
  const [pgPort, temporalPort] = [await freePort(), await freePort()];
  const [pg, temporal, bundle] = await Promise.all([
    process.env.DATABASE_URL ? undefined : startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: pgPort, persistent: false }),
    process.env.TEMPORAL_ADDRESS ? undefined : startTemporalDevServer({ port: temporalPort }),
    writeWorkflowBundle(path.join(dir, 'workflow-bundle.js')),
  ]);
  stack.pg = pg;
  stack.temporal = temporal;
  if (pg) process.env.DATABASE_URL = pg.url;
  if (temporal) process.env.TEMPORAL_ADDRESS = temporal.address;
  process.env.DOCKET_TEST_BUNDLE = bundle;
  process.env.TEMPORAL_TEST_SERVER = ensureTemporalTestServer();
  process.env.CHROMIUM_PATH = ensureChromium();
  process.env.FILE_STORE_DIR = path.join(dir, 'files');
  process.env.NODE_ENV = 'test';
  const sequelize = createSequelize(process.env.DATABASE_URL!);
  await migrate(sequelize);
  await sequelize.close();
  (globalThis as { __DOCKET_STACK__?: TestStack }).__DOCKET_STACK__ = stack;
}
