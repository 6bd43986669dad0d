// Starts bench/lib/bare-koa-server.cjs: the bare Koa handler a Docket endpoint is measured against in the same run.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { readProcMemory, ProcMemory } from './stack';

export interface BareKoa {
  pid: number;
  url: string;
  memory(): ProcMemory;
  stop(): Promise<void>;
}

/** A bare Koa process answering GET /v1/me with `body` (the JSON Docket answered), on a free loopback port. */
export async function startBareKoa(body: unknown): Promise<BareKoa> {
  const child = spawn(process.execPath, [path.join(__dirname, 'bare-koa-server.cjs')], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BARE_BODY: JSON.stringify(body), PORT: '0' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`bare Koa exited (${code}) before listening`)));
  });
  return {
    pid: child.pid!,
    url: `http://127.0.0.1:${port}`,
    memory: () => readProcMemory(child.pid!),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
