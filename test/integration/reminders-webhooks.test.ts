// Reminder webhooks on the webhook endpoints' delivery path, on the real stack (API, Postgres, Temporal, a receiver):
// each webhook recipient is a reminder endpoint that gets its own reminder's reminder.fired events only — never
// another reminder's or another tenant's — signed per Standard Webhooks with the reminder's secret as raw key bytes
// (verified with the `standardwebhooks` package); it is not reachable through /v1/webhook-endpoints; replacing a
// reminder's webhooks replaces its endpoints; cancelling stops its deliveries; migration 0024 converts a reminder
// written in the old shape ({url, secret} inline) so that it keeps firing, its old delivery log still readable.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { AuditEvent, DeliveryAttempt, Reminder, WebhookEndpoint } from '../../db';
import { convertInlineReminderWebhooks } from '../../db/migrations/0024_reminder_webhook_endpoints';
import { sealSecret } from '../../lib/secrets';
import { startTestApp, TestApp } from '../helpers/app';
import { FAST_WEBHOOKS, Stack, startStack } from '../helpers/stack';
import { createDueSoon } from '../helpers/due';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { waitFor } from '../helpers/wait';
import type { ReceivedWebhook, WebhookReceiver } from '../helpers/webhook-receiver';

let stack: Stack;
let app: TestApp;
/** An API that keeps the production rule for outbound URLs: https only, no private destinations (no worker of its own). */
let strict: TestApp;
let hooks: WebhookReceiver;
beforeAll(async () => {
  ({ app, hooks } = stack = await startStack(FAST_WEBHOOKS));
  strict = await startTestApp({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false' });
});
afterAll(async () => {
  await strict.close();
  await stack.close();
});

const inDays = (d: number) => new Date(Date.now() + d * 86_400_000).toISOString();
const headersOf = (h: ReceivedWebhook) => ({ 'webhook-id': String(h.headers['webhook-id']), 'webhook-timestamp': String(h.headers['webhook-timestamp']), 'webhook-signature': String(h.headers['webhook-signature']) });
/** What a reminder webhook's receiver does: verify with the reminder's secret as raw (UTF-8) key bytes. */
const verify = (secret: string, h: ReceivedWebhook) => new Webhook(new TextEncoder().encode(secret), { format: 'raw' }).verify(h.body, headersOf(h)) as { type: string; data: { reminderId: string; trigger: string } };
const at = (path: string) => hooks.received.filter((h) => h.path === path);
/** A unique receiver path per use, so one test's requests are never another's. */
const path = (name: string) => `/${name}-${randomUUID().slice(0, 8)}`;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function reminder(key: string, over: Record<string, unknown>) {
  return app.call('post', '/v1/reminders', key).send({ subject: 'Renew the contract', channels: ['webhook'], dueAt: inDays(2), ...over });
}

/** A reminder with one webhook, due a moment from now. */
async function remindSoon(key: string, hookPath: string, secret: string, over: Record<string, unknown> = {}, leads?: number[]) {
  const res = await createDueSoon((dueAt) => reminder(key, { recipients: { webhooks: [{ url: `${hooks.url}${hookPath}`, secret }] }, dueAt, ...over }), leads);
  expect([res.status, res.body.code]).toEqual([201, undefined]);
  return res.body as { id: string; dueAt: string };
}

const webhookDeliveries = async (key: string, id: string) => (await app.call('get', `/v1/reminders/${id}/webhook-deliveries`, key).expect(200)).body.items as { id: string; status: string; attempts: number; attemptLog: { outcome: string }[] }[];

describe('delivery', () => {
  it("a tenant's reminder reaches its own webhook and its tenant's subscribers, never another tenant's endpoints", async () => {
    const a = await buildCaller(['*']);
    const b = await buildCaller(['*']);
    const [aAll, bAll, aRem, bRem] = [path('a-all'), path('b-all'), path('a-rem'), path('b-rem')];
    // Each tenant also has an endpoint of its own subscribed to reminder events.
    await app.call('post', '/v1/webhook-endpoints', a.key).send({ url: `${hooks.url}${aAll}`, eventTypes: ['reminder.*'] }).expect(201);
    await app.call('post', '/v1/webhook-endpoints', b.key).send({ url: `${hooks.url}${bAll}`, eventTypes: ['reminder.fired'] }).expect(201);
    const ra = await remindSoon(a.key, aRem, 'tenant-a-secret-0001');
    const rb = await remindSoon(b.key, bRem, 'tenant-b-secret-0002');
    await Promise.all([aAll, bAll, aRem, bRem].map((p) => hooks.waitFor((h) => h.path === p, 30_000)));
    await pause(1500); // a few more relay reads: anything misrouted would arrive meanwhile
    const ids = (p: string) => at(p).map((h) => (h.json.data as { reminderId: string }).reminderId);
    expect([ids(aRem), ids(aAll), ids(bRem), ids(bAll)]).toEqual([[ra.id], [ra.id], [rb.id], [rb.id]]);
    expect(verify('tenant-a-secret-0001', at(aRem)[0])).toMatchObject({ type: 'reminder.fired', data: { reminderId: ra.id } });
    expect(verify('tenant-b-secret-0002', at(bRem)[0])).toMatchObject({ type: 'reminder.fired', data: { reminderId: rb.id } });
    expect(() => verify('tenant-a-secret-0001', at(bRem)[0])).toThrow();
    // The same event, the same webhook-id, to both of a tenant's receivers.
    expect(at(aRem)[0].headers['webhook-id']).toBe(at(aAll)[0].headers['webhook-id']);
  });

  it("a reminder's webhook gets that reminder's events only (two reminders, two receivers, one tenant), each signed with its own secret", async () => {
    const t = await buildCaller(['*']);
    const [one, two] = [path('one'), path('two')];
    const r1 = await remindSoon(t.key, one, 'first-reminder-secret');
    const r2 = await remindSoon(t.key, two, 'second-reminder-secret ünïcode');
    await Promise.all([one, two].map((p) => hooks.waitFor((h) => h.path === p, 30_000)));
    await pause(1500);
    expect(at(one)).toHaveLength(1);
    expect(at(two)).toHaveLength(1);
    expect(verify('first-reminder-secret', at(one)[0]).data.reminderId).toBe(r1.id);
    // A non-ASCII secret signs as its UTF-8 bytes, as the old Docket-Signature HMAC did.
    expect(verify('second-reminder-secret ünïcode', at(two)[0]).data.reminderId).toBe(r2.id);
    expect(() => verify('first-reminder-secret', at(two)[0])).toThrow();
    for (const [r, p] of [[r1, one], [r2, two]] as const) {
      const [d] = await waitFor(async () => { const l = await webhookDeliveries(t.key, r.id); return l.length === 1 && l[0].status === 'delivered' && l; }, { what: 'delivered' });
      expect(d).toMatchObject({ attempts: 1, attemptLog: [{ outcome: 'delivered' }] });
      expect(at(p)[0].headers['webhook-id']).toBe((d as unknown as { eventId: string }).eventId);
    }
  });

  it('cancelling the reminder stops the deliveries still retrying: they end dead and nothing more is POSTed', async () => {
    const t = await buildCaller(['*']);
    const down = path('down');
    hooks.respondWith(...Array<number>(500).fill(503));
    try {
      // A repeat keeps the reminder open after its first trigger, so it can be cancelled.
      const r = await remindSoon(t.key, down, 'cancel-me-secret-0003', { repeat: { everyMinutes: 60, times: 1 } });
      await waitFor(async () => at(down).length >= 2, { what: 'two failed attempts', timeoutMs: 30_000 });
      await app.call('post', `/v1/reminders/${r.id}/cancel`, t.key).expect(200);
      const [dead] = await waitFor(async () => { const l = await webhookDeliveries(t.key, r.id); return l[0]?.status === 'dead' && l; }, { what: 'the delivery dead' });
      const posted = at(down).length;
      expect(dead.attempts).toBeGreaterThanOrEqual(2);
      await pause(1500); // several retry intervals (200–400 ms)
      expect(at(down)).toHaveLength(posted);
      expect(await WebhookEndpoint.findAll({ where: { reminderId: r.id }, attributes: ['enabled', 'disabledReason'], raw: true })).toEqual([{ enabled: false, disabledReason: 'The reminder was cancelled' }]);
    } finally {
      hooks.respondWith();
    }
  });
});

describe('managed through the reminder only', () => {
  it('a reminder endpoint is not listed, read, changed, tested, rotated, replayed, counted or deleted through /v1/webhook-endpoints; its delivery not retried there', async () => {
    const t = await buildCaller(['*']);
    const hooksAdmin = await buildApiKey(await buildUser(t.tenant, { permissions: ['webhooks.read', 'webhooks.manage'] }));
    const p = path('private');
    const r = await remindSoon(t.key, p, 'not-yours-secret-0004');
    const [delivery] = await waitFor(async () => { const l = await webhookDeliveries(t.key, r.id); return l[0]?.status === 'delivered' && l; }, { what: 'delivered' });
    const [ep] = await WebhookEndpoint.findAll({ where: { reminderId: r.id } });
    const base = `/v1/webhook-endpoints/${ep.id}`;
    for (const key of [t.key, hooksAdmin]) {
      expect((await app.call('get', '/v1/webhook-endpoints', key).expect(200)).body.items).toEqual([]);
      const refused = await Promise.all([
        app.call('get', base, key), app.call('patch', base, key).send({ url: 'https://evil.example.com/x', eventTypes: ['*'] }),
        app.call('get', `${base}/deliveries`, key), app.call('post', `${base}/test`, key),
        app.call('post', `${base}/rotate-secret`, key).send({ overlapHours: 0 }),
        app.call('post', `${base}/replay`, key).send({ since: new Date(Date.now() - 3600_000).toISOString(), until: new Date().toISOString() }),
        app.call('post', `/v1/webhook-deliveries/${delivery.id}/retry`, key), app.call('get', `${base}/stats`, key), app.call('delete', base, key),
        app.call('get', `/v1/webhook-deliveries?endpointId=${ep.id}`, key),
      ]);
      expect(refused.map((res) => `${res.status} ${res.body.code}`)).toEqual(Array(10).fill('404 NOT_FOUND'));
      // Nor in the tenant's delivery log, though it was delivered.
      expect((await app.call('get', '/v1/webhook-deliveries', key).expect(200)).body.items).toEqual([]);
    }
    const after = (await WebhookEndpoint.findByPk(ep.id))!;
    expect([after.url, after.eventTypes, after.enabled, after.secret]).toEqual([ep.url, ['reminder.fired'], true, ep.secret]);
    expect(at(p)).toHaveLength(1); // no test send, no replay, no retry
  });

  it("the reminder's webhook deliveries need reminders.read and stay in the tenant", async () => {
    const t = await buildCaller(['*']);
    const other = await buildCaller(['*']);
    const hooksOnly = await buildApiKey(await buildUser(t.tenant, { permissions: ['webhooks.read', 'webhooks.manage'] }));
    const reader = await buildApiKey(await buildUser(t.tenant, { permissions: ['reminders.read'] }));
    const r = (await reminder(t.key, { recipients: { webhooks: [{ url: 'https://hooks.example.com/r', secret: 'a-secret-of-16-chars' }] } }).expect(201)).body;
    const url = `/v1/reminders/${r.id}/webhook-deliveries`;
    expect((await app.call('get', url, reader).expect(200)).body).toEqual({ items: [], nextCursor: null });
    expect((await app.call('get', url, hooksOnly).expect(403)).body.code).toBe('PERMISSION_DENIED');
    expect((await app.call('get', url, other.key).expect(404)).body.code).toBe('NOT_FOUND');
    expect((await app.call('get', `${url}?status=nope`, reader).expect(400)).body.code).toBe('VALIDATION_FAILED');
  });

  it("replacing a reminder's webhooks replaces its endpoint: the next firing goes to the new URL with the new secret", async () => {
    const t = await buildCaller(['*']);
    const [old, fresh] = [path('old'), path('new')];
    const r = await remindSoon(t.key, old, 'the-old-secret-0005', { repeat: { everyMinutes: 60, times: 1 } });
    await hooks.waitFor((h) => h.path === old, 30_000);
    const [before] = await WebhookEndpoint.findAll({ where: { reminderId: r.id } });
    const res = await app.call('put', `/v1/reminders/${r.id}/webhooks`, t.key).send({ webhooks: [{ url: `${hooks.url}${fresh}`, secret: 'the-new-secret-0006' }] }).expect(200);
    expect(res.body.recipients.webhooks).toEqual([{ url: `${hooks.url}${fresh}` }]);
    expect(JSON.stringify(res.body)).not.toContain('the-new-secret');
    const now = await WebhookEndpoint.findAll({ where: { reminderId: r.id } });
    expect(now.map((e) => [e.url, e.recipientIndex, e.enabled])).toEqual([[`${hooks.url}${fresh}`, 0, true]]);
    expect(now[0].id).not.toBe(before.id);
    expect(await AuditEvent.count({ where: { entityId: r.id, action: 'reminders.reminder.webhooks_replaced' } })).toBe(1);
    // A snooze fires the open occurrence again a moment from now.
    const snoozed = await createDueSoon((until) => app.call('post', `/v1/reminders/${r.id}/snooze`, t.key).send({ until }));
    expect(snoozed.status).toBe(200);
    const got = await hooks.waitFor((h) => h.path === fresh, 30_000);
    expect(verify('the-new-secret-0006', got)).toMatchObject({ type: 'reminder.fired', data: { reminderId: r.id, trigger: expect.stringMatching(/^snooze:/) } });
    await pause(1000);
    expect([at(old).length, at(fresh).length]).toEqual([1, 1]);
  });

  it('refuses bad replacements with a stable code and changes nothing', async () => {
    const t = await buildCaller(['*']);
    const other = await buildCaller(['*']);
    const readOnly = await buildApiKey(await buildUser(t.tenant, { permissions: ['reminders.read'] }));
    const hooksOnly = await buildApiKey(await buildUser(t.tenant, { permissions: ['webhooks.read', 'webhooks.manage'] }));
    const hook = { url: 'https://hooks.example.com/x', secret: 'a-secret-of-16-chars' };
    const r = (await reminder(t.key, { recipients: { webhooks: [hook] } }).expect(201)).body;
    const emailOnly = (await reminder(t.key, { channels: ['email'], recipients: { emails: ['ops@example.com'] } }).expect(201)).body;
    const put = (key: string, id: string, body: unknown) => app.call('put', `/v1/reminders/${id}/webhooks`, key).send(body as object);
    const cases: [string, string, unknown, number, string][] = [
      [t.key, r.id, { webhooks: [] }, 400, 'VALIDATION_FAILED'],
      [t.key, r.id, { webhooks: [{ url: 'ftp://x', secret: 'a-secret-of-16-chars' }] }, 400, 'VALIDATION_FAILED'],
      [t.key, r.id, { webhooks: [{ url: 'https://x.example.com', secret: 'short' }] }, 400, 'VALIDATION_FAILED'],
      [t.key, emailOnly.id, { webhooks: [hook] }, 422, 'INVALID_REMINDER'],
      [readOnly, r.id, { webhooks: [hook] }, 403, 'PERMISSION_DENIED'],
      [hooksOnly, r.id, { webhooks: [hook] }, 403, 'PERMISSION_DENIED'],
      [other.key, r.id, { webhooks: [hook] }, 404, 'NOT_FOUND'],
    ];
    for (const [key, id, body, status, code] of cases) {
      const res = await put(key, id, body);
      expect([JSON.stringify(body), res.status, res.body.code]).toEqual([JSON.stringify(body), status, code]);
    }
    await app.call('post', `/v1/reminders/${r.id}/cancel`, t.key).expect(200);
    expect((await put(t.key, r.id, { webhooks: [{ url: 'https://y.example.com', secret: 'another-16-char-secret' }] }).expect(409)).body.code).toBe('REMINDER_CLOSED');
    const eps = await WebhookEndpoint.findAll({ where: { reminderId: r.id } });
    expect(eps.map((e) => e.url)).toEqual([hook.url]);
    expect(await WebhookEndpoint.count({ where: { reminderId: emailOnly.id } })).toBe(0);
  });
});

describe("a reminder's webhook URLs follow the rule of webhook endpoints", () => {
  // Refused by the production rule: not https, or an address that is private, loopback or link-local as written (the
  // SSRF classifier is asked; nothing is connected to).
  const REFUSED = ['http://hooks.example.com/x', 'https://10.1.2.3/x', 'https://127.0.0.1:8443/x', 'https://[::1]/x', 'https://169.254.169.254/latest', 'https://192.168.0.10/x', 'https://[::ffff:10.0.0.1]/x', 'https://hooks.example.com:99999/x'];
  // Public IP literals: classified as written (no DNS). The reminder is due in 30 days and cancelled at the end, so
  // nothing is ever sent to them.
  const PUBLIC = 'https://1.1.1.1/docket-hook';
  const PUBLIC_2 = 'https://1.0.0.1/docket-hook';
  const secret = 'a-secret-of-16-chars';
  const create = (a: TestApp, key: string, webhooks: string[], over: Record<string, unknown> = {}) =>
    a.call('post', '/v1/reminders', key).send({ subject: 'URL rule', channels: ['webhook'], dueAt: inDays(30), recipients: { webhooks: webhooks.map((url) => ({ url, secret })) }, ...over });
  const problem = (res: { status: number; body: { code?: string; errors?: { path: string }[] } }) => ({ status: res.status, code: res.body.code, paths: res.body.errors?.map((e) => e.path) });

  it('refuses a URL the rule refuses with 422 URL_NOT_ALLOWED at its path, writing nothing, on create and on replace; a public https URL is accepted', async () => {
    const t = await buildCaller(['*']);
    const written = async () => ({
      reminders: await Reminder.count({ where: { tenantId: t.tenant.id } }),
      endpoints: (await WebhookEndpoint.findAll({ where: { tenantId: t.tenant.id } })).map((e) => e.url),
      audits: await AuditEvent.count({ where: { tenantId: t.tenant.id, entityType: 'reminder' } }),
    });
    // Create: the refused URL second, behind an allowed one; also with the webhook channel off (the row would list it).
    for (const url of REFUSED) {
      expect({ url, ...problem(await create(strict, t.key, [PUBLIC, url])) }).toEqual({ url, status: 422, code: 'URL_NOT_ALLOWED', paths: ['/requestBody/recipients/webhooks/1/url'] });
      const emailOnly = await create(strict, t.key, [url], { channels: ['email'], recipients: { emails: ['ops@example.com'], webhooks: [{ url, secret }] } });
      expect({ url, ...problem(emailOnly) }).toEqual({ url, status: 422, code: 'URL_NOT_ALLOWED', paths: ['/requestBody/recipients/webhooks/0/url'] });
    }
    // Every refused URL is named.
    expect(problem(await create(strict, t.key, [REFUSED[0], PUBLIC, REFUSED[1]])))
      .toEqual({ status: 422, code: 'URL_NOT_ALLOWED', paths: ['/requestBody/recipients/webhooks/0/url', '/requestBody/recipients/webhooks/2/url'] });
    expect(await written()).toEqual({ reminders: 0, endpoints: [], audits: 0 });

    const created = await create(strict, t.key, [PUBLIC]);
    expect([created.status, created.body.code]).toEqual([201, undefined]);
    expect(created.body.recipients.webhooks).toEqual([{ url: PUBLIC }]);
    const id = created.body.id as string;
    const before = await written();
    expect(before).toEqual({ reminders: 1, endpoints: [PUBLIC], audits: 1 });

    // Replace: the same rule, at /requestBody/webhooks/<i>/url; the reminder and its endpoint unchanged.
    const put = (urls: string[]) => strict.call('put', `/v1/reminders/${id}/webhooks`, t.key).send({ webhooks: urls.map((url) => ({ url, secret })) });
    for (const url of REFUSED) {
      expect({ url, ...problem(await put([PUBLIC_2, url])) }).toEqual({ url, status: 422, code: 'URL_NOT_ALLOWED', paths: ['/requestBody/webhooks/1/url'] });
    }
    expect(await written()).toEqual(before);
    expect((await Reminder.findByPk(id))!.recipients.webhooks).toEqual([{ url: PUBLIC }]);
    const replaced = await put([PUBLIC_2]).expect(200);
    expect(replaced.body.recipients.webhooks).toEqual([{ url: PUBLIC_2 }]);
    expect((await WebhookEndpoint.findAll({ where: { reminderId: id } })).map((e) => e.url)).toEqual([PUBLIC_2]);

    await app.call('post', `/v1/reminders/${id}/cancel`, t.key).expect(200);
  });

  it('follows the development switch as webhook endpoints do: a loopback http URL only where OUTBOUND_ALLOW_PRIVATE_NETWORKS=true', async () => {
    const t = await buildCaller(['*']);
    const loopback = `${hooks.url}${path('dev')}`;
    expect(loopback).toMatch(/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+\//);
    expect(problem(await create(strict, t.key, [loopback]))).toEqual({ status: 422, code: 'URL_NOT_ALLOWED', paths: ['/requestBody/recipients/webhooks/0/url'] });
    expect(await Reminder.count({ where: { tenantId: t.tenant.id } })).toBe(0);
    const ok = await create(app, t.key, [loopback]).expect(201);
    expect((await strict.call('put', `/v1/reminders/${ok.body.id}/webhooks`, t.key).send({ webhooks: [{ url: loopback, secret }] })).body.code).toBe('URL_NOT_ALLOWED');
    await app.call('put', `/v1/reminders/${ok.body.id}/webhooks`, t.key).send({ webhooks: [{ url: loopback, secret }] }).expect(200);
    await app.call('post', `/v1/reminders/${ok.body.id}/cancel`, t.key).expect(200);
  });
});

describe('migration 0024', () => {
  it('converts a reminder written in the old shape into a reminder endpoint (sealed secret as is): it keeps firing, its old log still readable', async () => {
    const t = await buildCaller(['*']);
    const legacy = path('legacy');
    const SECRET = 'legacy-hmac-secret-0007';
    const key = app.config.secretsKey;
    // A reminder due in a few seconds, then rewritten as the code before 0024 wrote it: {url, secret} inline, no endpoint.
    const r = await remindSoon(t.key, legacy, SECRET, {}, [8000, 15_000]);
    const sealed = sealSecret(SECRET, key);
    const oldShape = async (id: string, url: string, secret: string, extra: Record<string, unknown> = {}) => {
      await WebhookEndpoint.destroy({ where: { reminderId: id } });
      await app.sequelize.query(`UPDATE reminders SET recipients = jsonb_set(recipients, '{webhooks}', $2::jsonb) ${extra.status ? ', status = $3, state_version = 1000000' : ''} WHERE id = $1`,
        { bind: [id, JSON.stringify([{ url, secret }]), ...(extra.status ? [extra.status] : [])] });
    };
    await oldShape(r.id, `${hooks.url}${legacy}`, sealed);
    // Two more: one that has ended (its workflow's later writes are older than this one), one listing a webhook without the webhook channel (it never fired one).
    const ended = (await reminder(t.key, { recipients: { webhooks: [{ url: 'https://hooks.example.com/ended', secret: 'x'.repeat(16) }] } }).expect(201)).body;
    await oldShape(ended.id, 'https://hooks.example.com/ended', sealSecret('x'.repeat(16), key), { status: 'completed' });
    const noChannel = (await reminder(t.key, { channels: ['email'], recipients: { emails: ['ops@example.com'], webhooks: [{ url: 'https://hooks.example.com/unused', secret: 'y'.repeat(16) }] } }).expect(201)).body;
    await oldShape(noChannel.id, 'https://hooks.example.com/unused', sealSecret('y'.repeat(16), key));
    // And an attempt of the old webhook path in its log.
    await DeliveryAttempt.create({
      tenantId: t.tenant.id, deliveryKey: `reminders:${ended.id}:x:before:0m:webhook:webhook:0`, subjectType: 'reminder', subjectId: ended.id, channel: 'webhook',
      recipient: 'https://hooks.example.com/ended', attempt: 1, status: 'sent', error: null, durationMs: null, detail: { occurrence: '2026-11-30T09:00:00.000Z', trigger: 'before:0m' }, at: new Date(),
    });

    await convertInlineReminderWebhooks(app.sequelize);
    await convertInlineReminderWebhooks(app.sequelize); // a second run changes nothing

    const endpoints = await WebhookEndpoint.findAll({ where: { reminderId: [r.id, ended.id, noChannel.id] }, order: [['enabled', 'ASC']] });
    expect(endpoints.map((e) => [e.reminderId, e.url, e.eventTypes, e.recipientIndex, e.enabled, e.tenantId])).toEqual([
      [ended.id, 'https://hooks.example.com/ended', ['reminder.fired'], 0, false, t.tenant.id],
      [r.id, `${hooks.url}${legacy}`, ['reminder.fired'], 0, true, t.tenant.id],
    ]);
    expect(endpoints[1].secret).toBe(sealed); // copied as it was: the same key opens it
    for (const id of [r.id, ended.id, noChannel.id]) {
      const row = (await Reminder.findByPk(id))!;
      expect(JSON.stringify(row.recipients.webhooks)).not.toContain('secret');
    }
    expect((await app.call('get', `/v1/reminders/${r.id}`, t.key).expect(200)).body.recipients.webhooks).toEqual([{ url: `${hooks.url}${legacy}` }]);
    expect((await app.call('get', `/v1/reminders/${noChannel.id}`, t.key).expect(200)).body.recipients.webhooks).toEqual([{ url: 'https://hooks.example.com/unused' }]);
    const oldLog = (await app.call('get', `/v1/reminders/${ended.id}/deliveries`, t.key).expect(200)).body.items;
    expect(oldLog).toEqual([expect.objectContaining({ channel: 'webhook', recipient: 'https://hooks.example.com/ended', status: 'sent', trigger: 'before:0m', occurrence: '2026-11-30T09:00:00.000Z' })]);

    // No relay runs for the tenant (as after a migration, which cannot start one): the firing wakes it.
    await app.client.workflow.getHandle(`webhooks:${t.tenant.id}:relay`).terminate('a tenant whose relay is not running');
    // The converted reminder fires through the new path, signed with the secret its receiver always had.
    const got = await hooks.waitFor((h) => h.path === legacy, 40_000);
    expect(verify(SECRET, got)).toMatchObject({ type: 'reminder.fired', data: { reminderId: r.id } });
    await pause(1000);
    expect(at(legacy)).toHaveLength(1);
  });
});
