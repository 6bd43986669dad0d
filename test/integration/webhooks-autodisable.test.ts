// An endpoint whose every delivery attempt has failed for WEBHOOK_AUTO_DISABLE_AFTER_SECONDS (shortened here) is
// disabled with a reason, audited as the system's change, and the tenant's administrators are emailed; its delivery
// ends dead. An endpoint of the same tenant that answers stays enabled.
import { randomUUID } from 'node:crypto';
import { recordEvents } from '../../lib/events';
import { TestApp } from '../helpers/app';
import { FAST_WEBHOOKS, Stack, startStack } from '../helpers/stack';
import { buildCaller, buildUser } from '../helpers/factories';
import type { SmtpSink } from '../helpers/smtp-sink';
import { waitFor } from '../helpers/wait';
import { startWebhookReceiver, WebhookReceiver } from '../helpers/webhook-receiver';

let stack: Stack;
let app: TestApp;
let hooks: WebhookReceiver;
let smtp: SmtpSink;
beforeAll(async () => { ({ app, hooks, smtp } = stack = await startStack({ ...FAST_WEBHOOKS, WEBHOOK_AUTO_DISABLE_AFTER_SECONDS: '2' })); });
afterAll(() => stack.close());

it('disables an endpoint failing every attempt for the stretch, audits it and emails the administrators', async () => {
  const { tenant, key, user: admin } = await buildCaller(['*']);
  await app.call('patch', '/v1/me', key).send({ timeZone: 'Asia/Tokyo' }).expect(200);
  const clerk = await buildUser(tenant, { permissions: ['webhooks.read'] });
  const tag = randomUUID().slice(0, 8);
  // Nothing listens there (a loopback port just closed): every attempt is refused.
  const closed = await startWebhookReceiver();
  await closed.close();
  const failing = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${closed.url}/down-${tag}`, eventTypes: ['*'] }).expect(201)).body;
  const healthy = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${hooks.url}/up-${tag}`, eventTypes: ['*'] }).expect(201)).body;
  const started = Date.now();
  await app.sequelize.transaction((transaction) => recordEvents([{ tenantId: tenant.id, type: 'document_batch.finished', subjectType: 'document_batch', subjectId: randomUUID(), data: { batchId: randomUUID(), done: 1, failed: 0 } }], transaction));
  await hooks.waitFor((h) => h.path === `/up-${tag}`);
  const disabled = await waitFor(async () => {
    const e = (await app.call('get', `/v1/webhook-endpoints/${failing.id}`, key).expect(200)).body;
    return e.enabled === false && e;
  }, { what: 'auto-disabled', timeoutMs: 30_000 });
  expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
  expect(disabled.disabledReason).toMatch(/^Every delivery attempt failed since /);
  const deliveries = await waitFor(async () => {
    const items = (await app.call('get', `/v1/webhook-endpoints/${failing.id}/deliveries`, key).expect(200)).body.items;
    return items[0]?.status === 'dead' && items;
  }, { what: 'dead' });
  expect(deliveries[0].attemptLog.every((a: { outcome: string; statusCode: number | null }) => a.outcome === 'failed' && a.statusCode === null)).toBe(true);
  const audit = (await app.call('get', `/v1/audit-events?entityId=${failing.id}`, key).expect(200)).body.items as { action: string; actor: { type: string } }[];
  expect(audit.filter((a) => a.action === 'webhooks.endpoint.auto_disabled')).toHaveLength(1);
  const mail = await waitFor(async () => smtp.messages.find((m) => m.subject === 'Webhook endpoint disabled' && m.text.includes(failing.id)), { what: 'mail' });
  expect(mail.to).toEqual([admin.email]);
  // Since when, as the administrator reads it: at Tokyo time (their zone), minute precision.
  const firstFailure = new Date(deliveries[0].attemptLog[0].at);
  const tokyo = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(firstFailure);
  expect(mail.text).toContain(`every delivery attempt failed since ${tokyo} (Asia/Tokyo)`);
  expect(mail.text).toContain(`PATCH http`);
  expect(smtp.messages.filter((m) => m.to.includes(clerk.email))).toEqual([]);
  expect((await app.call('get', `/v1/webhook-endpoints/${healthy.id}`, key).expect(200)).body).toMatchObject({ enabled: true, disabledReason: null });
}, 60_000);
