// Real worker processes (workers/main.ts) for the crash tests: SIGKILL one part-way, start another.
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const children: ChildProcess[] = [];

/**
 * Starts `node --import tsx workers/main.ts` (one process, so SIGKILL kills the worker itself) on the
 * run's prebuilt workflow bundle; `env` picks the queues (WORKER_QUEUES) and other settings. `script`
 * runs another worker entry instead (a test fixture's).
 */
export function spawnWorker(env: Record<string, string>, script = path.join(ROOT, 'workers', 'main.ts')): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, WORKFLOW_BUNDLE_PATH: process.env.DOCKET_TEST_BUNDLE, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

/** SIGKILLs the given worker and waits until it is gone. */
export async function killWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
}

/** Every worker this file started that is still running (for afterAll). */
export function killAllWorkers(): void {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
