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
  /** [epoch ms / 100, messages accepted in those 100 ms], for the rate over any window. */
  perTenth: [number, number][];
}

/**
 * The most and the fewest messages in any `windowMs` (a multiple of 100 ms) wholly between the sink's first and last
 * message: a limit "held over any minute" has its most ≤ the limit and, while demand exceeds it, its fewest near it.
 */
export function windowCounts(stats: SinkStats, windowMs: number): { most: number; fewest: number; windows: number } {
  const width = Math.round(windowMs / 100);
  if (!stats.perTenth.length) return { most: 0, fewest: 0, windows: 0 };
  const counts = new Map(stats.perTenth);
  const first = Math.min(...counts.keys());
  const last = Math.max(...counts.keys());
  let sum = 0;
  let most = 0;
  let fewest = Infinity;
  let windows = 0;
  for (let t = first; t <= last; t++) {
    sum += counts.get(t) ?? 0;
    if (t - first >= width) sum -= counts.get(t - width) ?? 0;
    if (t - first + 1 >= width) {
      windows++;
      most = Math.max(most, sum);
      fewest = Math.min(fewest, sum);
    }
  }
  return { most, fewest: windows ? fewest : 0, windows };
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
