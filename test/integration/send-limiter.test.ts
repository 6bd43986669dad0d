// The send limiter across "processes" (two Sequelize instances, two limiters) on one tenant: the per-window budget
// and the concurrency cap hold under contention, a held lease renews itself and a dead holder's slots come back,
// a wait can be aborted.
import { QueryTypes, Sequelize } from 'sequelize';
import { createSequelize } from '../../db';
import { createSendLimiter, SendLease, SendLimiterOptions } from '../../lib/send-limiter';
import { buildTenant } from '../helpers/factories';

const first = createSequelize(process.env.DATABASE_URL!, { poolMax: 6 });
const second = createSequelize(process.env.DATABASE_URL!, { poolMax: 6 });
afterAll(async () => { await first.close(); await second.close(); });

async function tenantWith(settings?: { maxPerMinute: number; maxConcurrent: number }): Promise<string> {
  const tenant = await buildTenant();
  if (settings) {
    await first.query('INSERT INTO tenant_send_settings (tenant_id, max_per_minute, max_concurrent) VALUES ($1, $2, $3)', { bind: [tenant.id, settings.maxPerMinute, settings.maxConcurrent] });
  }
  return tenant.id;
}

const twoProcesses = (opts: SendLimiterOptions) => [createSendLimiter(first, opts), createSendLimiter(second, opts)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

async function hammer(limiters: ReturnType<typeof twoProcesses>, loopsEach: number, until: number, body: (lease: SendLease) => Promise<void>, tenantId: string, wanted: () => number) {
  await Promise.all(limiters.flatMap((limiter) => Array.from({ length: loopsEach }, async () => {
    while (Date.now() < until) {
      const lease = await limiter.acquire(tenantId, wanted());
      await body(lease);
      await lease.release();
    }
  })));
}

test('two processes never grant more than the budget in any window, and use most of it', async () => {
  const WINDOW = 1_000;
  const BUDGET = 30;
  const tenantId = await tenantWith({ maxPerMinute: BUDGET, maxConcurrent: 1000 });
  const grants: { at: number; n: number }[] = [];
  const started = Date.now();
  await hammer(twoProcesses({ windowMs: WINDOW, slotMs: 50 }), 4, started + 3_500, async ({ granted, grantedAtMs }) => { grants.push({ at: grantedAtMs, n: granted }); }, tenantId, () => random(1, 4));

  // On Postgres's clock, when each was granted (the clock the limiter counts on; a time read here would trail it by
  // however long this busy process took to hear the answer): no window of WINDOW holds more than the budget.
  grants.sort((x, y) => x.at - y.at);
  let worst = 0;
  for (const g of grants) {
    const inWindow = grants.filter((o) => o.at > g.at - WINDOW && o.at <= g.at).reduce((sum, o) => sum + o.n, 0);
    worst = Math.max(worst, inWindow);
  }
  expect(worst).toBeLessThanOrEqual(BUDGET);
  expect(worst).toBeGreaterThanOrEqual(BUDGET - 4);
  // Over the whole run most of the budget was granted: each full window of it about a budget's worth.
  const total = grants.reduce((sum, g) => sum + g.n, 0);
  const windows = (grants[grants.length - 1].at - grants[0].at) / WINDOW;
  expect(total).toBeGreaterThanOrEqual(Math.floor(windows) * BUDGET);
  expect(total).toBeLessThanOrEqual((Math.floor(windows) + 1) * BUDGET);
});

test('grants are paced: a tenant with demand gets its rate all along, not the whole window at once and then a wait', async () => {
  // 600 a 6 s window: one send every 10 ms, a burst of 100 ms worth (windowMs / 60).
  const WINDOW = 6_000;
  const tenantId = await tenantWith({ maxPerMinute: 600, maxConcurrent: 1000 });
  const grants: { at: number; n: number }[] = [];
  const started = Date.now();
  await hammer(twoProcesses({ windowMs: WINDOW }), 2, started + 3_000, async ({ granted, grantedAtMs }) => { grants.push({ at: grantedAtMs, n: granted }); }, tenantId, () => random(1, 40));
  grants.sort((x, y) => x.at - y.at);
  const first = grants[0].at;
  const inSecond = (from: number) => grants.filter((g) => g.at >= from && g.at < from + 1_000).reduce((sum, g) => sum + g.n, 0);
  // Without pacing all 600 would be granted at once. Paced: no second gets more than its 100 and the burst (10, +1),
  for (const g of grants) expect(inSecond(g.at)).toBeLessThanOrEqual(111);
  // and every whole second of the run gets close to its 100: the rate holds from below as well.
  for (let from = first; from + 1_000 <= grants[grants.length - 1].at; from += 250) expect(inSecond(from)).toBeGreaterThanOrEqual(85);
  // Grants are worth a batch: once the pace binds, none smaller than half a burst (5) unless less was wanted.
  expect(grants.filter((g) => g.n < 5).length).toBeLessThan(grants.length / 2);
});

test('a raised limit applies from the next grant, though the pace was set at the lower one', async () => {
  const tenantId = await tenantWith({ maxPerMinute: 1, maxConcurrent: 100 });
  const [limiter] = twoProcesses({});
  // At 1 a minute, this grant puts the next one a minute ahead.
  const one = await limiter.acquire(tenantId, 1);
  expect(one.granted).toBe(1);
  await first.query('UPDATE tenant_send_settings SET max_per_minute = 600000 WHERE tenant_id = $1', { bind: [tenantId] });
  const t0 = Date.now();
  const next = await limiter.acquire(tenantId, 100, { signal: AbortSignal.timeout(3_000) });
  expect(next.granted).toBe(100);
  expect(Date.now() - t0).toBeLessThan(1_500);
  for (const l of [one, next]) await l.release();
});

test('two processes never hold more than maxConcurrent sends at once', async () => {
  const tenantId = await tenantWith({ maxPerMinute: 1_000_000, maxConcurrent: 3 });
  let inFlight = 0;
  let most = 0;
  let rounds = 0;
  await hammer(twoProcesses({ pollMs: 5 }), 5, Date.now() + 2_000, async (lease) => {
    expect(lease.inFlight).toBeGreaterThanOrEqual(1);
    expect(lease.inFlight).toBeLessThanOrEqual(lease.granted);
    inFlight += lease.inFlight;
    most = Math.max(most, inFlight);
    rounds++;
    await sleep(random(2, 15));
    inFlight -= lease.inFlight;
  }, tenantId, () => random(1, 3));
  expect(most).toBe(3);
  expect(rounds).toBeGreaterThan(20);
});

test('grants part of what is wanted, and follows a settings change at the next grant', async () => {
  const tenantId = await tenantWith({ maxPerMinute: 5, maxConcurrent: 100 });
  // Pacing aside (a burst of an hour's worth): the window alone.
  const [limiter] = twoProcesses({ windowMs: 60_000, burstMs: 3_600_000 });
  expect((await limiter.acquire(tenantId, 3)).granted).toBe(3);
  expect((await limiter.acquire(tenantId, 3)).granted).toBe(2);
  await first.query('UPDATE tenant_send_settings SET max_per_minute = 8 WHERE tenant_id = $1', { bind: [tenantId] });
  expect((await limiter.acquire(tenantId, 10)).granted).toBe(3);
  // Without a settings row: the defaults (600 a minute, 10 at once).
  const other = await tenantWith();
  expect(await limiter.acquire(other, 50)).toMatchObject({ granted: 50, inFlight: 10 });
  await expect(limiter.acquire(other, 0)).rejects.toThrow(RangeError);
  await expect(limiter.acquire(other, 5, { inFlight: 0 })).rejects.toThrow(RangeError);
});

test('a lease holds the slots its sends use at once, not one per send: batches of 500 sending 10 at a time share maxConcurrent', async () => {
  const tenantId = await tenantWith({ maxPerMinute: 600_000, maxConcurrent: 25 });
  const [a, b] = twoProcesses({ pollMs: 1_000 });
  const one = await a.acquire(tenantId, 500, { inFlight: 10 });
  const two = await b.acquire(tenantId, 500, { inFlight: 10 });
  expect([one, two].map((l) => [l.granted, l.inFlight])).toEqual([[500, 10], [500, 10]]);
  // 5 slots are left: the next batch is granted in full, to send 5 at a time.
  const three = await a.acquire(tenantId, 500, { inFlight: 10 });
  expect([three.granted, three.inFlight]).toEqual([500, 5]);
  // None left: nothing is granted (the wait gives up at its signal) until a lease is released.
  const blocked = await b.acquire(tenantId, 500, { inFlight: 10, signal: AbortSignal.timeout(200) }).catch((e: Error) => e);
  expect((blocked as Error).name).toMatch(/AbortError|TimeoutError/);
  await two.release();
  const four = await b.acquire(tenantId, 500, { inFlight: 10 });
  expect([four.granted, four.inFlight]).toEqual([500, 10]);
  // The budget still counts every send granted: 2,000 of this minute's 600,000.
  const [{ sends }] = await first.query<{ sends: number }>('SELECT sum(sends)::int AS sends FROM send_rate_slots WHERE tenant_id = $1', { bind: [tenantId], type: QueryTypes.SELECT });
  expect(sends).toBe(2_000);
  for (const l of [one, three, four]) await l.release();
});

test("a dead holder's slots come back within leaseMs: its lease is no longer renewed", async () => {
  const tenantId = await tenantWith({ maxPerMinute: 1_000, maxConcurrent: 2 });
  // The dying process: its own connection, closed right after the grant (from Postgres's side, as a SIGKILL).
  // (A plain instance: createSequelize would bind the models to it.)
  const dyingDb = new Sequelize(process.env.DATABASE_URL!, { dialect: 'postgres', logging: false });
  const dying = createSendLimiter(dyingDb, { leaseMs: 400 });
  const survivor = createSendLimiter(second, {});
  const held = await dying.acquire(tenantId, 2);
  expect(held.granted).toBe(2);
  await dyingDb.close();
  // Never released: the survivor waits for the lease to expire, then gets the slots.
  const t0 = Date.now();
  const lease = await survivor.acquire(tenantId, 2);
  expect(lease.granted).toBe(2);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  expect(Date.now() - t0).toBeLessThan(2_000);
  // The dead holder, had it gone on, would have been told to stop: its renewals failed until the lease ran out.
  expect(held.lost.aborted).toBe(true);
  await lease.release();
});

test('a lease held longer than leaseMs keeps its slots (it renews itself) until released', async () => {
  const tenantId = await tenantWith({ maxPerMinute: 1_000, maxConcurrent: 1 });
  const [a, b] = twoProcesses({ leaseMs: 300 });
  const held = await a.acquire(tenantId, 1);
  await sleep(1_000);
  // Three leaseMs later the slot is still held: the other process gets nothing.
  const refused = await b.acquire(tenantId, 1, { signal: AbortSignal.timeout(400) }).catch((e: Error) => e);
  expect((refused as Error).name).toMatch(/AbortError|TimeoutError/);
  expect(held.lost.aborted).toBe(false);
  await held.release();
  const next = await b.acquire(tenantId, 1, { signal: AbortSignal.timeout(1_000) });
  expect(next.granted).toBe(1);
  // Released, it is renewed no more: its slot stays free once the next holder releases.
  await next.release();
  await sleep(400);
  const [{ leases }] = await first.query<{ leases: number }>('SELECT count(*)::int AS leases FROM send_leases WHERE tenant_id = $1', { bind: [tenantId], type: QueryTypes.SELECT });
  expect(leases).toBe(0);
});

test('a lease that expired before its renewal (its slots may be granted again) is reported lost, and not renewed', async () => {
  const tenantId = await tenantWith({ maxPerMinute: 1_000, maxConcurrent: 1 });
  const limiter = createSendLimiter(first, { leaseMs: 300 });
  const held = await limiter.acquire(tenantId, 1);
  // As if the holder stalled past its expiry and another process's acquire cleared the lease and took the slot.
  await first.query('DELETE FROM send_leases WHERE tenant_id = $1', { bind: [tenantId] });
  const other = await createSendLimiter(second, { leaseMs: 300 }).acquire(tenantId, 1, { signal: AbortSignal.timeout(1_000) });
  await sleep(250);
  expect(held.lost.aborted).toBe(true);
  expect((held.lost.reason as Error).name).toBe('LeaseLostError');
  // The other holder's slot is its own: the lost lease took nothing back.
  const [{ slots }] = await first.query<{ slots: number }>('SELECT coalesce(sum(slots), 0)::int AS slots FROM send_leases WHERE tenant_id = $1', { bind: [tenantId], type: QueryTypes.SELECT });
  expect(slots).toBe(1);
  await held.release();
  await other.release();
});

test('a released lease frees its slots at once; a wait is aborted by its signal', async () => {
  const tenantId = await tenantWith({ maxPerMinute: 1_000, maxConcurrent: 1 });
  const [a, b] = twoProcesses({ pollMs: 1_000 });
  const held = await a.acquire(tenantId, 1);
  const controller = new AbortController();
  const waiting = b.acquire(tenantId, 1, { signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  const t0 = Date.now();
  expect((await waiting.catch((e: Error) => e) as Error).name).toBe('AbortError');
  expect(Date.now() - t0).toBeLessThan(500);
  expect((await b.acquire(tenantId, 1, { signal: AbortSignal.abort() }).catch((e: Error) => e) as Error).name).toBe('AbortError');
  // In the same process, a release wakes the waiter at once (not after pollMs).
  const next = a.acquire(tenantId, 1);
  await sleep(50);
  const t1 = Date.now();
  await held.release();
  await held.release(); // twice is harmless
  expect((await next).granted).toBe(1);
  expect(Date.now() - t1).toBeLessThan(500);
});

test("a release wakes only its own tenant's waiters in the process (campaigns and reminders of every tenant share one limiter)", async () => {
  const busy = await tenantWith({ maxPerMinute: 1_000, maxConcurrent: 1 });
  const other = await tenantWith({ maxPerMinute: 1_000, maxConcurrent: 1 });
  const limiter = createSendLimiter(first, { pollMs: 5_000 });
  const heldOther = await limiter.acquire(other, 1);
  const spy = jest.spyOn(first, 'query');
  try {
    const asksOf = (tenantId: string) => spy.mock.calls.filter(([sql, o]) => String(sql).includes('docket_send_acquire') && (o as { bind?: unknown[] } | undefined)?.bind?.[0] === tenantId).length;
    const waiting = limiter.acquire(other, 1);
    await sleep(100);
    expect(asksOf(other)).toBe(1);
    // Twenty grants and releases of another tenant meanwhile: the waiter is not asked again for any of them.
    for (let i = 0; i < 20; i++) await (await limiter.acquire(busy, 1)).release();
    expect(asksOf(other)).toBe(1);
    // Its own tenant's release wakes it at once.
    await heldOther.release();
    expect((await waiting).granted).toBe(1);
    expect(asksOf(other)).toBe(2);
  } finally {
    spy.mockRestore();
  }
});

test('a release that failed once is tried again by the next call, and frees the slots', async () => {
  const tenantId = await tenantWith({ maxPerMinute: 1000, maxConcurrent: 2 });
  // The first release statement fails (Postgres away for a moment); everything else goes through.
  let failNext = true;
  const flaky = new Proxy(first, {
    get(target, prop, receiver) {
      if (prop !== 'query') return Reflect.get(target, prop, receiver);
      return (sql: string, options: unknown) => {
        if (failNext && String(sql).includes('docket_send_release')) {
          failNext = false;
          return Promise.reject(new Error('connection reset'));
        }
        return target.query(sql, options as never);
      };
    },
  });
  const limiter = createSendLimiter(flaky);
  const lease = await limiter.acquire(tenantId, 2);
  expect(lease.granted).toBe(2);
  await expect(lease.release()).rejects.toThrow('connection reset');
  await lease.release();
  const next = await Promise.race([limiter.acquire(tenantId, 2), sleep(1_000).then(() => null)]);
  expect(next?.granted).toBe(2);
  await next?.release();
});
