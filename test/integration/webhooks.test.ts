// Webhook endpoints on the real stack: the secret shown once and kept sealed; events written to the outbox reach
// matching enabled endpoints, signed per Standard Webhooks (verified with the `standardwebhooks` library), retried
// with every attempt logged, delivered once; bad URLs (the SSRF classifier, asked, never connected to) and unknown
// event types refused; permissions (webhooks.read / webhooks.manage) and tenant isolation.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { WebhookEndpoint } from '../../db';
import { recordEvents } from '../../lib/events';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { startWebhookReceiver, WebhookReceiver, type ReceivedWebhook } from '../helpers/webhook-receiver';
import { waitFor } from '../helpers/wait';

let app: TestApp;
/** An API that keeps the production rule: no private destinations, https only. */
let strict: TestApp;
let hooks: WebhookReceiver;
const FAST = { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RELAY_EVERY_MS: '200', WEBHOOK_RETRY_INITIAL_MS: '200', WEBHOOK_RETRY_MAX_MS: '400' };
beforeAll(async () => {
  hooks = await startWebhookReceiver();
  app = await startTestApp(FAST);
  strict = await startTestApp({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false' });
  await app.startWorker();
});
afterAll(async () => {
  await strict.close();
  await app.close();
  await hooks.close();
});

/** Writes an event to the tenant's outbox, as a change's transaction does. */
async function writeEvent(tenantId: string, type = 'document_batch.finished', data: object = { batchId: randomUUID(), done: 3, failed: 0 }): Promise<string> {
  await app.sequelize.transaction((transaction) => recordEvents([{ tenantId, type, subjectType: 'document_batch', subjectId: randomUUID(), data }], transaction));
  const [row] = await app.sequelize.query<{ id: string }>('SELECT id FROM events WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1', { bind: [tenantId], type: 'SELECT' as never });
  return row.id;
}

async function endpoint(key: string, body: Record<string, unknown>) {
  const res = await app.call('post', '/v1/webhook-endpoints', key).send({ eventTypes: ['*'], ...body }).expect(201);
  return res.body as { id: string; secret: string; url: string };
}

const at = (path: string) => (h: ReceivedWebhook) => h.path === path;
const headersOf = (h: ReceivedWebhook) => ({ 'webhook-id': String(h.headers['webhook-id']), 'webhook-timestamp': String(h.headers['webhook-timestamp']), 'webhook-signature': String(h.headers['webhook-signature']) });

describe('endpoints', () => {
  it('shows the secret once (whsec_), keeps it sealed, and never in GET or the list', async () => {
    const { key } = await buildCaller(['*']);
    const created = await app.call('post', '/v1/webhook-endpoints', key).send({ url: 'https://hooks.example.com/a', description: 'ERP', eventTypes: ['approval.*', 'document.ready'] }).expect(201);
    expect(created.body).toMatchObject({ url: 'https://hooks.example.com/a', description: 'ERP', eventTypes: ['approval.*', 'document.ready'], enabled: true, disabledReason: null });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    const got = await app.call('get', `/v1/webhook-endpoints/${created.body.id}`, key).expect(200);
    const list = await app.call('get', '/v1/webhook-endpoints', key).expect(200);
    for (const body of [got.body, list.body]) {
      expect(JSON.stringify(body)).not.toContain('secret"');
      expect(JSON.stringify(body)).not.toContain(created.body.secret.slice(6));
    }
    expect(list.body.items.map((e: { id: string }) => e.id)).toEqual([created.body.id]);
    const row = await WebhookEndpoint.findByPk(created.body.id);
    expect(row!.secret.startsWith('enc:v1:')).toBe(true);
    expect(row!.secret).not.toContain(created.body.secret.slice(6));
    // The audit log has the endpoint, not its secret.
    const audit = await app.call('get', `/v1/audit-events?entityId=${created.body.id}`, key).expect(200);
    expect(audit.body.items.map((a: { action: string }) => a.action)).toEqual(['webhooks.endpoint.created']);
    expect(JSON.stringify(audit.body)).not.toContain(created.body.secret.slice(6));
  });

  it('changes and deletes; enabling clears disabledReason', async () => {
    const { key } = await buildCaller(['*']);
    const e = await endpoint(key, { url: 'https://hooks.example.com/b' });
    const patched = await app.call('patch', `/v1/webhook-endpoints/${e.id}`, key).send({ enabled: false, eventTypes: ['import.*'], description: null }).expect(200);
    expect(patched.body).toMatchObject({ enabled: false, eventTypes: ['import.*'], description: null });
    await app.call('delete', `/v1/webhook-endpoints/${e.id}`, key).expect(204);
    await app.call('get', `/v1/webhook-endpoints/${e.id}`, key).expect(404);
  });

  it('refuses bad input: 400 for malformed, 422 URL_NOT_ALLOWED and UNKNOWN_EVENT_TYPE', async () => {
    const { key } = await buildCaller(['*']);
    const post = (a: TestApp, body: object) => a.call('post', '/v1/webhook-endpoints', key).send(body);
    await post(app, { url: 'not a url', eventTypes: ['*'] }).expect(400);
    await post(app, { url: 'ftp://example.com/x', eventTypes: ['*'] }).expect(400);
    await post(app, { url: 'https://hooks.example.com/x', eventTypes: [] }).expect(400);
    await post(app, { url: 'https://hooks.example.com/x', eventTypes: ['Approval!'] }).expect(400);
    await post(app, { url: 'https://hooks.example.com/x' }).expect(400);
    const unknown = await post(app, { url: 'https://hooks.example.com/x', eventTypes: ['approval.*', 'nothing.*', 'approval.flow.nope'] }).expect(422);
    expect(unknown.body.code).toBe('UNKNOWN_EVENT_TYPE');
    expect(unknown.body.errors.map((x: { path: string }) => x.path)).toEqual(['/requestBody/eventTypes/1', '/requestBody/eventTypes/2']);
    // Without the development switch: https only, and the classifier refuses private, loopback and link-local
    // literals (no connection is made: the address is classified as written).
    // (and a URL the contract's format takes but no request could be sent to: a port over 65535)
    for (const url of ['http://hooks.example.com/x', 'https://10.1.2.3/x', 'https://127.0.0.1:8443/x', 'https://[::1]/x', 'https://169.254.169.254/latest', 'https://192.168.0.10/x', 'https://hooks.example.com:99999/x']) {
      const res = await post(strict, { url, eventTypes: ['*'] }).expect(422);
      expect({ url, code: res.body.code }).toEqual({ url, code: 'URL_NOT_ALLOWED' });
    }
    expect(await WebhookEndpoint.count({ where: { url: ['https://10.1.2.3/x', 'http://hooks.example.com/x'] } })).toBe(0);
    const patch = await strict.call('patch', `/v1/webhook-endpoints/${(await endpoint(key, { url: 'https://hooks.example.com/p' })).id}`, key).send({ url: 'https://10.0.0.1/' }).expect(422);
    expect(patch.body.code).toBe('URL_NOT_ALLOWED');
  });

  it('needs webhooks.read to read and webhooks.manage to change (admins via *)', async () => {
    const admin = await buildCaller(['*']);
    const e = await endpoint(admin.key, { url: 'https://hooks.example.com/m' });
    const cases: [string[], number, number][] = [[['webhooks.read'], 200, 403], [['webhooks.manage'], 403, 201], [['webhooks.read', 'webhooks.manage'], 200, 201], [['webhooks.*'], 200, 201], [['events.read'], 403, 403], [[], 403, 403]];
    for (const [perms, read, manage] of cases) {
      const { key } = await buildCaller(perms, admin.tenant);
      const got = await app.call('get', `/v1/webhook-endpoints/${e.id}/deliveries`, key);
      const list = await app.call('get', '/v1/webhook-endpoints', key);
      const made = await app.call('post', '/v1/webhook-endpoints', key).send({ url: 'https://hooks.example.com/n', eventTypes: ['*'] });
      const changed = await app.call('patch', `/v1/webhook-endpoints/${e.id}`, key).send({ description: 'x' });
      expect({ perms, got: got.status, list: list.status, made: made.status, changed: changed.status })
        .toEqual({ perms, got: read, list: read, made: manage, changed: manage === 201 ? 200 : 403 });
    }
  });

  it("never shows or changes another tenant's endpoint (404)", async () => {
    const a = await buildCaller(['*']);
    const b = await buildCaller(['*']);
    const e = await endpoint(a.key, { url: 'https://hooks.example.com/iso' });
    await app.call('get', `/v1/webhook-endpoints/${e.id}`, b.key).expect(404);
    await app.call('get', `/v1/webhook-endpoints/${e.id}/deliveries`, b.key).expect(404);
    await app.call('patch', `/v1/webhook-endpoints/${e.id}`, b.key).send({ enabled: false }).expect(404);
    await app.call('delete', `/v1/webhook-endpoints/${e.id}`, b.key).expect(404);
    expect((await app.call('get', '/v1/webhook-endpoints', b.key).expect(200)).body.items).toEqual([]);
    expect((await app.call('get', `/v1/webhook-endpoints/${e.id}`, a.key).expect(200)).body.enabled).toBe(true);
  });
});

describe('delivery', () => {
  it('POSTs each matching event signed per Standard Webhooks: webhook-id is the event id, body {type, timestamp, data}', async () => {
    const { tenant, key } = await buildCaller(['*']);
    const path = `/signed-${randomUUID().slice(0, 8)}`;
    const e = await endpoint(key, { url: `${hooks.url}${path}`, eventTypes: ['document_batch.*'] });
    const data = { batchId: randomUUID(), done: 7, failed: 1 };
    const eventId = await writeEvent(tenant.id, 'document_batch.finished', data);
    const got = await hooks.waitFor(at(path), 20_000);
    expect(new Webhook(e.secret).verify(got.body, headersOf(got))).toEqual({ type: 'document_batch.finished', timestamp: expect.any(String), data });
    expect(got.headers['webhook-id']).toBe(eventId);
    // Another secret does not verify it.
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(got.body, headersOf(got))).toThrow();
    const deliveries = await waitFor(async () => {
      const res = await app.call('get', `/v1/webhook-endpoints/${e.id}/deliveries`, key).expect(200);
      return res.body.items[0]?.status === 'delivered' && res.body.items;
    }, { what: 'delivered' });
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ eventId, eventType: 'document_batch.finished', status: 'delivered', attempts: 1, lastStatusCode: 200 });
    expect(deliveries[0].attemptLog).toEqual([{ attempt: 1, at: expect.any(String), outcome: 'delivered', statusCode: 200, durationMs: expect.any(Number), response: 'ok', error: null }]);
  });

  it('a receiver failing twice then answering 200: one delivery, three attempts logged, delivered once with the same webhook-id', async () => {
    const { tenant, key } = await buildCaller(['*']);
    const path = `/flaky-${randomUUID().slice(0, 8)}`;
    const e = await endpoint(key, { url: `${hooks.url}${path}` });
    hooks.respondWith(500, 503);
    const eventId = await writeEvent(tenant.id);
    const items = await waitFor(async () => {
      const res = await app.call('get', `/v1/webhook-endpoints/${e.id}/deliveries?status=delivered`, key).expect(200);
      return res.body.items.length > 0 && res.body.items;
    }, { what: 'delivered after retries', timeoutMs: 30_000 });
    expect(items).toHaveLength(1);
    expect(items[0].attempts).toBe(3);
    expect(items[0].attemptLog.map((a: { statusCode: number; outcome: string; response: string }) => [a.statusCode, a.outcome, a.response]))
      .toEqual([[500, 'failed', 'nope'], [503, 'failed', 'nope'], [200, 'delivered', 'ok']]);
    const posts = hooks.received.filter(at(path));
    expect(posts.map((p) => p.status)).toEqual([500, 503, 200]);
    expect(new Set(posts.map((p) => p.headers['webhook-id']))).toEqual(new Set([eventId]));
    for (const p of posts) expect(() => new Webhook(e.secret).verify(p.body, headersOf(p))).not.toThrow();
    expect((await app.call('get', `/v1/webhook-endpoints/${e.id}/deliveries?status=failed`, key).expect(200)).body.items).toEqual([]);
  });

  it('sends only the types an endpoint asks for, and nothing to a disabled endpoint', async () => {
    const { tenant, key } = await buildCaller(['*']);
    const tag = randomUUID().slice(0, 8);
    const approvals = await endpoint(key, { url: `${hooks.url}/approvals-${tag}`, eventTypes: ['approval.*'] });
    await endpoint(key, { url: `${hooks.url}/off-${tag}`, enabled: false });
    const all = await endpoint(key, { url: `${hooks.url}/all-${tag}`, eventTypes: ['*'] });
    const batch = await writeEvent(tenant.id, 'document_batch.finished');
    const flow = await writeEvent(tenant.id, 'approval.stage.opened', { flowId: randomUUID(), stage: 0, objectType: 'purchase_order', objectId: randomUUID() });
    await hooks.waitFor((h) => h.path === `/all-${tag}` && h.headers['webhook-id'] === flow, 20_000);
    await hooks.waitFor((h) => h.path === `/approvals-${tag}`, 20_000);
    // The relay reads in event order: the later event arrived everywhere it goes, so the earlier one had its chance.
    await waitFor(async () => (await app.call('get', `/v1/webhook-endpoints/${all.id}/deliveries?status=delivered`, key).expect(200)).body.items.length === 2, { what: 'both to *' });
    expect(hooks.received.filter((h) => h.path === `/approvals-${tag}`).map((h) => h.headers['webhook-id'])).toEqual([flow]);
    expect(hooks.received.filter((h) => h.path === `/off-${tag}`)).toEqual([]);
    expect(hooks.received.filter((h) => h.path === `/all-${tag}`).map((h) => h.headers['webhook-id']).sort()).toEqual([batch, flow].sort());
    const d = (await app.call('get', `/v1/webhook-endpoints/${approvals.id}/deliveries`, key).expect(200)).body.items;
    expect(d.map((x: { eventId: string }) => x.eventId)).toEqual([flow]);
  });

  it("an endpoint gets only its own tenant's events, and none from before it existed", async () => {
    const a = await buildCaller(['*']);
    const b = await buildCaller(['*']);
    const tag = randomUUID().slice(0, 8);
    const before = await writeEvent(a.tenant.id);
    await endpoint(a.key, { url: `${hooks.url}/a-${tag}` });
    await endpoint(b.key, { url: `${hooks.url}/b-${tag}` });
    const ofB = await writeEvent(b.tenant.id);
    const ofA = await writeEvent(a.tenant.id);
    await hooks.waitFor((h) => h.path === `/a-${tag}`, 20_000);
    await hooks.waitFor((h) => h.path === `/b-${tag}`, 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(hooks.received.filter((h) => h.path === `/a-${tag}`).map((h) => h.headers['webhook-id'])).toEqual([ofA]);
    expect(hooks.received.filter((h) => h.path === `/b-${tag}`).map((h) => h.headers['webhook-id'])).toEqual([ofB]);
    expect(before).not.toBe(ofA);
  });
});

describe('test send, rotation, retry and replay', () => {
  it('test send: a signed webhook.test event now, answered with the outcome (2xx or not)', async () => {
    const { key } = await buildCaller(['*']);
    const path = `/test-${randomUUID().slice(0, 8)}`;
    const e = await endpoint(key, { url: `${hooks.url}${path}`, enabled: false });
    const ok = await app.call('post', `/v1/webhook-endpoints/${e.id}/test`, key).expect(200);
    expect(ok.body).toMatchObject({ delivered: true, statusCode: 200, response: 'ok', error: null });
    const got = await hooks.waitFor((h) => h.path === path && h.headers['webhook-id'] === ok.body.webhookId);
    expect(new Webhook(e.secret).verify(got.body, headersOf(got))).toEqual({ type: 'webhook.test', timestamp: expect.any(String), data: { endpointId: e.id } });
    hooks.respondWith(500);
    const bad = await app.call('post', `/v1/webhook-endpoints/${e.id}/test`, key).expect(200);
    expect(bad.body).toMatchObject({ delivered: false, statusCode: 500, response: 'nope', error: 'HTTP 500' });
    // A test is not a delivery.
    expect((await app.call('get', `/v1/webhook-endpoints/${e.id}/deliveries`, key).expect(200)).body.items).toEqual([]);
  });

  it('rotation: during the overlap both secrets verify; with no overlap only the new one', async () => {
    const { tenant, key } = await buildCaller(['*']);
    const path = `/rotate-${randomUUID().slice(0, 8)}`;
    const e = await endpoint(key, { url: `${hooks.url}${path}` });
    const rotated = await app.call('post', `/v1/webhook-endpoints/${e.id}/rotate-secret`, key).send({}).expect(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(e.secret);
    expect(Date.parse(rotated.body.secretRotatingUntil) - Date.now()).toBeGreaterThan(23.9 * 3600_000);
    const first = await writeEvent(tenant.id);
    const h1 = await hooks.waitFor((h) => h.path === path && h.headers['webhook-id'] === first, 20_000);
    expect(String(h1.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(() => new Webhook(e.secret).verify(h1.body, headersOf(h1))).not.toThrow();
    expect(() => new Webhook(rotated.body.secret).verify(h1.body, headersOf(h1))).not.toThrow();
    const again = await app.call('post', `/v1/webhook-endpoints/${e.id}/rotate-secret`, key).send({ overlapHours: 0 }).expect(200);
    expect(again.body.secretRotatingUntil).toBeNull();
    const second = await writeEvent(tenant.id);
    const h2 = await hooks.waitFor((h) => h.path === path && h.headers['webhook-id'] === second, 20_000);
    expect(() => new Webhook(again.body.secret).verify(h2.body, headersOf(h2))).not.toThrow();
    expect(() => new Webhook(rotated.body.secret).verify(h2.body, headersOf(h2))).toThrow();
    expect(JSON.stringify((await app.call('get', `/v1/webhook-endpoints/${e.id}`, key).expect(200)).body)).not.toContain(again.body.secret.slice(6));
  });

  it('retry: a dead delivery is tried again and delivered; a delivered one is 409', async () => {
    const { tenant, key } = await buildCaller(['*']);
    const path = `/retry-${randomUUID().slice(0, 8)}`;
    const e = await endpoint(key, { url: `${hooks.url}${path}` });
    hooks.respondWith(...Array<number>(1000).fill(500));
    await writeEvent(tenant.id);
    const deliveriesOf = async (q = '') => (await app.call('get', `/v1/webhook-endpoints/${e.id}/deliveries${q}`, key).expect(200)).body.items;
    const failed = await waitFor(async () => (await deliveriesOf('?status=failed'))[0], { what: 'a failed attempt' });
    expect(failed.attemptLog[0]).toMatchObject({ outcome: 'failed', statusCode: 500 });
    // Disabled while it retries: its next attempt finds the endpoint disabled and the delivery ends dead.
    await app.call('patch', `/v1/webhook-endpoints/${e.id}`, key).send({ enabled: false }).expect(200);
    await waitFor(async () => (await deliveriesOf('?status=dead')).length === 1, { what: 'dead' });
    await app.call('patch', `/v1/webhook-endpoints/${e.id}`, key).send({ enabled: true }).expect(200);
    hooks.respondWith();
    const retried = await app.call('post', `/v1/webhook-deliveries/${failed.id}/retry`, key).expect(202);
    expect(retried.body).toMatchObject({ id: failed.id, status: 'pending' });
    const done = await waitFor(async () => (await deliveriesOf('?status=delivered'))[0], { what: 'delivered after retry' });
    expect(done.attemptLog.at(-1)).toMatchObject({ outcome: 'delivered', statusCode: 200 });
    expect(done.attempts).toBe(done.attemptLog.length);
    const conflict = await app.call('post', `/v1/webhook-deliveries/${failed.id}/retry`, key).expect(409);
    expect(conflict.body.code).toBe('INVALID_STATE');
    const other = await buildCaller(['*']);
    await app.call('post', `/v1/webhook-deliveries/${failed.id}/retry`, other.key).expect(404);
  });

  it('replay: the range\'s matching events delivered again as new deliveries, same webhook-id; bounded', async () => {
    const { tenant, key } = await buildCaller(['*']);
    const path = `/replay-${randomUUID().slice(0, 8)}`;
    const e = await endpoint(key, { url: `${hooks.url}${path}`, eventTypes: ['document_batch.*'] });
    const since = new Date().toISOString();
    const ids = [await writeEvent(tenant.id), await writeEvent(tenant.id)];
    await writeEvent(tenant.id, 'approval.stage.opened', { flowId: randomUUID(), stage: 0, objectType: 'purchase_order', objectId: randomUUID() });
    const deliveriesOf = async () => (await app.call('get', `/v1/webhook-endpoints/${e.id}/deliveries?status=delivered`, key).expect(200)).body.items as { eventId: string }[];
    await waitFor(async () => (await deliveriesOf()).length === 2, { what: 'first deliveries' });
    const until = new Date(Date.now() + 1000).toISOString();
    const replay = await app.call('post', `/v1/webhook-endpoints/${e.id}/replay`, key).send({ since, until }).expect(202);
    expect(replay.body).toEqual({ deliveries: 2 });
    const all = await waitFor(async () => { const d = await deliveriesOf(); return d.length === 4 && d; }, { what: 'replayed deliveries' });
    expect(all.map((d) => d.eventId).sort()).toEqual([...ids, ...ids].sort());
    const posts = hooks.received.filter((h) => h.path === path).map((h) => h.headers['webhook-id']);
    expect(posts.sort()).toEqual([...ids, ...ids].sort());

    const post = (body: object) => app.call('post', `/v1/webhook-endpoints/${e.id}/replay`, key).send(body);
    expect((await post({ since: until, until: since }).expect(422)).body.code).toBe('INVALID_RANGE');
    expect((await post({ since: '2026-01-01T00:00:00Z', until: '2026-02-02T00:00:01Z' }).expect(422)).body.code).toBe('RANGE_TOO_LARGE');
    await post({ since: 'yesterday', until }).expect(400);
    // Over 10,000 matching events in the range: refused, nothing queued.
    await app.sequelize.query(`INSERT INTO events (tenant_id, id, type, occurred_at, subject_type, subject_id, data)
      SELECT $1, gen_random_uuid(), 'document_batch.finished', now() - interval '10 days' + i * interval '1 ms', 'document_batch', 'x', '{}'::jsonb FROM generate_series(1, 10001) i`, { bind: [tenant.id] });
    const big = await post({ since: new Date(Date.now() - 11 * 86_400_000).toISOString(), until: new Date(Date.now() - 9 * 86_400_000).toISOString() }).expect(422);
    expect(big.body.code).toBe('RANGE_TOO_LARGE');
    expect((await deliveriesOf()).length).toBe(4);
    await app.call('patch', `/v1/webhook-endpoints/${e.id}`, key).send({ enabled: false }).expect(200);
    expect((await post({ since, until }).expect(409)).body.code).toBe('INVALID_STATE');
  });

  it('test, rotate, replay and retry need webhooks.manage', async () => {
    const admin = await buildCaller(['*']);
    const e = await endpoint(admin.key, { url: 'https://hooks.example.com/perm' });
    const { key } = await buildCaller(['webhooks.read'], admin.tenant);
    await app.call('post', `/v1/webhook-endpoints/${e.id}/test`, key).expect(403);
    await app.call('post', `/v1/webhook-endpoints/${e.id}/rotate-secret`, key).send({}).expect(403);
    await app.call('post', `/v1/webhook-endpoints/${e.id}/replay`, key).send({ since: '2026-01-01T00:00:00Z', until: '2026-01-02T00:00:00Z' }).expect(403);
    await app.call('post', `/v1/webhook-deliveries/${randomUUID()}/retry`, key).expect(403);
    await app.call('post', `/v1/webhook-deliveries/${randomUUID()}/retry`, admin.key).expect(404);
  });
});
