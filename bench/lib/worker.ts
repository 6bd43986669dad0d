// Shared by the suites: a worker as its own process (RSS measured), waiting until it polls, and a
// keep-alive HTTP request with its latency.
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/paths';
import { connectTemporal } from '../../lib/temporal';
import { writeWorkflowBundle } from '../../workers/bundle';
import { percentile } from './measure';
import { processLabel } from './provenance';
import { ApiProcess, BenchStack, benchEntry, log, nodeArgsFor, ProcMemory, readProcMemory, round } from './stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WorkerProcess {
  pid: number;
  memory(): ProcMemory;
  alive(): boolean;
  output(): string;
  stop(): Promise<void>;
}

export interface Reply { status: number; body: string; ms: number }

export interface Latency { p50: number; p95: number; p99: number; max: number; mean: number }

export function latencyOf(samples: number[]): Latency {
  const s = [...samples].sort((a, b) => a - b);
  return {
    p50: round(percentile(s, 50), 1), p95: round(percentile(s, 95), 1), p99: round(percentile(s, 99), 1),
    max: round(s[s.length - 1] ?? 0, 1), mean: round(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length), 1),
  };
}


export function request(agent: http.Agent, api: ApiProcess, method: string, p: string, key: string, body: unknown, timeoutMs: number): Promise<Reply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const t = process.hrtime.bigint();
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request({
      agent, host: '127.0.0.1', port: api.port, method, path: p, timeout: timeoutMs,
      headers: { 'x-api-key': key, ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: Number(process.hrtime.bigint() - t) / 1e6 }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

let freshBundle: Promise<string> | undefined;

/**
 * The workflow bundle the worker loads: the prebuilt one if newer than every workflow source, else one built here
 * once per bench run into the temp dir (as the Docker image ships one prebuilt), so no measured worker spends its
 * start — or its peak RSS — on bundling.
 */
async function bundlePathFor(stack: BenchStack): Promise<string> {
  const prebuilt = process.env.WORKFLOW_BUNDLE_PATH || path.join(PROJECT_ROOT, 'dist', 'workflow-bundle.js');
  try {
    const built = fs.statSync(prebuilt).mtimeMs;
    const dir = path.join(PROJECT_ROOT, 'workflows');
    const newest = Math.max(...fs.readdirSync(dir).map((f) => fs.statSync(path.join(dir, f)).mtimeMs));
    if (built > newest) return prebuilt;
  } catch {
    // missing: build one
  }
  freshBundle ??= (log('the prebuilt workflow bundle is missing or older than workflows/; building one in the temp dir'),
    writeWorkflowBundle(path.join(stack.dir, 'workflow-bundle.js')));
  return freshBundle;
}

/** A JSON caller of one API process over a small keep-alive pool (closed with `stops`): the parsed body, or a throw on any other status than `want`. */
export function apiCaller(api: ApiProcess, key: string, stops: Array<() => Promise<unknown>>) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  stops.push(async () => { agent.destroy(); });
  return async (method: string, path: string, payload?: unknown, want = 200) => {
    const r = await request(agent, api, method, path, key, payload, 30_000);
    if (r.status !== want) throw new Error(`${method} ${path} answered ${r.status}: ${r.body.slice(0, 300)}`);
    return r.body ? JSON.parse(r.body) : undefined;
  };
}

/** A worker process serving `queues` (WORKER_QUEUES), with extra environment (e.g. a link secret). */
export async function startWorker(stack: BenchStack, queues: string, extraEnv: Record<string, string> = {}): Promise<WorkerProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: stack.databaseUrl,
    TEMPORAL_ADDRESS: stack.temporalAddress,
    WORKER_QUEUES: queues,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    WORKFLOW_BUNDLE_PATH: await bundlePathFor(stack),
    DOCKET_DATA_DIR: path.join(stack.dir, 'data'),
    FILE_STORE_DIR: path.join(stack.dir, 'files'),
  };
  // An SMTP server of the shell's environment is never used; a suite that wants delivery passes its sink.
  delete env.SMTP_URL;
  Object.assign(env, extraEnv);
  // Profiling knob, as BENCH_API_NODE_ARGS is for the API: e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  // The worker runs compiled, as the Docker image runs it (see benchEntry); BENCH_WORKER_ENTRY picks another entry.
  const entry = benchEntry('workers/main', process.env.BENCH_WORKER_ENTRY);
  // The worker runs with the heap cap docker-compose.yml gives it (WORKER_MAX_OLD_SPACE_MB, default 256).
  const heapCap = `--max-old-space-size=${process.env.WORKER_MAX_OLD_SPACE_MB ?? '256'}`;
  const args = nodeArgsFor(entry, 'BENCH_WORKER_NODE_ARGS', [heapCap]);
  stack.processes.worker = processLabel(entry);
  return spawnWorkerProcess(args, env);
}

/** A worker as its own node process (`args` to node), stopped with SIGTERM (then SIGKILL after 15 s). */
export function spawnWorkerProcess(args: string[], env: NodeJS.ProcessEnv): WorkerProcess {
  const child: ChildProcess = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  const keep = (d: Buffer) => { out = (out + d.toString()).slice(-20_000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    pid: child.pid!,
    memory: () => readProcMemory(child.pid!),
    alive,
    output: () => out,
    stop: () => new Promise<void>((resolve) => {
      if (!alive()) return resolve();
      // The SDK drains in-flight tasks on SIGTERM; don't wait for a long drain.
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => { clearTimeout(killer); resolve(); });
      child.kill('SIGTERM');
    }),
  };
}

/**
 * The SDK's minimal worker (experiments/minimal-worker.ts: temporal-ceiling.workflow.ts's workflows, the SDK's defaults,
 * nothing of Docket) as a process of its own, polling `taskQueue` with a sticky cache of `cache`: the bare side of
 * every Docket / bare ratio. With `floorDatabaseUrl`, its floors record themselves there.
 */
export function spawnMinimalWorker(o: { address: string; taskQueue: string; cache: number; namespace?: string; floorDatabaseUrl?: string }): WorkerProcess {
  return spawnWorkerProcess(['--import', 'tsx', path.join(PROJECT_ROOT, 'bench', 'experiments', 'minimal-worker.ts')], {
    ...process.env, TEMPORAL_ADDRESS: o.address, TEMPORAL_NAMESPACE: o.namespace ?? 'default', BARE_TASK_QUEUE: o.taskQueue,
    WORKER_MAX_CACHED_WORKFLOWS: String(o.cache), ...(o.floorDatabaseUrl ? { FLOOR_DATABASE_URL: o.floorDatabaseUrl } : {}),
  });
}

/**
 * Until this worker process polls `taskQueue`'s workflow tasks (bundle loaded, connected). Pollers are matched by
 * the SDK's default identity, `<pid>@<host>`: the server keeps listing a stopped worker's poller for a while, so
 * any poller would let a suite start measuring before a restarted worker is up.
 */
export async function waitForPoller(stack: Pick<BenchStack, 'temporalAddress'>, worker: WorkerProcess, taskQueue: string, namespace = 'default'): Promise<void> {
  const temporal = await connectTemporal(stack.temporalAddress, namespace);
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (!worker.alive()) throw new Error(`the worker exited before polling:\n${worker.output()}`);
      const r = await temporal.client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue }, taskQueueType: 1 });
      if ((r.pollers ?? []).some((p) => p.identity?.startsWith(`${worker.pid}@`))) return;
      if (Date.now() > deadline) throw new Error(`the worker did not poll ${taskQueue} within 120 s:\n${worker.output()}`);
      await sleep(500);
    }
  } finally {
    await temporal.connection.close();
  }
}
