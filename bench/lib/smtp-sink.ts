// A counting SMTP sink as its own process (smtp-sink-process.ts), so that real SMTP delivery is part of a
// suite while the sink's CPU stays out of the bench process's and shows as its own group.
import { ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/paths';
import { readProcMemory, ProcMemory } from './stack';

export interface SinkStats {
  /** Messages accepted (DATA answered 250). */
  messages: number;
  /** Distinct Message-IDs among them (Docket's Message-ID follows the idempotency key). */
  distinct: number;
  /** Messages whose Message-ID had been accepted before: the same mail delivered again. */
  duplicates: number;
  recipients: number;
  bytes: number;
  /** Epoch ms of the first and the last message accepted. */
  firstAt: number | null;
  lastAt: number | null;
}

export interface SmtpSinkProcess {
  pid: number;
  url: string;
  stats(): Promise<SinkStats>;
  memory(): ProcMemory;
  stop(): Promise<void>;
}

export async function startSmtpSinkProcess(): Promise<SmtpSinkProcess> {
  const child: ChildProcess = fork(path.join(__dirname, 'smtp-sink-process.ts'), [], {
    cwd: PROJECT_ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the SMTP sink did not listen within 30 s')), 30_000);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the SMTP sink exited (${code}) before listening`)); });
    child.once('message', (m: { type: string; port: number }) => { clearTimeout(timer); resolve(m.port); });
  });
  child.removeAllListeners('exit');
  const stats = () => new Promise<SinkStats>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the SMTP sink did not answer within 10 s')), 10_000);
    const onMessage = (m: { type: string; stats: SinkStats }) => {
      if (m.type !== 'stats') return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m.stats);
    };
    child.on('message', onMessage);
    child.send({ type: 'stats' });
  });
  return {
    pid: child.pid!, url: `smtp://127.0.0.1:${port}`, stats, memory: () => readProcMemory(child.pid!),
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => { clearTimeout(killer); resolve(); });
      child.disconnect();
    }),
  };
}
