// The work pool: a task runs off the calling thread within its time budget and its thread's memory cap;
// one that overruns is stopped (its thread terminated) and the pool carries on.
import path from 'node:path';
import { TaskLimitError, WorkPool, WorkPoolBusyError } from '../../lib/work-pool';
import { createWorkPool } from '../../domains/work-pool';
import { RecurrenceError } from '../../lib/recurrence';
import { TemplateSyntaxError } from '../../domains/documents/templates';

type Burn = { spinMs?: number; holdMb?: number };
const burn = (pool: WorkPool, what: Burn, budgetMs: number) => pool.run('checkTemplate', [what as never], budgetMs);

describe('a pool whose threads are slow to start', () => {
  const pool = new WorkPool({ filename: path.join(__dirname, '..', 'helpers', 'work-pool-slow-start.js'), threads: 1 });
  afterAll(() => pool.close());

  it('does not charge the next task for starting the thread that replaces a stopped one', async () => {
    await expect(burn(pool, { spinMs: 1 }, 10_000)).resolves.toBe('done');
    await expect(burn(pool, { spinMs: 60_000 }, 300)).rejects.toMatchObject({ constructor: TaskLimitError, limit: 'time' });
    // 1.5 s of start-up would overrun this budget, were it counted.
    await expect(burn(pool, { spinMs: 1 }, 1_000)).resolves.toBe('done');
  });

  it('does not charge a task for a thread started on demand, nor for one replacing a thread stopped while another ran', async () => {
    const two = new WorkPool({ filename: path.join(__dirname, '..', 'helpers', 'work-pool-slow-start.js'), threads: 2 });
    try {
      // One thread kept started; the second starts (1.5 s) for the second task at once.
      await expect(Promise.all([burn(two, { spinMs: 1 }, 1_000), burn(two, { spinMs: 1 }, 1_000)])).resolves.toEqual(['done', 'done']);
      // One task overruns while another runs; the next two get the surviving thread and the replacement.
      const stopped = burn(two, { spinMs: 60_000 }, 300);
      const other = burn(two, { spinMs: 400 }, 1_000);
      await expect(stopped).rejects.toMatchObject({ constructor: TaskLimitError, limit: 'time' });
      await expect(other).resolves.toBe('done');
      await expect(Promise.all([burn(two, { spinMs: 1 }, 1_000), burn(two, { spinMs: 1 }, 1_000)])).resolves.toEqual(['done', 'done']);
    } finally {
      await two.close();
    }
  }, 30_000);
});

describe('a test pool', () => {
  const pool = new WorkPool({ filename: path.join(__dirname, '..', 'helpers', 'work-pool-burn.js'), threads: 1, memoryMb: 32, maxWaiting: 1, maxWaitMs: 3_000 });
  afterAll(() => pool.close());

  it('stops a task that overruns its budget, without blocking this thread, and serves the next one', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 50);
    const t0 = Date.now();
    await expect(burn(pool, { spinMs: 60_000 }, 500)).rejects.toMatchObject({ constructor: TaskLimitError, limit: 'time' });
    clearInterval(timer);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(ticks).toBeGreaterThan(4); // this thread's timers kept running while the task spun
    await expect(burn(pool, { spinMs: 10 }, 5_000)).resolves.toBe('done');
  });

  it('stops a task that needs more memory than its thread may use', async () => {
    await expect(burn(pool, { holdMb: 400 }, 30_000)).rejects.toMatchObject({ constructor: TaskLimitError, limit: 'memory' });
    await expect(burn(pool, { holdMb: 2 }, 5_000)).resolves.toBe(2);
  });

  it('refuses work when the wait for a thread would be too long; its budget starts when it gets one', async () => {
    const running = burn(pool, { spinMs: 1_500 }, 5_000);
    const second = burn(pool, { spinMs: 600 }, 1_000); // waits ~1.5 s, then runs 0.6 s: within its own 1 s
    await expect(burn(pool, { spinMs: 1 }, 1_000)).rejects.toBeInstanceOf(WorkPoolBusyError); // one waiter at most
    await expect(running).resolves.toBe('done');
    await expect(second).resolves.toBe('done');
  });
});

describe("Docket's pool", () => {
  const pool = createWorkPool({ threads: 1 });
  afterAll(() => pool.close());

  it('runs the tasks and hands their errors back as their own classes', async () => {
    const plan = { offsets: [0] };
    const now = new Date('2027-01-01T00:00:00Z');
    await expect(pool.run('firstTrigger', [{ recurrence: { rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0', timezone: 'Europe/Berlin', start: now.toISOString() } }, plan, now], 10_000))
      .resolves.toEqual({ at: '2027-01-04T08:00:00.000Z', occurrence: '2027-01-04T08:00:00.000Z', trigger: 'before:0m' });
    await expect(pool.run('firstTrigger', [{ recurrence: { rrule: 'FREQ=DAILY;BYHOUR=25', timezone: 'UTC', start: now.toISOString() } }, plan, now], 10_000)).rejects.toBeInstanceOf(RecurrenceError);
    const err = await pool.run('checkTemplate', [{ base: 'ok', header: '{% if x %}', footer: '', css: '', partials: {} }], 10_000).catch((e) => e);
    expect(err).toBeInstanceOf(TemplateSyntaxError);
    expect(err).toMatchObject({ part: 'header', line: 1 });
  });
});
