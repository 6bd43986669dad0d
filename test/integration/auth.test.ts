// Around authentication: limits per credential shared by API processes, failed-authentication floods per
// address, Idempotency-Keys per credential, and who may read /metrics.
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { UnsubscribeLinks } from '../../domains/campaigns/unsubscribe';
import { ApiKey, AuditEvent } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';

const JWT_SECRET = 'auth-test-secret-that-is-long-enough-for-hs256';
const apps: TestApp[] = [];
async function appWith(env: Record<string, string>): Promise<TestApp> {
  const app = await startTestApp(env);
  apps.push(app);
  return app;
}
afterAll(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** Rate windows are whole minutes: a test counting into one waits out a boundary that is too close. */
async function awayFromMinuteBoundary(seconds = 15): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < seconds * 1000) await new Promise((r) => setTimeout(r, left + 200));
}

describe('the per-credential rate limit', () => {
  it('is one budget for a key across two API processes sharing Postgres', async () => {
    // Syncs happen only when the test asks for them, so the counts are deterministic.
    const env = { RATE_LIMIT_PER_MINUTE: '10', RATE_LIMIT_SYNC_MS: '600000' };
    const [one, two] = [await appWith(env), await appWith(env)];
    const { key } = await buildCaller(['*']);
    await awayFromMinuteBoundary();
    for (let i = 0; i < 6; i++) await one.call('get', '/v1/me', key).expect(200);
    await one.docket.rateLimits.perCredential!.sync();
    // The second process admits its first request on its own, then learns the shared count (7) …
    await two.call('get', '/v1/me', key).expect(200);
    await two.docket.rateLimits.perCredential!.sync();
    for (let i = 0; i < 3; i++) await two.call('get', '/v1/me', key).expect(200);
    // … so the key's 11th request is refused there, and in the first process once it has synced too.
    const refused = await two.call('get', '/v1/me', key).expect(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    await two.docket.rateLimits.perCredential!.sync();
    await one.docket.rateLimits.perCredential!.sync();
    await one.call('get', '/v1/me', key).expect(429);
    // Another key of the same tenant has its own budget.
    await one.call('get', '/v1/me', (await buildCaller(['*'])).key).expect(200);
  });
});

describe('failed authentications', () => {
  it('are limited per client address: past the limit it answers 429 before looking any credential up', async () => {
    const app = await appWith({ AUTH_FAILURE_LIMIT_PER_MINUTE: '5' });
    const { key: warm } = await buildCaller(['*']);
    const { key: cold } = await buildCaller(['*']);
    await awayFromMinuteBoundary();
    await app.call('get', '/v1/me', warm).expect(200); // cached from now on
    const bad = (i: number) => `dk_${String(i).padStart(12, '0')}_${'A'.repeat(43)}`;
    // X-Forwarded-For is not trusted by default (TRUST_PROXY_HOPS=0): a client cannot pose as many.
    for (let i = 0; i < 5; i++) await app.call('get', '/v1/me', bad(i)).set('X-Forwarded-For', `203.0.113.${i}`).expect(401);
    const lookups = jest.spyOn(ApiKey, 'findOne');
    try {
      const refused = await app.call('get', '/v1/me', bad(9)).set('X-Forwarded-For', '198.51.100.7').expect(429);
      expect(refused.body.code).toBe('RATE_LIMITED');
      expect(refused.body.detail).toMatch(/failed authentications/);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // A valid key not seen recently is refused too (its lookup is what a flood would cost) …
      await app.call('get', '/v1/me', cold).expect(429);
      expect(lookups).not.toHaveBeenCalled();
      // … while a credential this process has just verified needs no lookup and still passes.
      await app.call('get', '/v1/me', warm).expect(200);
    } finally {
      lookups.mockRestore();
    }
  });

  it('behind a trusted proxy, are counted per forwarded address', async () => {
    const app = await appWith({ AUTH_FAILURE_LIMIT_PER_MINUTE: '2', TRUST_PROXY_HOPS: '1' });
    const bad = `dk_000000000000_${'B'.repeat(43)}`;
    await awayFromMinuteBoundary();
    for (let i = 0; i < 2; i++) await app.call('get', '/v1/me', bad).set('X-Forwarded-For', '203.0.113.50').expect(401);
    await app.call('get', '/v1/me', bad).set('X-Forwarded-For', '203.0.113.50').expect(429);
    // Only the last hop counts: a client's own X-Forwarded-For entry in front of it changes nothing.
    await app.call('get', '/v1/me', bad).set('X-Forwarded-For', '10.9.9.9, 203.0.113.50').expect(429);
    await app.call('get', '/v1/me', bad).set('X-Forwarded-For', '203.0.113.51').expect(401);
  });
});

describe('signed links', () => {
  it('are limited per link: one link replayed past the limit answers 429; other links, made-up tokens and credentials are not counted', async () => {
    const app = await appWith({ LINK_LIMIT_PER_MINUTE: '3' });
    const { key, tenant } = await buildCaller(['*']);
    const links = new UnsubscribeLinks(app.config.linkSecret, app.config.publicUrl);
    const token = () => links.token({ tenantId: tenant.id, campaignId: randomUUID(), subscriberId: randomUUID() });
    const [one, other] = [token(), token()];
    await awayFromMinuteBoundary();
    // The page and its one-click POST are uses of the same link.
    await app.call('get', `/v1/unsubscribe/${one}`, undefined).expect(200);
    await app.call('post', `/v1/unsubscribe/${one}`, undefined).expect(200);
    await app.call('get', `/v1/unsubscribe/${one}`, undefined).expect(200);
    const refused = await app.call('post', `/v1/unsubscribe/${one}`, undefined).expect(429);
    expect(refused.body.code).toBe('RATE_LIMITED');
    expect(refused.body.detail).toMatch(/used too often/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Another link from the same address (a mail provider's server posting for many users) is its own count …
    for (let i = 0; i < 3; i++) await app.call('post', `/v1/unsubscribe/${other}`, undefined).expect(200);
    // … and tokens that do not verify cost no lookup and add no counter.
    for (let i = 0; i < 5; i++) {
      await app.call('get', '/v1/unsubscribe/not-a-token', undefined).expect(404);
      await app.call('post', `/v1/approval-links/${'x'.repeat(40)}`, undefined).expect(404);
    }
    await app.call('get', '/v1/me', key).expect(200);
  });
});

describe('Idempotency-Key', () => {
  it('belongs to the credential: two users of a tenant using the same key get their own responses', async () => {
    const app = await appWith({ JWT_SECRET });
    const a = await buildCaller(['audit.*']);
    const bUser = await buildUser(a.tenant, { permissions: ['audit.*'] });
    const bKey = await buildApiKey(bUser);
    const send = (key: string) => app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', 'nightly').send({ entityType: 'role' }).expect(202);
    const first = await send(a.key);
    const second = await send(bKey);
    expect(second.body.id).not.toBe(first.body.id);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    // The same credential again gets its own first response back.
    const again = await send(a.key);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    // A JWT is its user's credential, apart from the user's API keys.
    const token = await new SignJWT({ sub: bUser.id, tid: a.tenant.id }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));
    const viaJwt = await app.call('post', '/v1/audit-exports').set('Authorization', `Bearer ${token}`).set('Idempotency-Key', 'nightly').send({ entityType: 'role' }).expect(202);
    expect([first.body.id, second.body.id]).not.toContain(viaJwt.body.id);
    expect(await AuditEvent.count({ where: { tenantId: a.tenant.id, action: 'audit.export.requested' } })).toBe(3);
  });
});

describe('/metrics', () => {
  it('with METRICS_TOKEN, answers only a bearer of that token', async () => {
    const app = await appWith({ METRICS_TOKEN: 'scrape-token-0123456789abcdef' });
    expect((await app.call('get', '/metrics').expect(401)).body.code).toBe('UNAUTHENTICATED');
    await app.call('get', '/metrics').set('Authorization', 'Bearer scrape-token-0123456789abcdeX').expect(401);
    const ok = await app.call('get', '/metrics').set('Authorization', 'Bearer scrape-token-0123456789abcdef').expect(200);
    expect(ok.text).toContain('docket_http_request_duration_seconds');
  });

  it('with METRICS_PORT, is not served on the API port', async () => {
    const app = await appWith({ METRICS_PORT: '9464' });
    expect((await app.call('get', '/metrics').expect(404)).body.code).toBe('ROUTE_NOT_FOUND');
  });
});
