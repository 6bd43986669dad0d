// The shared rate limiter's arithmetic, against a stand-in for its Postgres statement.
import { Sequelize } from 'sequelize';
import { SharedRateLimiter } from '../../lib/rate-limit';

/** What the sync statement does: adds the busy keys' counts to their rows, reads the idle keys' rows, returns the totals. */
function fakeStore(opts: { down?: () => boolean } = {}) {
  const rows = new Map<string, number>();
  /** Row versions written per row (an upsert writes one even when it adds nothing). */
  const writes = new Map<string, number>();
  const statements: string[] = [];
  const sequelize = {
    async query(sql: string, o: { bind: unknown[] }) {
      statements.push(sql.trim().split(/\s+/)[0]);
      if (opts.down?.()) throw new Error('connection refused');
      if (sql.startsWith('DELETE')) return [];
      const [prefix, windowStart, keys, counts, idle] = o.bind as [string, Date, string[], number[], string[]];
      const id = (k: string) => `${prefix}${k}@${windowStart.toISOString()}`;
      const added = keys.map((k, i) => {
        rows.set(id(k), (rows.get(id(k)) ?? 0) + counts[i]);
        writes.set(id(k), (writes.get(id(k)) ?? 0) + 1);
        return { key: prefix + k, count: rows.get(id(k))! };
      });
      return [...added, ...idle.filter((k) => rows.has(id(k))).map((k) => ({ key: prefix + k, count: rows.get(id(k))! }))];
    },
  } as unknown as Sequelize;
  return { sequelize, rows, writes, statements };
}

const limiters: SharedRateLimiter[] = [];
function limiter(sequelize: Sequelize, points: number, onSyncError?: (err: unknown) => void) {
  const l = new SharedRateLimiter({ sequelize, name: 'test', points, syncMs: 3_600_000, onSyncError });
  limiters.push(l);
  return l;
}
afterAll(async () => {
  for (const l of limiters) await l.close().catch(() => undefined);
});

beforeEach(() => {
  // Mid-minute, so no test crosses a window boundary.
  jest.useFakeTimers({ now: new Date('2030-01-01T12:00:20Z'), doNotFake: ['nextTick', 'setImmediate'] });
});
afterEach(() => jest.useRealTimers());

it('admits `points` requests per key and window, then refuses with the seconds left in the window', () => {
  const l = limiter(fakeStore().sequelize, 3);
  expect([1, 2, 3].map(() => l.consume('a').allowed)).toEqual([true, true, true]);
  expect(l.consume('a')).toEqual({ allowed: false, retryAfterSeconds: 40 });
  expect(l.consume('b').allowed).toBe(true);
  jest.setSystemTime(new Date('2030-01-01T12:01:00Z'));
  expect(l.consume('a').allowed).toBe(true);
});

it('counts nothing on the request path: one statement per sync for all keys', async () => {
  const store = fakeStore();
  const l = limiter(store.sequelize, 100);
  for (let i = 0; i < 50; i++) l.consume(`k${i % 5}`);
  expect(store.statements).toEqual([]);
  await l.sync();
  expect(store.statements.filter((s) => s === 'WITH')).toHaveLength(1);
  expect([...store.rows.values()]).toEqual([10, 10, 10, 10, 10]);
});

it('reads a key idle here without rewriting its row, and still learns what other processes added to it', async () => {
  const store = fakeStore();
  const [one, two] = [limiter(store.sequelize, 10), limiter(store.sequelize, 10)];
  one.consume('k');
  await one.sync();
  for (let i = 0; i < 5; i++) await one.sync();
  expect([...store.writes.values()]).toEqual([1]);
  for (let i = 0; i < 9; i++) two.consume('k');
  await two.sync();
  await one.sync();
  expect([...store.writes.values()]).toEqual([2]);
  expect(one.consume('k').allowed).toBe(false);
});

it('two processes share one budget once they have synced', async () => {
  const store = fakeStore();
  const [one, two] = [limiter(store.sequelize, 10), limiter(store.sequelize, 10)];
  for (let i = 0; i < 8; i++) expect(one.consume('k').allowed).toBe(true);
  await one.sync();
  expect(two.consume('k').allowed).toBe(true);
  await two.sync();
  expect(two.consume('k').allowed).toBe(true);
  expect(two.consume('k').allowed).toBe(false);
  await two.sync();
  await one.sync();
  expect(one.consume('k').allowed).toBe(false);
  expect(one.check('k').allowed).toBe(false);
  expect(one.check('never-seen').allowed).toBe(true);
});

it('keeps limiting on its own counts while Postgres is down, says so, and catches up after', async () => {
  let down = true;
  const store = fakeStore({ down: () => down });
  const errors: unknown[] = [];
  const l = limiter(store.sequelize, 5, (err) => errors.push(err));
  for (let i = 0; i < 3; i++) l.consume('k');
  await l.sync();
  expect(errors).toHaveLength(1);
  expect([l.consume('k').allowed, l.consume('k').allowed, l.consume('k').allowed]).toEqual([true, true, false]);
  down = false;
  await l.sync();
  expect([...store.rows.values()]).toEqual([5]);
  expect(l.consume('k').allowed).toBe(false);
});
