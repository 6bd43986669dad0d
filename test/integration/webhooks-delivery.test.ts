// How webhook deliveries are scheduled, on the real stack (API, worker, Postgres, Temporal): each endpoint has its
// own delivery workflow, so a receiver that hangs delays only its own deliveries; a failing delivery is retried
// with doubling waits up to the longest, ends `dead` once the next attempt would fall after its retry deadline, and
// a manual retry of the dead letter delivers it with the same webhook-id.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { recordEvents } from '../../lib/events';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { waitFor } from '../helpers/wait';
import { startWebhookReceiver, WebhookReceiver, type ReceivedWebhook } from '../helpers/webhook-receiver';

// A deadline of 9 s leaves the backoff test its five attempts (0, 0.3, 0.9, 2.1, 3.3 s after the first) even when the
// relay's first attempt comes seconds after the event on a loaded 2-core CI box (with 6 s, one run there got four).
const RETRY = { initial: 300, max: 1200, giveUpSeconds: 9 };
let app: TestApp;
const receivers: WebhookReceiver[] = [];
beforeAll(async () => {
  app = await startTestApp({
    OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RELAY_EVERY_MS: '200', WEBHOOK_TIMEOUT_MS: '4000',
    WEBHOOK_RETRY_INITIAL_MS: String(RETRY.initial), WEBHOOK_RETRY_MAX_MS: String(RETRY.max), WEBHOOK_GIVE_UP_SECONDS: String(RETRY.giveUpSeconds),
  });
  await app.startWorker();
});
afterAll(async () => {
  await app.close();
  for (const r of receivers) await r.close();
});

async function receiver(): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver();
  receivers.push(r);
  return r;
}

/** Writes `n` events in one transaction, as a change's does; answers their ids and when they occurred. */
async function writeEvents(tenantId: string, n: number): Promise<Map<string, number>> {
  const tag = randomUUID();
  await app.sequelize.transaction((transaction) => recordEvents(Array.from({ length: n }, (_, i) => ({
    tenantId, type: 'document_batch.finished', subjectType: 'document_batch', subjectId: `${tag}-${i}`, data: { batchId: randomUUID(), done: i, failed: 0 },
  })), transaction));
  const rows = await app.sequelize.query<{ id: string; occurred_at: Date }>(`SELECT id, occurred_at FROM events WHERE tenant_id = $1 AND subject_id LIKE $2`,
    { bind: [tenantId, `${tag}-%`], type: 'SELECT' as never });
  return new Map(rows.map((r) => [r.id, r.occurred_at.getTime()]));
}

const headersOf = (h: ReceivedWebhook) => ({ 'webhook-id': String(h.headers['webhook-id']), 'webhook-timestamp': String(h.headers['webhook-timestamp']), 'webhook-signature': String(h.headers['webhook-signature']) });

it("an endpoint whose receiver hangs does not delay another endpoint's deliveries", async () => {
  const { tenant, key } = await buildCaller(['*']);
  const healthy = await receiver();
  const hanging = await receiver();
  hanging.hold(() => true);
  const post = (url: string) => app.call('post', '/v1/webhook-endpoints', key).send({ url, eventTypes: ['*'] }).expect(201);
  const slow = (await post(`${hanging.url}/slow`)).body as { id: string };
  const fast = (await post(`${healthy.url}/fast`)).body as { id: string; secret: string };
  // More than the hanging receiver's endpoint sends at once: its workflow is stuck on held requests for a while.
  const events = await writeEvents(tenant.id, 40);
  await waitFor(async () => new Set(healthy.received.map((h) => h.headers['webhook-id'])).size === 40, { what: 'all 40 at the healthy receiver', timeoutMs: 20_000 });
  const latencies = healthy.received.map((h) => h.at - events.get(String(h.headers['webhook-id']))!);
  // Meanwhile the other endpoint has requests held and nothing delivered.
  expect(hanging.received.length).toBeGreaterThan(0);
  expect(hanging.received.every((h) => h.status === 0)).toBe(true);
  const slowDelivered = (await app.call('get', `/v1/webhook-endpoints/${slow.id}/deliveries?status=delivered`, key).expect(200)).body.items;
  expect(slowDelivered).toEqual([]);
  // Each event reached the healthy receiver once, signed, within a few relay reads of occurring.
  expect(healthy.received).toHaveLength(40);
  expect(Math.max(...latencies)).toBeLessThan(3000);
  for (const h of healthy.received) expect(() => new Webhook(fast.secret).verify(h.body, headersOf(h))).not.toThrow();
  await app.call('delete', `/v1/webhook-endpoints/${slow.id}`, key).expect(204);
}, 60_000);

it('retries with doubling waits up to the longest, ends dead once the next would fall after retryUntil; a manual retry delivers it', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const r = await receiver();
  r.respondWith(...Array<number>(1000).fill(500));
  const e = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${r.url}/backoff`, eventTypes: ['*'] }).expect(201)).body as { id: string; secret: string };
  const [eventId] = [...(await writeEvents(tenant.id, 1)).keys()];
  const deliveriesOf = async () => (await app.call('get', `/v1/webhook-endpoints/${e.id}/deliveries`, key).expect(200)).body.items;
  const failed = await waitFor(async () => (await deliveriesOf()).find((d: { status: string }) => d.status === 'failed'), { what: 'a failed attempt' });
  // While it retries, the API says when the next attempt is.
  expect(Date.parse(failed.nextAttemptAt)).toBeGreaterThan(Date.parse(failed.lastAttemptAt));
  expect(Date.parse(failed.retryUntil) - Date.parse(failed.createdAt)).toBe(RETRY.giveUpSeconds * 1000);
  const dead = await waitFor(async () => (await deliveriesOf()).find((d: { status: string }) => d.status === 'dead'), { what: 'dead', timeoutMs: 20_000 });
  const at = dead.attemptLog.map((a: { at: string }) => Date.parse(a.at));
  const gaps = at.slice(1).map((t: number, i: number) => t - at[i]);
  const expected = gaps.map((_: number, i: number) => Math.min(RETRY.initial * 2 ** i, RETRY.max));
  expect(at.length).toBeGreaterThanOrEqual(5);
  // Never early (5 ms for the clocks' rounding), and not much later than scheduled.
  for (let i = 0; i < gaps.length; i++) {
    expect({ i, gap: gaps[i], early: gaps[i] < expected[i] - 5, late: gaps[i] > expected[i] + 1500 }).toEqual({ i, gap: gaps[i], early: false, late: false });
  }
  expect(dead).toMatchObject({ attempts: at.length, nextAttemptAt: null, lastStatusCode: 500 });
  // Dead because the next attempt would have come after its deadline, not before.
  const retryUntil = Date.parse(dead.retryUntil);
  // The last attempt was scheduled (after the one before it failed) no later than retryUntil; it may start a little later.
  expect(at.at(-2) + expected.at(-1)).toBeLessThanOrEqual(retryUntil);
  expect(at.at(-1) + Math.min(RETRY.initial * 2 ** (at.length - 1), RETRY.max)).toBeGreaterThan(retryUntil);
  await new Promise((res) => setTimeout(res, RETRY.max + 500));
  expect(r.received).toHaveLength(at.length);
  // The endpoint's delivery workflow is found by the endpoint's id, and ended once nothing was left to send.
  const handle = app.client.workflow.getHandle(`webhooks:${tenant.id}:${e.id}`);
  const described = await waitFor(async () => { const d = await handle.describe(); return d.status.name === 'COMPLETED' && d; }, { what: 'the endpoint workflow ended' });
  expect(described.type).toBe('webhookEndpointWorkflow');
  expect(described.typedSearchAttributes.getAll().map((a) => [a.key.name, a.value])).toEqual(expect.arrayContaining([['EntityType', 'webhook_endpoint'], ['EntityId', e.id], ['TenantId', tenant.id]]));

  // The dead letter retried by hand, the receiver healthy again: delivered with the same webhook-id, on a fresh deadline.
  r.respondWith();
  const before = Date.now();
  const retried = (await app.call('post', `/v1/webhook-deliveries/${dead.id}/retry`, key).expect(202)).body;
  expect(retried.status).toBe('pending');
  expect(Date.parse(retried.retryUntil)).toBeGreaterThanOrEqual(before + RETRY.giveUpSeconds * 1000 - 5);
  const done = await waitFor(async () => (await deliveriesOf()).find((d: { status: string }) => d.status === 'delivered'), { what: 'delivered after the manual retry' });
  expect(done).toMatchObject({ attempts: at.length + 1, lastStatusCode: 200, nextAttemptAt: null });
  expect(done.attemptLog.at(-1)).toMatchObject({ attempt: at.length + 1, outcome: 'delivered', statusCode: 200 });
  expect(r.received).toHaveLength(at.length + 1);
  expect(new Set(r.received.map((h) => h.headers['webhook-id']))).toEqual(new Set([eventId]));
  expect(() => new Webhook(e.secret).verify(r.received.at(-1)!.body, headersOf(r.received.at(-1)!))).not.toThrow();
}, 90_000);

it('a receiver that is down is probed a few deliveries at a time with backoff, not hammered with its whole backlog', async () => {
  const { tenant, key } = await buildCaller(['*']);
  // Nothing listens there (a loopback port just closed): every attempt is refused.
  const closed = await startWebhookReceiver();
  await closed.close();
  const e = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${closed.url}/down`, eventTypes: ['*'] }).expect(201)).body as { id: string };
  await writeEvents(tenant.id, 100);
  const attempts = async () => Number((await app.sequelize.query<{ count: string }>('SELECT count(*) FROM delivery_attempts WHERE subject_id = $1',
    { bind: [e.id], type: 'SELECT' as never }))[0].count);
  // The first round tries every due delivery once; from then on each round is a probe of SEND_CONCURRENCY.
  await waitFor(async () => (await attempts()) >= 100, { what: 'the first round' });
  const firstRoundAt = Date.now();
  await new Promise((res) => setTimeout(res, 3000));
  const rounds = Math.ceil(3000 / RETRY.initial);
  const later = (await attempts()) - 100;
  // Each delivery retried on its own would have made ~100 attempts per backoff; probes make at most 16 a round.
  expect(later).toBeGreaterThan(0);
  expect(later).toBeLessThanOrEqual(16 * rounds);
  expect(later).toBeLessThan(100);
  expect(Date.now() - firstRoundAt).toBeLessThan(RETRY.giveUpSeconds * 1000);
  await app.call('delete', `/v1/webhook-endpoints/${e.id}`, key).expect(204);
}, 60_000);

it('an event that commits late (behind what the relay read each second) is delivered by its deep re-read of the last minute', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const r = await receiver();
  const e = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${r.url}/late`, eventTypes: ['*'] }).expect(201)).body as { id: string; createdAt: string };
  const [first] = [...(await writeEvents(tenant.id, 1)).keys()];
  await r.waitFor((h) => h.headers['webhook-id'] === first, 20_000);
  // As a transaction that wrote its event at T and committed 8 s later: id and occurred_at from 8 s ago, after the
  // endpoint was created, and older than the RELAY_SHORT_SAFETY_MS each read looks back.
  const lateMs = 8_000;
  await waitFor(async () => Date.now() - Date.parse(e.createdAt) > lateMs + 500, { what: 'the endpoint older than the late event', timeoutMs: 15_000 });
  const [{ id: late }] = await app.sequelize.query<{ id: string }>(`INSERT INTO events (tenant_id, id, type, occurred_at, subject_type, subject_id, data)
    VALUES ($1, uuidv7(-($2 * interval '1 ms')), 'document_batch.finished', now() - $2 * interval '1 ms', 'document_batch', 'late', '{"batchId":"late","done":1,"failed":0}')
    RETURNING id`, { bind: [tenant.id, lateMs], type: 'SELECT' as never });
  const got = await r.waitFor((h) => h.headers['webhook-id'] === late, 45_000);
  expect(got.json).toMatchObject({ type: 'document_batch.finished', data: { batchId: 'late' } });
}, 90_000);
