// The per-tenant send limiter shared by every campaign and worker process through Postgres: a sliding window of
// sends per minute and a cap on sends in flight (leases that expire, so a killed process's slots come back).
//
// How it holds, and how exactly:
// - One short transaction per acquire, serialised per tenant by a transaction-scoped advisory lock; the time is
//   Postgres's clock_timestamp() read after the lock is taken, so every process agrees on it and grants are
//   ordered by it.
// - Grants are counted in `send_rate_slots`, one row per tenant and slot of `slotMs` (100 ms). A grant at time t
//   counts every slot that overlaps (t − windowMs, t] — the partly expired oldest slot included — and grants only
//   what keeps that sum within maxPerMinute. So in ANY window of windowMs on the Postgres clock the grants never
//   exceed maxPerMinute (not even by one), and the limiter forgoes at most one slot's worth of the window:
//   throughput reaches at least (1 − slotMs / windowMs) of the budget, 99.8 % at 60 s / 100 ms. A maxPerMinute of
//   60,000 is thus held from above exactly and from below within 0.2 % when there is demand.
// - What is limited is grants. Sends trail their grant by the time a holder takes to start them, so a window
//   measured at the receiving end can hold at most the grants of that window plus those of the holders' delay:
//   acquire what you will send within about a second (at 60,000/min, one second is 1.7 % of the budget).
// - Concurrency: a lease holds its `granted` slots until release() or until it expires (leaseMs, 2 minutes); the
//   sum of unexpired leases never exceeds maxConcurrent. A holder must finish (or release) within leaseMs, or its
//   slots may be granted again while its sends still run.
// - The settings are read in the same transaction (one primary-key row), so a change applies to the next grant.
// Cost: five round trips (~1 ms on a local Postgres), serialised per tenant — ask for a batch, not one at a time.
import { randomUUID } from 'node:crypto';
import { QueryTypes, Sequelize } from 'sequelize';

export interface SendLimiter {
  acquire(tenantId: string, wanted: number, opts?: { signal?: AbortSignal }): Promise<SendLease>;
}

export interface SendLease {
  granted: number;
  release(): Promise<void>;
}

/** A tenant without a settings row sends with these. */
export const DEFAULT_SEND_SETTINGS = { maxPerMinute: 600, maxConcurrent: 10 } as const;
/** What PUT /v1/settings/sending accepts. */
export const SEND_SETTINGS_BOUNDS = { maxPerMinute: { min: 1, max: 600_000 }, maxConcurrent: { min: 1, max: 500 } } as const;

export interface SendLimiterOptions {
  /** The window maxPerMinute applies to: 60 s (tests shorten it). */
  windowMs?: number;
  /** Granularity of the counted grants; the window's precision (see above). */
  slotMs?: number;
  /** How long a lease holds its slots unless released. */
  leaseMs?: number;
  /** Longest wait before asking again when only leases of other processes block (their releases are not heard). */
  pollMs?: number;
}

// Two-key advisory locks: this class, and the tenant's hash (apart from the one-key locks migrations take).
const LOCK_CLASS = 0x53454e44; // 'SEND'

interface State {
  now_ms: string;
  per_window: number;
  concurrent: number;
  sent: number;
  oldest_slot: string | null;
  in_use: number;
  next_expiry_ms: string | null;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('The wait for a send slot was aborted'), { name: 'AbortError' });
}

class PostgresSendLimiter implements SendLimiter {
  private readonly windowMs: number;
  private readonly slotMs: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  /** Waiters in this process, woken when a lease of this process is released. */
  private readonly waiters = new Set<() => void>();

  constructor(private readonly sequelize: Sequelize, opts: SendLimiterOptions) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.slotMs = opts.slotMs ?? 100;
    this.leaseMs = opts.leaseMs ?? 120_000;
    this.pollMs = opts.pollMs ?? 100;
    if (!(this.slotMs >= 1 && this.windowMs >= this.slotMs && this.windowMs % this.slotMs === 0)) throw new RangeError('windowMs must be a multiple of slotMs');
  }

  async acquire(tenantId: string, wanted: number, opts: { signal?: AbortSignal } = {}): Promise<SendLease> {
    if (!Number.isInteger(wanted) || wanted < 1) throw new RangeError(`wanted must be a positive integer, not ${wanted}`);
    const { signal } = opts;
    for (;;) {
      if (signal?.aborted) throw abortReason(signal);
      const attempt = await this.tryAcquire(tenantId, wanted);
      if ('lease' in attempt) return attempt.lease;
      await this.sleep(attempt.retryInMs, signal);
    }
  }

  private async tryAcquire(tenantId: string, wanted: number): Promise<{ lease: SendLease } | { retryInMs: number }> {
    const { sequelize, windowMs, slotMs } = this;
    return sequelize.transaction(async (transaction) => {
      await sequelize.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', { bind: [LOCK_CLASS, tenantId], transaction });
      // One snapshot, taken after the lock: every grant committed before is seen. The data-modifying CTEs drop what
      // no window will count again; the sums filter the same rows out, so they agree with the deletes.
      const [state] = await sequelize.query<State>(`WITH clock AS (
          SELECT t AS at, floor(extract(epoch FROM t) * 1000)::bigint AS ms FROM clock_timestamp() t
        ), bounds AS (SELECT at, ms, (ms - $2::bigint) / $3::bigint AS first_slot FROM clock),
        old_slots AS (DELETE FROM send_rate_slots WHERE tenant_id = $1 AND slot < (SELECT first_slot FROM bounds) RETURNING 1),
        old_leases AS (DELETE FROM send_leases WHERE tenant_id = $1 AND expires_at <= (SELECT at FROM bounds) RETURNING 1)
        SELECT b.ms AS now_ms,
          coalesce((SELECT max_per_minute FROM tenant_send_settings WHERE tenant_id = $1), $4) AS per_window,
          coalesce((SELECT max_concurrent FROM tenant_send_settings WHERE tenant_id = $1), $5) AS concurrent,
          (SELECT coalesce(sum(sends), 0)::int FROM send_rate_slots WHERE tenant_id = $1 AND slot >= b.first_slot) AS sent,
          (SELECT min(slot) FROM send_rate_slots WHERE tenant_id = $1 AND slot >= b.first_slot AND sends > 0) AS oldest_slot,
          (SELECT coalesce(sum(slots), 0)::int FROM send_leases WHERE tenant_id = $1 AND expires_at > b.at) AS in_use,
          (SELECT floor(extract(epoch FROM min(expires_at)) * 1000)::bigint FROM send_leases WHERE tenant_id = $1 AND expires_at > b.at) AS next_expiry_ms
        FROM bounds b`, {
        bind: [tenantId, windowMs, slotMs, DEFAULT_SEND_SETTINGS.maxPerMinute, DEFAULT_SEND_SETTINGS.maxConcurrent], type: QueryTypes.SELECT, transaction,
      });
      const now = Number(state.now_ms);
      const granted = Math.min(wanted, state.per_window - state.sent, state.concurrent - state.in_use);
      if (granted < 1) {
        const waits: number[] = [];
        // The oldest counted slot leaves the window once it no longer overlaps it.
        if (state.sent >= state.per_window && state.oldest_slot !== null) waits.push((Number(state.oldest_slot) + 1) * slotMs + windowMs - now);
        if (state.in_use >= state.concurrent) waits.push(Math.min(this.pollMs, state.next_expiry_ms === null ? this.pollMs : Number(state.next_expiry_ms) - now));
        return { retryInMs: Math.max(1, waits.length ? Math.max(...waits) : this.pollMs) };
      }
      const id = randomUUID();
      await sequelize.query(`WITH counted AS (
          INSERT INTO send_rate_slots (tenant_id, slot, sends) VALUES ($1, $2::bigint, $3::int)
          ON CONFLICT (tenant_id, slot) DO UPDATE SET sends = send_rate_slots.sends + EXCLUDED.sends
        )
        INSERT INTO send_leases (tenant_id, id, slots, expires_at) VALUES ($1, $4, $3, clock_timestamp() + $5::int * interval '1 millisecond')`,
      { bind: [tenantId, Math.floor(now / slotMs), granted, id, this.leaseMs], transaction });
      return { lease: this.lease(tenantId, id, granted) };
    });
  }

  private lease(tenantId: string, id: string, granted: number): SendLease {
    let released: Promise<void> | undefined;
    return {
      granted,
      release: () => {
        released ??= this.sequelize.query('DELETE FROM send_leases WHERE tenant_id = $1 AND id = $2', { bind: [tenantId, id] }).then(() => {
          for (const wake of [...this.waiters]) wake();
        });
        return released;
      },
    };
  }

  private sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const settle = (abort: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        signal?.removeEventListener('abort', aborted);
        if (abort) reject(abortReason(signal!));
        else resolve();
      };
      const wake = () => settle(false);
      const aborted = () => settle(true);
      const timer = setTimeout(wake, ms);
      this.waiters.add(wake);
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }
}

/** A limiter over the tenants' sending settings (tenant_send_settings); one per process is enough, several agree. */
export function createSendLimiter(sequelize: Sequelize, opts: SendLimiterOptions = {}): SendLimiter {
  return new PostgresSendLimiter(sequelize, opts);
}
