// Fixed-window rate limits shared by every API process through Postgres, with no database round trip per request.
//
// Each process decides locally from what it knows: the key's count in Postgres at its last sync plus what
// it admitted since. Every `syncMs` one statement adds each process's new counts to the shared rows
// (rate_limit_counters, an UNLOGGED table) and reads the totals back. So a key can get at most its budget
// plus what the *other* processes admit for it within one sync interval before this one hears of it
// (bounded by the budget itself: a process never admits more than `points` on its own). If Postgres is
// unreachable, each process keeps enforcing the limit on its own counts and retries the sync.
import { QueryTypes, Sequelize } from 'sequelize';

interface Entry {
  window: number;
  /** Admitted here and not yet added to the shared row. */
  pending: number;
  /** The shared row's count at the last sync (this process's earlier admissions included). */
  known: number;
}

export interface RateLimiterOptions {
  sequelize: Sequelize;
  /** Prefix of the shared keys, so two limiters never count into the same row. */
  name: string;
  points: number;
  windowMs?: number;
  syncMs: number;
  onSyncError?: (err: unknown) => void;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export class SharedRateLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly windowMs: number;
  private readonly timer: NodeJS.Timeout;
  private syncing: Promise<void> | null = null;
  private cleanedWindow = 0;

  constructor(private readonly opts: RateLimiterOptions) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.timer = setInterval(() => { void this.sync(); }, opts.syncMs);
    this.timer.unref();
  }

  /** Counts one request of `key` if it is within its budget; answers from memory. */
  consume(key: string): RateDecision {
    const entry = this.entry(key);
    if (entry.known + entry.pending >= this.opts.points) return this.refusal();
    entry.pending++;
    return { allowed: true };
  }

  /** Whether `key` has used its budget in this window (without counting a request). */
  check(key: string): RateDecision {
    const entry = this.entries.get(key);
    if (!entry || entry.window !== this.currentWindow()) return { allowed: true };
    return entry.known + entry.pending >= this.opts.points ? this.refusal() : { allowed: true };
  }

  /** Adds this process's new counts to the shared rows and learns the totals; one statement for all keys. */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => { this.syncing = null; });
    return this.syncing;
  }

  /** Stops the timer after a last sync (call before the database pool is closed). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.sync();
  }

  private entry(key: string): Entry {
    const window = this.currentWindow();
    let entry = this.entries.get(key);
    if (!entry || entry.window !== window) {
      entry = { window, pending: 0, known: 0 };
      this.entries.set(key, entry);
    }
    return entry;
  }

  private currentWindow(): number {
    return Math.floor(Date.now() / this.windowMs);
  }

  private refusal(): RateDecision {
    const msLeft = (this.currentWindow() + 1) * this.windowMs - Date.now();
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(msLeft / 1000)) };
  }

  private async syncOnce(): Promise<void> {
    const window = this.currentWindow();
    for (const [key, e] of this.entries) if (e.window !== window) this.entries.delete(key);
    // Sorted, so two processes updating the same rows lock them in the same order (no deadlock).
    const keys = [...this.entries.keys()].sort();
    if (!keys.length) return;
    // Keys with new counts are added to; the others (idle here, perhaps busy elsewhere) are only read: rewriting
    // every known key each second would cost a row version per key per sync, for as many keys as were seen this
    // minute — a caller with many valid links could make that thousands.
    const busy = keys.filter((k) => this.entries.get(k)!.pending > 0);
    const idle = keys.filter((k) => this.entries.get(k)!.pending === 0);
    const sent = busy.map((k) => this.entries.get(k)!.pending);
    const windowStart = new Date(window * this.windowMs);
    try {
      const rows = await this.opts.sequelize.query<{ key: string; count: number }>(
        `WITH added AS (
           INSERT INTO rate_limit_counters (key, window_start, count)
           SELECT $1 || k, $2, n FROM unnest($3::text[], $4::int[]) AS t(k, n)
           ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_counters.count + EXCLUDED.count
           RETURNING key, count)
         SELECT key, count FROM added
         UNION ALL SELECT key, count FROM rate_limit_counters WHERE window_start = $2 AND key = ANY(SELECT $1 || k FROM unnest($5::text[]) AS i(k))`,
        { bind: [`${this.opts.name}:`, windowStart, busy, sent, idle], type: QueryTypes.SELECT },
      );
      const prefix = this.opts.name.length + 1;
      const sentByKey = new Map(busy.map((k, i) => [k, sent[i]]));
      for (const row of rows) {
        const key = row.key.slice(prefix);
        const e = this.entries.get(key);
        if (!e || e.window !== window) continue;
        e.pending -= sentByKey.get(key) ?? 0;
        e.known = Number(row.count);
      }
      if (this.cleanedWindow !== window) {
        this.cleanedWindow = window;
        await this.opts.sequelize.query('DELETE FROM rate_limit_counters WHERE window_start < $1', { bind: [new Date((window - 1) * this.windowMs)] });
      }
    } catch (err) {
      this.opts.onSyncError?.(err);
    }
  }
}
