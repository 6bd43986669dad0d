// A worker SIGKILLed while reminders are pending (some delivered, some due while no worker runs): a
// new worker replays their histories and every reminder is delivered, none lost and none twice.
import { randomUUID } from 'node:crypto';
import { Delivery, Notification, WebhookDelivery, WebhookEndpoint } from '../../db';
import { createDueSoon } from '../helpers/due';
import { buildCaller, buildUser } from '../helpers/factories';
import { crashStack } from '../helpers/crash-stack';
import { waitFor, waitUntilPast } from '../helpers/wait';
import { killWorker, spawnWorker } from '../helpers/worker-process';

// The webhook relay reads often here (production: every second).
const FAST_RELAY = { WEBHOOK_RELAY_EVERY_MS: '200', WEBHOOK_RETRY_INITIAL_MS: '500', WEBHOOK_RETRY_MAX_MS: '1000' };
// The API accepts the receiver's loopback URL only with the development switch (as for webhook endpoints).
const stack = crashStack({ webhooks: true, env: { ...FAST_RELAY, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });

// The webhooks (delivered by the webhook relay, on its queue) go to a receiver on loopback, which only an explicit setting allows.
const startWorker = () => spawnWorker({ WORKER_QUEUES: 'reminders,webhooks', SMTP_URL: stack.smtp.url, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', ...FAST_RELAY });

it('delivers every pending reminder exactly once after its worker was SIGKILLed', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const ada = await buildUser(tenant, { email: `ada-${randomUUID().slice(0, 6)}@example.com` });
  const tag = randomUUID().slice(0, 8);
  const first = startWorker();
  const make = (n: number, dueAt: string) => stack.app.call('post', '/v1/reminders', key).send({
    subject: `crash-${tag}-${n}`, channels: ['email', 'in_app', 'webhook'], dueAt,
    recipients: { users: [ada.id], webhooks: [{ url: `${stack.hooks.url}/${tag}`, secret: 'whsec_crash_test_secret' }] },
  });
  // Three due at once (delivered by the first worker) …
  const early = await Promise.all([0, 1, 2].map(async (n) => (await createDueSoon((at) => make(n, at))).body.id as string));
  await waitFor(async () => (await Delivery.count({ where: { subjectId: early, status: 'sent' } })) === early.length * 2, { what: 'early reminders delivered', timeoutMs: 60_000 });
  // Their webhooks too (else one on the wire at the kill would be sent again — at least once, same webhook-id).
  const delivered = async () => WebhookDelivery.count({ where: { status: 'delivered', endpointId: (await WebhookEndpoint.findAll({ where: { reminderId: early } })).map((e) => e.id) } });
  await waitFor(async () => (await delivered()) === early.length, { what: 'early webhooks delivered', timeoutMs: 60_000 });
  // … and three whose timers the first worker starts, falling due after it is killed.
  const lateDue = new Date(Date.now() + 3000).toISOString();
  const late = await Promise.all([3, 4, 5].map(async (n) => (await make(n, lateDue).expect(201)).body as { id: string; workflowId: string }));
  const timerStarted = async (workflowId: string) => ((await stack.app.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).some((e) => e.timerStartedEventAttributes);
  await waitFor(async () => (await Promise.all(late.map((r) => timerStarted(r.workflowId)))).every(Boolean), { what: 'late reminders waiting on their timers', intervalMs: 50 });
  await killWorker(first);
  expect(Date.now()).toBeLessThan(Date.parse(lateDue)); // killed before they fell due, so none could be sent
  const ids = [...early, ...late.map((r) => r.id)];

  // The late ones fall due with no worker at all.
  await waitUntilPast(lateDue);
  expect(await Delivery.count({ where: { subjectId: late.map((r) => r.id) } })).toBe(0);
  startWorker();

  await waitFor(async () => {
    const states = await Promise.all(ids.map(async (id) => (await stack.app.call('get', `/v1/reminders/${id}`, key).expect(200)).body.status));
    return states.every((s) => s === 'completed');
  }, { what: 'all reminders completed', timeoutMs: 90_000 });

  // One delivery row per (reminder, channel, recipient), all sent; one notification per reminder.
  const rows = await Delivery.findAll({ where: { subjectId: ids } });
  expect(rows).toHaveLength(ids.length * 2);
  expect(rows.every((r) => r.status === 'sent')).toBe(true);
  expect(await Notification.count({ where: { userId: ada.id } })).toBe(ids.length);
  // Each message once: receivers deduplicate by Message-ID / webhook-id, and there is nothing to deduplicate.
  const mails = stack.smtp.messages.filter((m) => m.subject.includes(`crash-${tag}`));
  expect(mails).toHaveLength(ids.length);
  expect(new Set(mails.map((m) => m.headers['message-id'])).size).toBe(ids.length);
  const posts = await waitFor(async () => { const p = stack.hooks.received.filter((h) => h.path === `/${tag}`); return p.length >= ids.length && p; }, { what: 'every webhook', timeoutMs: 60_000 });
  await new Promise((r) => setTimeout(r, 1000)); // a few more relay reads: a second copy would arrive meanwhile
  expect(stack.hooks.received.filter((h) => h.path === `/${tag}`)).toHaveLength(ids.length);
  expect(new Set(posts.map((p) => p.headers['webhook-id'])).size).toBe(ids.length);
  expect(new Set(posts.map((p) => (p.json.data as { reminderId: string }).reminderId))).toEqual(new Set(ids));
}, 180_000);
