// Polls until a condition holds: workflows finish asynchronously, tests wait for what a user would see.
import { QueryTypes, type Sequelize } from 'sequelize';
import { isContractViolation } from './contract';

/**
 * Calls `probe` every `intervalMs` until it returns something truthy, failing after `timeoutMs`. A probe
 * that throws is retried (the thing may not exist yet), except for a contract violation: a response
 * that breaks openapi.yaml fails the test at once, even if a later poll would have passed.
 * A test's waits together must fit in its timeout (120 s unless the test names a longer one), so a wait
 * that runs out reports what it waited for instead of Jest's bare timeout.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      if (isContractViolation(err)) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

/** Waits until the wall clock has passed `at` (a due time the test set): no guess at how long that is. */
export async function waitUntilPast(at: Date | string | number): Promise<void> {
  const t = new Date(at).getTime();
  while (Date.now() <= t) await new Promise((r) => setTimeout(r, Math.min(200, t - Date.now() + 1)));
}

/**
 * Backends of this test run's database waiting for a lock, in a statement matching `pattern` (an ILIKE pattern, e.g.
 * '%document_templates%'): how a test sees that a request it raced reached the lock the test holds.
 */
export async function lockWaiters(sequelize: Sequelize, pattern: string): Promise<number> {
  const [r] = await sequelize.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND query ILIKE $1",
    { bind: [pattern], type: QueryTypes.SELECT });
  return r.n;
}

/** Waits until exactly `n` backends wait for a lock in a statement matching `pattern` (see lockWaiters). */
export async function waitForLockWaiters(
  sequelize: Sequelize, pattern: string, n: number, opts: { what: string; timeoutMs?: number; intervalMs?: number },
): Promise<void> {
  await waitFor(async () => (await lockWaiters(sequelize, pattern)) === n, opts);
}
