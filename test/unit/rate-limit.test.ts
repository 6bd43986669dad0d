// The shared rate limiter's arithmetic, against a stand-in for its Postgres statement.
import { Sequelize } from 'sequelize';
import { SharedRateLimiter } from '../../lib/rate-limit';

/** What the upsert does: adds each key's count to its row and returns the totals. */
function fakeStore(opts: { down?: () => boolean } = {}) {
  const rows = new Map<string, number>();
  const statements: string[] = [];
  const sequelize = {
    async query(sql: string, o: { bind: unknown[] }) {
      statements.push(sql.trim().split(/\s+/)[0]);
      if (opts.down?.()) throw new Error('connection refused');
      if (sql.startsWith('DELETE')) return [];
      const [prefix, windowStart, keys, counts] = o.bind as [string, Date, string[], number[]];
      return keys.map((k, i) => {
        const id = `${prefix}${k}@${windowStart.toISOString()}`;
        rows.set(id, (rows.get(id) ?? 0) + counts[i]);
        return { key: prefix + k, count: rows.get(id)! };
      });
    },
  } as unknown as Sequelize;
  return { sequelize, rows, statements };
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
  expect(store.statements.filter((s) => s === 'INSERT')).toHaveLength(1);
  expect([...store.rows.values()]).toEqual([10, 10, 10, 10, 10]);
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
