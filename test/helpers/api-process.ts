// The API as its own process (api/server.ts under tsx), for what only a real process shows: what it
// refuses to boot with, a port of its own, dying part-way through a request.
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const children: ChildProcess[] = [];

export interface ApiProcess {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output: { text: string };
  /** Resolves with its exit code (null when a signal ended it). */
  exited: Promise<number | null>;
}

/** Starts the API with the test run's environment plus `env` (a value `undefined` removes the variable). */
export function startApiProcess(env: Record<string, string | undefined>): ApiProcess {
  const merged: NodeJS.ProcessEnv = { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'api', 'server.ts')], { cwd: ROOT, env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const output = { text: '' };
  child.stdout!.on('data', (d) => { output.text += String(d); });
  child.stderr!.on('data', (d) => { output.text += String(d); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output, exited };
}

/** Waits until `url`/health answers; fails at once if the process exits first. */
export async function waitForHealth(url: string, exited: Promise<unknown>): Promise<void> {
  let gone = false;
  void exited.then(() => { gone = true; });
  for (let i = 0; i < 300 && !gone; i++) {
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the API did not start');
}

/** Every API process this file started that is still running (for afterAll). */
export function killAllApiProcesses(): void {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
