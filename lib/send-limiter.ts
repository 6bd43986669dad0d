// The per-tenant send limiter shared by every campaign and worker process through Postgres: a sliding window of
// sends per minute and a cap on sends in flight (leases that expire, so a killed process's slots come back).
//
// How it holds, and how exactly:
// - One statement per acquire (the function docket_send_acquire, migrations 0013 and 0028), serialised per tenant by a
//   transaction-scoped advisory lock; the time is Postgres's clock_timestamp() read after the lock is taken, so
//   every process agrees on it and grants are ordered by it.
// - Grants are counted in `send_rate_slots`, one row per tenant and slot of `slotMs` (100 ms). A grant at time t
//   counts every slot that overlaps (t − windowMs, t] — the partly expired oldest slot included — and grants only
//   what keeps that sum within maxPerMinute. So in ANY window of windowMs on the Postgres clock the grants never
//   exceed maxPerMinute (not even by one), and the limiter forgoes at most one slot's worth of the window:
//   throughput reaches at least (1 − slotMs / windowMs) of the budget, 99.8 % at 60 s / 100 ms. A maxPerMinute of
//   60,000 is thus held from above exactly and from below within 0.2 % when there is demand.
// - Grants are also paced (db/migrations/0030): a tenant gets at most its rate, maxPerMinute / windowMs, plus a
//   burst of `burstMs` worth (1 s of a 60 s window), tracked per tenant as a GCRA "theoretical arrival time". Without
//   it, a sender faster than the limit spent the window's budget in a burst, then waited, and the rebuilt bursts
//   came late and small: a window that began in a burst and ended in a gap held 0.90 of the limit. Paced, a sender
//   with demand sends at the limit's rate all along. While pacing is what stops a grant, nothing is granted until
//   half a burst's worth fits (no grants too small to be worth a batch); the answer says when.
// - What is limited is grants. Sends trail their grant by the time a holder takes to start them, so a window
//   measured at the receiving end can hold at most the grants of that window plus those of the holders' delay:
//   acquire what you will send within about a second (at 60,000/min, one second is 1.7 % of the budget).
// - Concurrency: a lease holds `inFlight` slots — what its holder sends at once, at most what it was granted —
//   until release() or until it expires; the sum of unexpired leases never exceeds maxConcurrent, and nothing is
//   granted while no slot is free. A holder keeps at most `inFlight` sends going. The lease keeps itself alive
//   while held (renewed every leaseMs / 3, leaseMs 30 s), so a slow batch keeps its slots however long it takes,
//   and a holder that dies (SIGKILL, lost host) frees them within leaseMs. A holder that cannot renew in time
//   (Postgres away, a stalled event loop) sees `lost` abort and must start no more sends under that lease: its
//   slots may already be someone else's.
// - The settings are read in the same transaction (one primary-key row), so a change applies to the next grant.
// - Grants and releases commit without waiting for the WAL flush (synchronous_commit off, in their transaction
//   only): a Postgres crash may forget the last ~0.6 s of grants, the price of a cheap acquire.
// Cost: one statement per acquire and one per release, serialised per tenant — ask for a batch, not one at a time.
import { randomUUID } from 'node:crypto';
import { QueryTypes, Sequelize } from 'sequelize';

export interface SendLimiter {
  /** Up to `wanted` sends, at most `inFlight` of them at once (default: all of them). */
  acquire(tenantId: string, wanted: number, opts?: { signal?: AbortSignal; inFlight?: number }): Promise<SendLease>;
  /** The most one grant can give the tenant at its current limit (the pace's burst): what is worth preparing for one. */
  largestGrant(tenantId: string): Promise<number>;
}

export interface SendLease {
  /** Sends the holder may make (counted in the per-minute window). */
  granted: number;
  /** Of them, how many may be in flight at once (the slots of maxConcurrent the lease holds). */
  inFlight: number;
  /** When it was granted, on Postgres's clock (epoch ms): the clock every window is counted on. */
  grantedAtMs: number;
  /** Aborted when the lease could not be renewed before it expired: start no more sends under it. */
  lost: AbortSignal;
  /** Frees the slots (and stops renewing; a release that fails leaves them to expire within leaseMs). */
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
  /** How long a lease holds its slots unless renewed (its holder renews it every leaseMs / 3) or released. */
  leaseMs?: number;
  /** How far ahead of its pace a tenant may be granted (default windowMs / 60: 1 s of a minute). */
  burstMs?: number;
  /** Longest wait before asking again when only leases of other processes block (their releases are not heard). */
  pollMs?: number;
}

interface State {
  granted: number;
  slots: number;
  now_ms: string;
  per_window: number;
  concurrent: number;
  sent: number;
  oldest_slot: string | null;
  in_use: number;
  next_expiry_ms: string | null;
  /** Set when the pace stopped the grant: when what is worth granting fits (epoch ms, Postgres's clock). */
  pace_ready_ms: string | null;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('The wait for a send slot was aborted'), { name: 'AbortError' });
}

class PostgresSendLimiter implements SendLimiter {
  private readonly windowMs: number;
  private readonly slotMs: number;
  private readonly leaseMs: number;
  private readonly burstMs: number;
  private readonly pollMs: number;
  /** Waiters in this process by tenant, woken when a lease of that tenant in this process is released (only its own leases hold its room). */
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(private readonly sequelize: Sequelize, opts: SendLimiterOptions) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.slotMs = opts.slotMs ?? 100;
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 100;
    this.burstMs = opts.burstMs ?? Math.round(this.windowMs / 60);
    if (!(this.slotMs >= 1 && this.windowMs >= this.slotMs && this.windowMs % this.slotMs === 0)) throw new RangeError('windowMs must be a multiple of slotMs');
  }

  async acquire(tenantId: string, wanted: number, opts: { signal?: AbortSignal; inFlight?: number } = {}): Promise<SendLease> {
    const { signal, inFlight = wanted } = opts;
    for (const [name, n] of [['wanted', wanted], ['inFlight', inFlight]] as const) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer, not ${n}`);
    }
    for (;;) {
      if (signal?.aborted) throw abortReason(signal);
      const attempt = await this.tryAcquire(tenantId, wanted, inFlight);
      if ('lease' in attempt) return attempt.lease;
      await this.sleep(tenantId, attempt.retryInMs, signal);
    }
  }

  async largestGrant(tenantId: string): Promise<number> {
    const [row] = await this.sequelize.query<{ max_per_minute: number }>('SELECT max_per_minute FROM tenant_send_settings WHERE tenant_id = $1', { bind: [tenantId], type: QueryTypes.SELECT });
    const perWindow = row?.max_per_minute ?? DEFAULT_SEND_SETTINGS.maxPerMinute;
    // docket_send_acquire's most paced sends: floor(burst / interval) + 1.
    return Math.floor((this.burstMs * perWindow) / this.windowMs) + 1;
  }

  private async tryAcquire(tenantId: string, wanted: number, inFlight: number): Promise<{ lease: SendLease } | { retryInMs: number }> {
    const { windowMs, slotMs } = this;
    const id = randomUUID();
    const askedAt = performance.now();
    // One statement (db/migrations/0030: docket_send_acquire), its own transaction: lock, read, grant, commit.
    const [state] = await this.sequelize.query<State>('SELECT * FROM docket_send_acquire($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', {
      bind: [tenantId, wanted, inFlight, windowMs, slotMs, this.leaseMs, DEFAULT_SEND_SETTINGS.maxPerMinute, DEFAULT_SEND_SETTINGS.maxConcurrent, id, this.burstMs], type: QueryTypes.SELECT,
    });
    if (state.granted > 0) return { lease: this.lease(tenantId, id, state.granted, state.slots, Number(state.now_ms), askedAt) };
    const now = Number(state.now_ms);
    const waits: number[] = [];
    // The oldest counted slot leaves the window once it no longer overlaps it.
    if (state.sent >= state.per_window && state.oldest_slot !== null) waits.push((Number(state.oldest_slot) + 1) * slotMs + windowMs - now);
    if (state.pace_ready_ms !== null) waits.push(Number(state.pace_ready_ms) - now);
    if (state.in_use >= state.concurrent) waits.push(Math.min(this.pollMs, state.next_expiry_ms === null ? this.pollMs : Number(state.next_expiry_ms) - now));
    return { retryInMs: Math.max(1, waits.length ? Math.max(...waits) : this.pollMs) };
  }

  private lease(tenantId: string, id: string, granted: number, inFlight: number, grantedAtMs: number, askedAt: number): SendLease {
    let released: Promise<void> | undefined;
    const lost = new AbortController();
    // When the lease surely still holds, on this process's monotonic clock (a wall-clock step must not make it
    // late): it was granted (or last renewed) after the request was sent, so counting from the send errs early.
    let lose = setTimeout(() => stop(true), askedAt + this.leaseMs - performance.now());
    let renewing = false;
    const renew = async () => {
      if (renewing) return;
      renewing = true;
      const sentAt = performance.now();
      try {
        // Only a lease that has not expired is renewed: an expired one may have been deleted by an acquire and
        // its slots granted again, and renewing it then would hold more than maxConcurrent.
        const rows = await this.sequelize.query(`UPDATE send_leases SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
          WHERE tenant_id = $1 AND id = $2 AND expires_at > clock_timestamp() RETURNING id`, { bind: [tenantId, id, this.leaseMs], type: QueryTypes.SELECT });
        if (lost.signal.aborted || keeper === undefined) return;
        if (!rows.length) { stop(true); return; }
        clearTimeout(lose);
        lose = setTimeout(() => stop(true), sentAt + this.leaseMs - performance.now());
        lose.unref();
      } catch {
        // Tried again at the next tick; `lose` fires if none succeeds in time.
      } finally {
        renewing = false;
      }
    };
    let keeper: NodeJS.Timeout | undefined = setInterval(() => { void renew(); }, Math.max(1, Math.floor(this.leaseMs / 3)));
    keeper.unref();
    lose.unref();
    const stop = (asLost: boolean) => {
      clearInterval(keeper);
      clearTimeout(lose);
      keeper = undefined;
      if (asLost && !lost.signal.aborted) lost.abort(Object.assign(new Error('The send lease expired before it was renewed'), { name: 'LeaseLostError' }));
    };
    return {
      granted,
      inFlight,
      grantedAtMs,
      lost: lost.signal,
      release: () => {
        stop(false);
        // A release that failed (Postgres away for a moment) is tried again by the next call instead of keeping
        // the failure: else the lease would hold its slots until it expires, however often the caller retries.
        released ??= this.sequelize.query('SELECT docket_send_release($1, $2)', { bind: [tenantId, id] }).then(() => {
          for (const wake of [...(this.waiters.get(tenantId) ?? [])]) wake();
        }, (err: unknown) => {
          released = undefined;
          throw err;
        });
        return released;
      },
    };
  }

  private sleep(tenantId: string, ms: number, signal?: AbortSignal): Promise<void> {
    let waiters = this.waiters.get(tenantId);
    if (!waiters) this.waiters.set(tenantId, (waiters = new Set()));
    const mine = waiters;
    return new Promise((resolve, reject) => {
      const settle = (abort: boolean) => {
        clearTimeout(timer);
        mine.delete(wake);
        if (!mine.size && this.waiters.get(tenantId) === mine) this.waiters.delete(tenantId);
        signal?.removeEventListener('abort', aborted);
        if (abort) reject(abortReason(signal!));
        else resolve();
      };
      const wake = () => settle(false);
      const aborted = () => settle(true);
      const timer = setTimeout(wake, ms);
      mine.add(wake);
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }
}

/** A limiter over the tenants' sending settings (tenant_send_settings); one per process is enough, several agree. */
export function createSendLimiter(sequelize: Sequelize, opts: SendLimiterOptions = {}): SendLimiter {
  return new PostgresSendLimiter(sequelize, opts);
}

const perPool = new WeakMap<Sequelize, SendLimiter>();

/** The process's limiter on `sequelize`'s pool, shared by everything that sends (campaigns, reminders): one set of waiters. */
export function sharedSendLimiter(sequelize: Sequelize): SendLimiter {
  let limiter = perPool.get(sequelize);
  if (!limiter) perPool.set(sequelize, (limiter = createSendLimiter(sequelize)));
  return limiter;
}

/**
 * A lease for one send of the tenant, or null when `deadline` aborts before there is room. For a holder that sends a
 * message at a time, each just after its grant: nothing of the budget is spent on mail that does not go out.
 */
export async function acquireOne(limiter: SendLimiter, tenantId: string, deadline: AbortSignal): Promise<SendLease | null> {
  try {
    return await limiter.acquire(tenantId, 1, { signal: deadline });
  } catch (err) {
    if (deadline.aborted) return null;
    throw err;
  }
}
