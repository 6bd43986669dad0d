// Nothing one tenant sends may stall the others: recurrence expansion and template rendering run on the
// API's work pool, bounded in iterations and time, while /health keeps answering at once.
import { randomUUID } from 'node:crypto';
import { Reminder } from '../../db';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';

let app: TestApp;
beforeAll(async () => { app = await startTestApp(); });
afterAll(async () => { await app.close(); });

const reminder = (recurrence: Record<string, unknown>) => ({ subject: 'Weekly sync', channels: ['email'], recipients: { emails: ['ops@example.com'] }, recurrence });

/** Polls /health every 50 ms until `work` settles; answers every /health latency seen, in ms. */
async function healthWhile(work: Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  let done = false;
  void work.finally(() => { done = true; });
  while (!done) {
    const t0 = Date.now();
    await app.call('get', '/health').expect(200);
    latencies.push(Date.now() - t0);
    await new Promise((r) => setTimeout(r, 50));
  }
  return latencies;
}

describe('recurrences', () => {
  it('refuses a rule that never occurs with 422 INVALID_RECURRENCE, quickly, and writes nothing', async () => {
    const { key, tenant } = await buildCaller(['*']);
    const t0 = Date.now();
    const res = await app.call('post', '/v1/reminders', key).send(reminder({ rrule: 'FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=31;BYHOUR=23', timezone: 'Europe/Berlin' })).expect(422);
    expect(Date.now() - t0).toBeLessThan(2_500);
    expect(res.body.code).toBe('INVALID_RECURRENCE');
    expect(res.body.detail).toMatch(/no occurrence found .* never occurs/);
    expect(await Reminder.count({ where: { tenantId: tenant.id } })).toBe(0);
  });

  it('keeps /health fast while five tenants send rules that never occur', async () => {
    const callers = await Promise.all(Array.from({ length: 5 }, () => buildCaller(['*'])));
    const rules = ['FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=31;BYHOUR=23', 'FREQ=YEARLY;BYWEEKNO=53;BYMONTH=6', 'FREQ=MINUTELY;BYSETPOS=2', 'FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31', 'FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30'];
    const sent = Promise.all(callers.map((c, i) => app.call('post', '/v1/reminders', c.key).send(reminder({ rrule: rules[i], timezone: 'UTC' }))));
    const latencies = await healthWhile(sent);
    // Each is refused: as never occurring, or — five searches sharing a loaded machine — stopped at its time budget.
    for (const r of await sent) expect([r.status, ['INVALID_RECURRENCE', 'RECURRENCE_TOO_EXPENSIVE'].includes(r.body.code)]).toEqual([422, true]);
    expect(Math.max(...latencies)).toBeLessThan(500);
  });

  it('stops a dispatch preview whose expansion overruns its 2 s budget: 422 RECURRENCE_TOO_EXPENSIVE', async () => {
    const { key } = await buildCaller(['*']);
    // A COUNT rule is searched from its start, every search: cheap once, too dear a hundred times over.
    const start = new Date(Date.now() - 3_000 * 60_000).toISOString();
    const created = await app.call('post', '/v1/reminders', key).send(reminder({ rrule: 'FREQ=MINUTELY;COUNT=100000;BYSECOND=0,10,20,30,40,50', timezone: 'UTC', start })).expect(201);
    const t0 = Date.now();
    const res = await app.call('get', `/v1/reminders/${created.body.id}/preview?count=100`, key).expect(422);
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(res.body.code).toBe('RECURRENCE_TOO_EXPENSIVE');
    expect((await app.call('get', `/v1/reminders/${created.body.id}/preview?count=2`, key).expect(200)).body.items).toHaveLength(2);
  });

  it('fires the README weekly example at 09:00:00 when no start is given, not at the creation second', async () => {
    const { key } = await buildCaller(['*']);
    const created = await app.call('post', '/v1/reminders', key).send(reminder({ rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0', timezone: 'Europe/Berlin' })).expect(201);
    expect(created.body.recurrence.start).toMatch(/:00\.000Z$/);
    const preview = await app.call('get', `/v1/reminders/${created.body.id}/preview?count=3`, key).expect(200);
    expect(preview.body.items).toHaveLength(3);
    for (const item of preview.body.items) {
      const local = new Date(item.at).toLocaleString('en-GB', { timeZone: 'Europe/Berlin', weekday: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit' });
      expect(local).toBe('Mon 09:00:00');
    }
  });
});

describe('template previews', () => {
  // Each render takes liquid's whole render limit (2 s) on a thread of the pool.
  const slow = { base: '{% for i in (1..5000) %}{% for j in (1..5000) %}{% endfor %}{% endfor %}', header: '', footer: '', css: '' };

  it('keeps /health fast while ten slow previews run; each answers 200, 422 or 503, never a stall', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send({ code: `slow-${randomUUID().slice(0, 8)}`, name: 'Slow', parts: slow }).expect(201)).body;
    // Warm: the operation's validator compiled, the pool's threads started.
    await Promise.all([1, 2].map(() => app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ data: {} })));
    const previews = Promise.all(Array.from({ length: 10 }, () => app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ data: {} })));
    const latencies = await healthWhile(previews);
    const answers = (await previews).map((r) => `${r.status} ${r.body.code}`);
    expect(answers.every((a) => ['422 TEMPLATE_RENDER_ERROR', '422 TEMPLATE_RENDER_LIMIT', '503 SERVICE_UNAVAILABLE'].includes(a))).toBe(true);
    expect(answers.filter((a) => a.startsWith('422')).length).toBeGreaterThanOrEqual(2);
    expect(latencies.length).toBeGreaterThan(10);
    expect(Math.max(...latencies)).toBeLessThan(500);
  });

  it('still renders a normal preview, escaped, on the pool', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send({ code: `ok-${randomUUID().slice(0, 8)}`, name: 'Ok', parts: { base: '<p>{{ who }}</p>' } }).expect(201)).body;
    const res = await app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ data: { who: '<b>Ada</b>' } }).expect(200);
    expect(res.text).toContain('<p>&lt;b&gt;Ada&lt;/b&gt;</p>');
  });
});
