// Small measuring tools: a fixed-count closed-loop runner with N operations in flight, percentiles,
// and a plain-text table.
import { round } from './stack';

export interface LoopResult {
  total: number;
  ok: number;
  failed: number;
  seconds: number;
  /** Successful operations per second of wall time (first start to last completion). */
  perSecond: number;
  latencyMs: { p50: number; p99: number; max: number; mean: number };
  /** The distinct failure messages and how often each occurred. */
  errors: Record<string, number>;
}

/** Runs `op` `total` times with `concurrency` calls in flight at every moment (closed loop). */
/** A closed loop with `concurrency` operations in flight; with `deadline` (epoch ms) it takes no new work after it. */
export async function runConcurrent(total: number, concurrency: number, op: (i: number) => Promise<void>, deadline = Infinity): Promise<LoopResult> {
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let next = 0;
  const started = process.hrtime.bigint();
  const lane = async (): Promise<void> => {
    for (;;) {
      if (next >= total || Date.now() > deadline) return;
      const i = next++;
      const t = process.hrtime.bigint();
      try {
        await op(i);
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      } catch (err) {
        const msg = ((err as Error).message ?? String(err)).slice(0, 200);
        errors[msg] = (errors[msg] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return summarize(next, seconds, latencies, errors);
}

/** Results of one or more runs; pass their latencies and summed seconds to merge runs exactly. */
export function summarize(total: number, seconds: number, latencies: number[], errors: Record<string, number>): LoopResult {
  const sorted = [...latencies].sort((a, b) => a - b);
  const ok = sorted.length;
  const result: LoopResult = {
    total, ok, failed: total - ok, seconds: round(seconds, 3), perSecond: round(ok / seconds, 1),
    latencyMs: {
      p50: round(percentile(sorted, 50), 2), p99: round(percentile(sorted, 99), 2),
      max: round(sorted[ok - 1] ?? 0, 2),
      mean: round(sorted.reduce((s, x) => s + x, 0) / Math.max(1, ok), 2),
    },
    errors,
  };
  // Kept for merging, left out of JSON.
  Object.defineProperty(result, 'samples', { value: latencies, enumerable: false });
  return result;
}

export function samplesOf(r: LoopResult): number[] {
  return (r as LoopResult & { samples?: number[] }).samples ?? [];
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
