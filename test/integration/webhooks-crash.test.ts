// A worker SIGKILLed while a webhook delivery is in flight (the receiver holds the request), with more events
// written while no worker runs: a new worker delivers every event (at least once, with the same webhook-id on
// each try, every request verifiable) and none is lost.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { WebhookDelivery } from '../../db';
import { recordEvents } from '../../lib/events';
import { crashStack } from '../helpers/crash-stack';
import { buildCaller } from '../helpers/factories';
import { waitFor } from '../helpers/wait';
import { killWorker, spawnWorker } from '../helpers/worker-process';

const FAST = { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RELAY_EVERY_MS: '200', WEBHOOK_RETRY_INITIAL_MS: '200', WEBHOOK_RETRY_MAX_MS: '500', WEBHOOK_TIMEOUT_MS: '2000' };
const stack = crashStack({ webhooks: true, env: FAST });
const startWorker = () => spawnWorker({ WORKER_QUEUES: 'webhooks', ...FAST });

async function writeEvent(tenantId: string): Promise<void> {
  await stack.app.sequelize.transaction((transaction) => recordEvents([{
    tenantId, type: 'document_batch.finished', subjectType: 'document_batch', subjectId: randomUUID(), data: { batchId: randomUUID(), done: 1, failed: 0 },
  }], transaction));
}

it('delivers every event after the worker was SIGKILLed mid-delivery: none lost, same webhook-id on each try', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const path = `/crash-${randomUUID().slice(0, 8)}`;
  const first = startWorker();
  const endpoint = (await stack.app.call('post', '/v1/webhook-endpoints', key).send({ url: `${stack.hooks.url}${path}`, eventTypes: ['document_batch.*'] }).expect(201)).body as { id: string; secret: string };
  // The receiver holds its first request unanswered: the worker dies with that delivery in flight.
  stack.hooks.hold((h) => h.path === path);
  for (let i = 0; i < 3; i++) await writeEvent(tenant.id);
  await stack.hooks.waitFor((h) => h.path === path, 30_000);
  await killWorker(first);
  stack.hooks.hold(undefined);
  // Two more while no worker runs.
  for (let i = 0; i < 2; i++) await writeEvent(tenant.id);
  const [{ count }] = await stack.app.sequelize.query<{ count: string }>('SELECT count(*) FROM events WHERE tenant_id = $1', { bind: [tenant.id], type: 'SELECT' as never });
  expect(Number(count)).toBe(5);
  startWorker();

  const deliveries = await waitFor(async () => {
    const rows = await WebhookDelivery.findAll({ where: { endpointId: endpoint.id } });
    return rows.length === 5 && rows.every((d) => d.status === 'delivered') && rows;
  }, { what: 'all five delivered', timeoutMs: 90_000 });
  const eventIds = deliveries.map((d) => d.eventId).sort();
  const answered = stack.hooks.received.filter((h) => h.path === path && h.status === 200);
  // Each event answered 200 (at least once; the one in flight may have reached the receiver twice), nothing else sent.
  expect([...new Set(answered.map((h) => h.headers['webhook-id']))].sort()).toEqual(eventIds);
  const all = stack.hooks.received.filter((h) => h.path === path);
  expect(new Set(all.map((h) => h.headers['webhook-id'])).size).toBe(5);
  for (const h of all) {
    expect(() => new Webhook(endpoint.secret).verify(h.body, {
      'webhook-id': String(h.headers['webhook-id']), 'webhook-timestamp': String(h.headers['webhook-timestamp']), 'webhook-signature': String(h.headers['webhook-signature']),
    })).not.toThrow();
  }
  // The held one: its retry carried the same webhook-id.
  const held = all.find((h) => h.status === 0)!;
  expect(answered.some((h) => h.headers['webhook-id'] === held.headers['webhook-id'])).toBe(true);
}, 150_000);
