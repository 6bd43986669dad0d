// An endpoint's delivery statistics (GET /v1/webhook-endpoints/{id}/stats): figures computed from its deliveries and
// attempts in the range asked for — exact on known rows, and live on real deliveries to a receiver that answers and
// one that is down; who may read them; another tenant's endpoint is not found; a range too costly is refused.
import { randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { DeliveryAttempt } from '../../db/models/deliveries';
import { WebhookDelivery } from '../../db/models/webhooks';
import { endpointStats } from '../../domains/webhooks/stats';
import { recordEvents } from '../../lib/events';
import { TestApp } from '../helpers/app';
import { FAST_WEBHOOKS, Stack, startStack } from '../helpers/stack';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { waitFor } from '../helpers/wait';
import { startWebhookReceiver, WebhookReceiver } from '../helpers/webhook-receiver';

let stack: Stack;
let app: TestApp;
let hooks: WebhookReceiver;
beforeAll(async () => { ({ app, hooks } = stack = await startStack(FAST_WEBHOOKS)); });
afterAll(() => stack.close());

const DAY = 86_400_000;

/** A disabled endpoint (nothing delivers to it) with deliveries and attempts written as they would have been. */
async function seededEndpoint(key: string, tenantId: string) {
  const endpoint = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${hooks.url}/seeded`, eventTypes: ['approval.*'] }).expect(201)).body;
  await app.call('patch', `/v1/webhook-endpoints/${endpoint.id}`, key).send({ enabled: false }).expect(200);
  const now = Date.now();
  const delivery = (status: 'delivered' | 'dead' | 'failed', ageMs: number) => {
    const id = uuidv7({ msecs: now - ageMs });
    return { id, tenantId, endpointId: endpoint.id, eventId: randomUUID(), eventType: 'approval.flow.created', deliveryKey: `${endpoint.id}:${id}`, status, started: true, createdAt: new Date(now - ageMs), updatedAt: new Date(now - ageMs) };
  };
  const rows = [
    ...['delivered', 'delivered', 'delivered', 'dead', 'dead', 'failed'].map((s) => delivery(s as 'delivered', 2 * DAY)),
    delivery('delivered', 40 * DAY), // outside the default 30 days
  ];
  await WebhookDelivery.bulkCreate(rows);
  const attempt = (status: 'sent' | 'failed', durationMs: number, ageMs: number) => ({
    tenantId, deliveryKey: rows[0].id, subjectType: 'webhook_endpoint', subjectId: endpoint.id, channel: 'webhook' as const, recipient: endpoint.url,
    attempt: 1, status, error: status === 'sent' ? null : 'HTTP 500', durationMs, detail: null, at: new Date(now - ageMs),
  });
  await DeliveryAttempt.bulkCreate([
    attempt('sent', 10, 3 * DAY), attempt('sent', 20, 2 * DAY), attempt('sent', 30, DAY),
    ...[1, 2, 3, 4].map((h) => attempt('failed', 100, h * 3_600_000)),
    attempt('sent', 5_000, 40 * DAY),
  ]);
  return { endpoint, now, rows };
}

it('counts the range\'s deliveries by status and its attempts: success rate, mean and p95 duration, last success and failure', async () => {
  const { key, tenant } = await buildCaller(['*']);
  const { endpoint, now } = await seededEndpoint(key, tenant.id);
  const stats = (await app.call('get', `/v1/webhook-endpoints/${endpoint.id}/stats`, key).expect(200)).body;
  expect(stats).toMatchObject({
    endpointId: endpoint.id,
    deliveries: { total: 6, pending: 0, delivered: 3, failed: 1, dead: 2 },
    attempts: { total: 7, succeeded: 3, failed: 4, successRate: 0.4286, avgDurationMs: 66, p95DurationMs: 100 },
  });
  expect(Math.abs(Date.parse(stats.since) - (now - 30 * DAY))).toBeLessThan(60_000);
  expect(Math.abs(Date.parse(stats.lastDeliveredAt) - (now - DAY))).toBeLessThan(1_000);
  expect(Math.abs(Date.parse(stats.lastFailedAt) - (now - 3_600_000))).toBeLessThan(1_000);
  // A longer range takes in the older delivery and attempt; a shorter one leaves out all but the last day's.
  const sixty = (await app.call('get', `/v1/webhook-endpoints/${endpoint.id}/stats?days=60`, key).expect(200)).body;
  expect(sixty).toMatchObject({ deliveries: { total: 7, delivered: 4 }, attempts: { total: 8, succeeded: 4 } });
  const one = (await app.call('get', `/v1/webhook-endpoints/${endpoint.id}/stats?days=1`, key).expect(200)).body;
  expect(one).toMatchObject({ deliveries: { total: 0 }, attempts: { total: 4, succeeded: 0, successRate: 0 }, lastDeliveredAt: null });
  for (const days of ['0', '91', 'x', '1.5']) {
    expect((await app.call('get', `/v1/webhook-endpoints/${endpoint.id}/stats?days=${days}`, key).expect(400)).body.code).toBe('VALIDATION_FAILED');
  }
  // Counting under a budget too small for the rows: 422 RANGE_TOO_LARGE, not a request that holds a connection.
  await DeliveryAttempt.bulkCreate(Array.from({ length: 30_000 }, (_, i) => ({
    tenantId: tenant.id, deliveryKey: `bulk-${i}`, subjectType: 'webhook_endpoint', subjectId: endpoint.id, channel: 'webhook' as const, recipient: endpoint.url,
    attempt: 1, status: 'sent' as const, error: null, durationMs: i % 500, detail: null, at: new Date(now - (i % 20) * DAY),
  })));
  await expect(endpointStats(app.sequelize, tenant.id, endpoint.id, 30, 1)).rejects.toMatchObject({ status: 422, code: 'RANGE_TOO_LARGE' });
});

it('follows real deliveries: all delivered to a receiver that answers, only failures to one that is down', async () => {
  const { key, tenant } = await buildCaller(['*']);
  const tag = randomUUID().slice(0, 8);
  const closed = await startWebhookReceiver();
  await closed.close();
  const up = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${hooks.url}/up-${tag}`, eventTypes: ['*'] }).expect(201)).body;
  const down = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${closed.url}/down-${tag}`, eventTypes: ['*'] }).expect(201)).body;
  await app.sequelize.transaction((transaction) => recordEvents([1, 2, 3].map(() => ({
    tenantId: tenant.id, type: 'document_batch.finished' as const, subjectType: 'document_batch', subjectId: randomUUID(), data: { batchId: randomUUID(), done: 1, failed: 0 },
  })), transaction));
  const statsOf = async (id: string) => (await app.call('get', `/v1/webhook-endpoints/${id}/stats`, key).expect(200)).body;
  const healthy = await waitFor(async () => { const s = await statsOf(up.id); return s.deliveries.delivered === 3 && s; }, { what: 'three delivered', timeoutMs: 30_000 });
  expect(healthy).toMatchObject({ deliveries: { total: 3, delivered: 3 }, attempts: { total: 3, succeeded: 3, failed: 0, successRate: 1 }, lastFailedAt: null });
  expect(healthy.lastDeliveredAt).not.toBeNull();
  const failing = await waitFor(async () => { const s = await statsOf(down.id); return s.attempts.failed >= 3 && s; }, { what: 'failed attempts', timeoutMs: 30_000 });
  expect(failing).toMatchObject({ deliveries: { total: 3, delivered: 0 }, attempts: { succeeded: 0, successRate: 0 }, lastDeliveredAt: null });
  expect(failing.lastFailedAt).not.toBeNull();
  await app.call('delete', `/v1/webhook-endpoints/${down.id}`, key).expect(204);
});

it('webhooks.read reads them; another tenant\'s endpoint is not found', async () => {
  const { key, tenant } = await buildCaller(['*']);
  const endpoint = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${hooks.url}/perm`, eventTypes: ['*'] }).expect(201)).body;
  const { key: readerKey } = await buildCaller(['webhooks.read'], tenant);
  await app.call('get', `/v1/webhook-endpoints/${endpoint.id}/stats`, readerKey).expect(200);
  const { key: nobody } = await buildCaller(['audit.read'], tenant);
  expect((await app.call('get', `/v1/webhook-endpoints/${endpoint.id}/stats`, nobody).expect(403)).body.permission).toBe('webhooks.read');
  const other = await buildCaller(['*']);
  expect((await app.call('get', `/v1/webhook-endpoints/${endpoint.id}/stats`, other.key).expect(404)).body.code).toBe('NOT_FOUND');
  await app.call('get', `/v1/webhook-endpoints/${randomUUID()}/stats`, key).expect(404);
  await app.call('get', '/v1/webhook-endpoints/not-a-uuid/stats', key).expect(400);
});

describe('the tenant\'s delivery log: GET /v1/webhook-deliveries', () => {
  it('pages every endpoint\'s deliveries newest first, filtered by status, event type or endpoint; never another tenant\'s', async () => {
    const t = await buildCaller(['*']);
    const other = await buildCaller(['*']);
    const a = await seededEndpoint(t.key, t.tenant.id);
    const b = await seededEndpoint(t.key, t.tenant.id);
    const theirs = await seededEndpoint(other.key, other.tenant.id);
    const mine = [...a.rows, ...b.rows].sort((x, y) => (x.id < y.id ? 1 : -1)); // newest first: ids are UUIDv7
    const all = async (q = '') => {
      const seen: { id: string; endpointId: string; status: string; eventType: string }[] = [];
      for (let cursor: string | null = null, first = true; first || cursor; first = false) {
        const res: { body: { items: typeof seen; nextCursor: string | null } } = await app.call('get', `/v1/webhook-deliveries?limit=3${q}${cursor ? `&cursor=${cursor}` : ''}`, t.key).expect(200);
        seen.push(...res.body.items);
        cursor = res.body.nextCursor;
      }
      return seen;
    };
    expect((await all()).map((d) => d.id)).toEqual(mine.map((d) => d.id));
    expect((await all('&status=dead')).map((d) => d.id)).toEqual(mine.filter((d) => d.status === 'dead').map((d) => d.id));
    expect((await all(`&endpointId=${b.endpoint.id}&status=delivered`)).map((d) => d.id)).toEqual(b.rows.filter((d) => d.status === 'delivered').sort((x, y) => (x.id < y.id ? 1 : -1)).map((d) => d.id));
    expect(await all('&eventType=approval.flow.created')).toHaveLength(mine.length);
    expect(await all('&eventType=document.ready')).toEqual([]);
    // Each with its attempts, as an endpoint's own log shows them.
    const [newestOfA] = (await app.call('get', `/v1/webhook-endpoints/${a.endpoint.id}/deliveries?limit=1`, t.key).expect(200)).body.items;
    expect((await all(`&endpointId=${a.endpoint.id}`))[0]).toEqual(newestOfA);

    expect((await app.call('get', `/v1/webhook-deliveries?endpointId=${theirs.endpoint.id}`, t.key).expect(404)).body.code).toBe('NOT_FOUND');
    expect((await all()).some((d) => d.endpointId === theirs.endpoint.id)).toBe(false);
    for (const bad of ['status=gone', 'endpointId=nope', 'eventType=Approval.Flow', 'eventType=a..b', 'limit=0']) {
      expect([bad, (await app.call('get', `/v1/webhook-deliveries?${bad}`, t.key).expect(400)).body.code]).toEqual([bad, 'VALIDATION_FAILED']);
    }
    // webhooks.read, as an endpoint's log.
    const noHooks = await buildApiKey(await buildUser(t.tenant, { permissions: ['reminders.read'] }));
    expect((await app.call('get', '/v1/webhook-deliveries', noHooks).expect(403)).body.code).toBe('PERMISSION_DENIED');
    const hooksReader = await buildApiKey(await buildUser(t.tenant, { permissions: ['webhooks.read'] }));
    expect((await app.call('get', '/v1/webhook-deliveries?limit=100', hooksReader).expect(200)).body.items).toHaveLength(mine.length);
  });
});
