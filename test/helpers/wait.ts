// Polls until a condition holds: workflows finish asynchronously, tests wait for what a user would see.
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
