// An endpoint's sending round claims its due deliveries under a lease: two rounds at once for the same endpoint (a
// retried activity while a zombie one still runs) never POST the same attempt twice, and the second learns when the
// claimed ones come due again. The activities run as Temporal runs them (MockActivityEnvironment) against the real
// Postgres; no worker runs here, so nothing else claims.
import { MockActivityEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { createWebhookActivities } from '../../activities/webhooks';
import { WebhookDelivery } from '../../db';
import { recordEvents } from '../../lib/events';
import { retrySchedule } from '../../domains/webhooks/commands';
import { claimLeaseMs, SEND_BATCH, type WebhookSendRound } from '../../workflows/webhooks.api';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { startWebhookReceiver, WebhookReceiver } from '../helpers/webhook-receiver';

let app: TestApp;
let hooks: WebhookReceiver;
beforeAll(async () => {
  hooks = await startWebhookReceiver();
  app = await startTestApp({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_TIMEOUT_MS: '3000' });
});
afterAll(async () => {
  await app.close();
  await hooks.close();
});

it('two rounds at once for one endpoint: every delivery POSTed once, logged once; the second waits for the lease', async () => {
  const acts = createWebhookActivities({
    secretsKey: app.config.secretsKey, allowPrivateNetworks: true, publicUrl: app.config.publicUrl,
    email: { send: async () => ({ messageId: 'unused' }), close: async () => {} },
  });
  const retry = retrySchedule(app);
  const { tenant, key } = await buildCaller(['*']);
  const e = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${hooks.url}/claim`, eventTypes: ['*'] }).expect(201)).body as { id: string };
  const n = 60;
  await app.sequelize.transaction((transaction) => recordEvents(Array.from({ length: n }, (_, i) => ({
    tenantId: tenant.id, type: 'document_batch.finished', subjectType: 'document_batch', subjectId: randomUUID(), data: { batchId: randomUUID(), done: i, failed: 0 },
  })), transaction));
  const env = () => new MockActivityEnvironment({}, { client: app.client });
  const relayed = await env().run(acts.relayWebhookEvents, { tenantId: tenant.id, retry });
  expect(relayed).toMatchObject({ created: n, woken: 1 });
  expect(n).toBeLessThan(SEND_BATCH);

  // Each answer takes a while: the first round is still sending when the second one starts.
  hooks.delay(300);
  const round = () => env().run(acts.sendDueWebhookDeliveries, { tenantId: tenant.id, endpointId: e.id, retry }) as Promise<WebhookSendRound>;
  const first = round();
  await hooks.waitFor((h) => h.path === '/claim', 5_000);
  const startedAt = Date.now();
  const second = await round();
  const one = await first;
  expect({ sent: one.sent + second.sent, failed: one.failed + second.failed }).toEqual({ sent: n, failed: 0 });
  // The second found everything claimed: nothing sent, told to come back once the lease is over.
  expect(second.sent).toBe(0);
  expect(second.nextDueAt).toBeGreaterThan(startedAt + claimLeaseMs(retry) - 2000);
  const ids = hooks.received.filter((h) => h.path === '/claim').map((h) => h.headers['webhook-id']);
  expect(ids).toHaveLength(n);
  expect(new Set(ids).size).toBe(n);
  const rows = await WebhookDelivery.findAll({ where: { endpointId: e.id } });
  expect(rows.map((d) => [d.status, d.attempts])).toEqual(Array(n).fill(['delivered', 1]));
  const [{ count }] = await app.sequelize.query<{ count: string }>('SELECT count(*) FROM delivery_attempts WHERE subject_id = $1', { bind: [e.id], type: 'SELECT' as never });
  expect(Number(count)).toBe(n);
  // Nothing is left: the endpoint's workflow would end.
  expect(await env().run(acts.sendDueWebhookDeliveries, { tenantId: tenant.id, endpointId: e.id, retry })).toEqual({ sent: 0, failed: 0, nextDueAt: null, stop: false });
}, 60_000);
