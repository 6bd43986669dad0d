// A Docket worker (workers/main.ts) as its own process against the bench stack, so its memory and CPU
// can be read alone; shared by the suites that need a worker.
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/paths';
import { connectTemporal } from '../../lib/temporal';
import { BenchStack, log, ProcMemory, readProcMemory } from './stack';

export interface WorkerProcess {
  pid: number;
  memory(): ProcMemory;
  alive(): boolean;
  output(): string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The workflow bundle the worker loads: the prebuilt one if newer than every workflow source, else a fresh one in the temp dir. */
function bundlePathFor(stack: BenchStack): string {
  const prebuilt = process.env.WORKFLOW_BUNDLE_PATH || path.join(PROJECT_ROOT, 'dist', 'workflow-bundle.js');
  try {
    const built = fs.statSync(prebuilt).mtimeMs;
    const dir = path.join(PROJECT_ROOT, 'workflows');
    const newest = Math.max(...fs.readdirSync(dir).map((f) => fs.statSync(path.join(dir, f)).mtimeMs));
    if (built > newest) return prebuilt;
  } catch {
    // missing: build one
  }
  log('the prebuilt workflow bundle is missing or older than workflows/; the worker builds a fresh one in the temp dir');
  return path.join(stack.dir, 'workflow-bundle.js');
}

/** Starts `node --import tsx workers/main.ts`; `env` picks the queues (WORKER_QUEUES) and other settings. */
export async function startWorkerProcess(stack: BenchStack, env: Record<string, string>): Promise<WorkerProcess> {
  const full: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: stack.databaseUrl,
    TEMPORAL_ADDRESS: stack.temporalAddress,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    WORKFLOW_BUNDLE_PATH: bundlePathFor(stack),
    DOCKET_DATA_DIR: path.join(stack.dir, 'data'),
    FILE_STORE_DIR: path.join(stack.dir, 'files'),
    ...env,
  };
  delete full.SMTP_URL;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: full });
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

/** Until the worker polls `taskQueue`'s workflow tasks (bundle loaded, connected). */
export async function waitForPoller(stack: BenchStack, worker: WorkerProcess, taskQueue: string): Promise<void> {
  const temporal = await connectTemporal(stack.temporalAddress, 'default');
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (!worker.alive()) throw new Error(`the worker exited before polling:\n${worker.output()}`);
      const r = await temporal.client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue }, taskQueueType: 1 });
      if ((r.pollers ?? []).length > 0) return;
      if (Date.now() > deadline) throw new Error(`the worker did not poll ${taskQueue} within 120 s:\n${worker.output()}`);
      await sleep(500);
    }
  } finally {
    await temporal.connection.close();
  }
}
