// Two real API processes (api/server.ts) on one Postgres and Temporal, as a load balancer would spread a
// client over them: an Idempotency-Key, the rate limit, a revocation, a role change, a page cursor and a
// one-click link all hold across the two, not per process.
import { randomUUID } from 'node:crypto';
import { ApiKey, ApprovalEvent, Reminder, Role, UserRole } from '../../db';
import { signLink } from '../../domains/approvals/links';
import { CACHE_TTL_MS } from '../../api/auth';
import { freePort } from '../../scripts/stack';
import { ApiProcess, killAllApiProcesses, startApiProcess, waitForHealth } from '../helpers/api-process';
import { startTestApp, TestApp } from '../helpers/app';
import { buildApiKey, buildCaller, buildUser, writeUnheard } from '../helpers/factories';
import { waitFor } from '../helpers/wait';

/** Requests per key per minute on both processes. */
const BUDGET = 60;
/** How often each process adds its counts to the shared rows (RATE_LIMIT_SYNC_MS). */
const SYNC_MS = 100;
/**
 * A revocation or role change committed through one process is refused by the other within this: the commit's
 * NOTIFY reaches every process in milliseconds; the cache TTL (5 s) is only the bound while that is not heard.
 */
const NOTIFIED_BOUND_MS = 1_000;

let app: TestApp;
const procs: { proc: ApiProcess; url: string }[] = [];
let p1: TestApp['call'];
let p2: TestApp['call'];

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorker(); // approval flows need their workflow running
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    const proc = startApiProcess({ PORT: String(port), NODE_ENV: 'test', RATE_LIMIT_PER_MINUTE: String(BUDGET), RATE_LIMIT_SYNC_MS: String(SYNC_MS) });
    procs.push({ proc, url: `http://127.0.0.1:${port}` });
  }
  await Promise.all(procs.map((p) => waitForHealth(p.url, p.proc.exited)));
  [p1, p2] = procs.map((p) => app.callAt(p.url));
}, 180_000);
afterAll(async () => {
  killAllApiProcesses();
  await app.close();
});

const keyId = async (key: string) => (await p1('get', '/v1/me', key).expect(200)).body.auth.apiKeyId as string;

describe('Idempotency-Key', () => {
  it('sent to both processes at once: one reminder, every answer the first one replayed; another body with the key is a 409', async () => {
    const { key } = await buildCaller(['*']);
    const idem = `both-${randomUUID()}`;
    const body = { subject: `Once across processes ${idem}`, channels: ['email'], recipients: { emails: ['ops@example.com'] }, dueAt: new Date(Date.now() + 86_400_000).toISOString() };
    const post = (call: TestApp['call']) => call('post', '/v1/reminders', key).set('Idempotency-Key', idem).send(body);
    const answers = await Promise.all([post(p1), post(p2), post(p1), post(p2)]);
    // Exactly one ran; a request that arrived while it ran is told to retry (409 IDEMPOTENCY_KEY_IN_USE), others replay it.
    const created = answers.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const r of answers) expect([r.status, r.status === 409 ? r.body.code : 'ok']).toEqual(r.status === 409 ? [409, 'IDEMPOTENCY_KEY_IN_USE'] : [201, 'ok']);
    expect(new Set(created.map((r) => r.body.id)).size).toBe(1);
    const id = created[0].body.id as string;
    // Once done, both processes replay the same answer.
    for (const call of [p1, p2, p1, p2]) {
      const again = await post(call).expect(201);
      expect([again.body.id, again.headers['idempotent-replayed'], again.headers.location]).toEqual([id, 'true', `/v1/reminders/${id}`]);
    }
    expect(await Reminder.count({ where: { subject: body.subject } })).toBe(1);
    // The same key with another body, on either process: refused, nothing created.
    for (const call of [p1, p2]) {
      const reused = await call('post', '/v1/reminders', key).set('Idempotency-Key', idem).send({ ...body, subject: `${body.subject} (changed)` }).expect(409);
      expect(reused.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    }
    expect(await Reminder.count({ where: { subject: `${body.subject} (changed)` } })).toBe(0);
  });
});

describe('rate limit', () => {
  it(`a key with a budget of ${BUDGET} a minute gets at most ${BUDGET} + what one process admits in one sync interval over both processes`, async () => {
    // The window is the calendar minute on every process: start well inside one, so the run does not straddle two.
    await waitFor(async () => Date.now() % 60_000 < 30_000, { timeoutMs: 35_000, intervalMs: 250, what: 'the first half of a minute' });
    const { key } = await buildCaller(['*']);
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    // Alternating between the processes, one request at a time, like a client behind a round-robin balancer.
    for (let i = 0; i < BUDGET * 3; i++) {
      const res = await (i % 2 ? p2 : p1)('get', '/v1/me', key);
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.body.code).toBe('RATE_LIMITED');
        retryAfter = res.headers['retry-after'];
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const admitted = statuses.filter((s) => s === 200).length;
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    // Counted per process, each would admit the whole budget (2 × BUDGET = 120).
    expect(admitted).toBeGreaterThanOrEqual(BUDGET);
    expect(admitted).toBeLessThanOrEqual(BUDGET + 15);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Having heard of each other's counts, both now refuse it.
    await new Promise((r) => setTimeout(r, SYNC_MS * 3));
    expect((await p1('get', '/v1/me', key)).status).toBe(429);
    expect((await p2('get', '/v1/me', key)).status).toBe(429);
  });
});

describe('credentials changed through one process', () => {
  /** Polls `probe` on process 2 until it answers `status`; how long that took. */
  async function msUntil(status: number, probe: () => Promise<{ status: number }>, limitMs: number): Promise<number> {
    const start = Date.now();
    for (;;) {
      const res = await probe();
      if (res.status === status) return Date.now() - start;
      if (Date.now() - start > limitMs) throw new Error(`still ${res.status} after ${limitMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it(`a key revoked through process 1 is refused by process 2 within ${NOTIFIED_BOUND_MS} ms, though process 2 had it cached`, async () => {
    const { tenant, key: admin } = await buildCaller(['*']);
    const key = await buildApiKey(await buildUser(tenant, { permissions: ['*'] }));
    const id = await keyId(key);
    await p2('get', '/v1/me', key).expect(200); // cached on process 2 from here
    await p1('delete', `/v1/api-keys/${id}`, admin).expect(200);
    const ms = await msUntil(401, () => p2('get', '/v1/me', key), 10_000);
    expect(ms).toBeLessThan(NOTIFIED_BOUND_MS);
    const refused = await p2('get', '/v1/me', key).expect(401);
    expect(refused.body.code).toBe('CREDENTIALS_REVOKED');
  });

  it(`a key rotated through process 1: its replaced secret is refused by process 2 within ${NOTIFIED_BOUND_MS} ms, the new one works there`, async () => {
    const { tenant, key: admin } = await buildCaller(['*']);
    const key = await buildApiKey(await buildUser(tenant, { permissions: ['*'] }));
    const id = await keyId(key);
    await p2('get', '/v1/me', key).expect(200); // cached on process 2 from here
    const rotated = await p1('post', `/v1/api-keys/${id}/rotate`, admin).expect(200);
    const ms = await msUntil(401, () => p2('get', '/v1/me', key), 10_000);
    expect(ms).toBeLessThan(NOTIFIED_BOUND_MS);
    expect((await p2('get', '/v1/me', key).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
    expect((await p2('get', '/v1/me', rotated.body.secret).expect(200)).body.auth.apiKeyId).toBe(id);
  });

  it(`a permission removed from a role through process 1 is refused by process 2 within ${NOTIFIED_BOUND_MS} ms`, async () => {
    const { tenant, key: admin } = await buildCaller(['*']);
    const role = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: `readers-${randomUUID().slice(0, 6)}`, title: 'Readers', permissions: ['reminders.read', 'approvals.flow.read'] });
    const user = await buildUser(tenant);
    await UserRole.create({ userId: user.id, roleId: role.id, tenantId: tenant.id });
    const key = await buildApiKey(user);
    await p2('get', '/v1/reminders', key).expect(200);
    await p1('patch', `/v1/roles/${role.key}`, admin).send({ permissions: ['approvals.flow.read'] }).expect(200);
    const ms = await msUntil(403, () => p2('get', '/v1/reminders', key), 10_000);
    expect(ms).toBeLessThan(NOTIFIED_BOUND_MS);
  });

  it(`a revocation no process was told of (written straight to the database, no NOTIFY) still takes effect within the ${CACHE_TTL_MS} ms cache TTL`, async () => {
    const { key } = await buildCaller(['*']);
    const id = await keyId(key);
    await p2('get', '/v1/me', key).expect(200);
    await writeUnheard(app.sequelize, 'UPDATE api_keys SET revoked_at = now() WHERE id = $1', [id]);
    expect((await ApiKey.findByPk(id))!.revokedAt).not.toBeNull();
    const ms = await msUntil(401, () => p2('get', '/v1/me', key), CACHE_TTL_MS + 3_000);
    expect(ms).toBeLessThanOrEqual(CACHE_TTL_MS + 1_000);
  });
});

describe('signed tokens', () => {
  it('a page cursor handed out by process 1 pages on process 2', async () => {
    const { key } = await buildCaller(['*']);
    for (let i = 0; i < 3; i++) {
      await p1('post', '/v1/reminders', key).send({ subject: `Paged ${i}`, channels: ['email'], recipients: { emails: ['ops@example.com'] }, dueAt: new Date(Date.now() + (i + 1) * 86_400_000).toISOString() }).expect(201);
    }
    const first = (await p1('get', '/v1/reminders?limit=2', key).expect(200)).body;
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = (await p2('get', `/v1/reminders?limit=2&cursor=${encodeURIComponent(first.nextCursor)}`, key).expect(200)).body;
    expect(second.items).toHaveLength(1);
    expect(new Set([...first.items, ...second.items].map((r: { id: string }) => r.id)).size).toBe(3);
  });

  it('a one-click approval link opens on either process and signs once: used through process 1, process 2 says it was used', async () => {
    const { tenant, key: admin } = await buildCaller(['*']);
    const signer = await buildUser(tenant, { permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
    const other = await buildUser(tenant, { permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
    await p1('post', '/v1/approval-templates', admin).send({ name: 'Contracts', objectType: 'contract', stages: [{ name: 'Sign', approvers: { users: [signer.id, other.id] }, rule: 'all' }] }).expect(201);
    const flow = (await p2('post', '/v1/approval-flows', admin).send({ objectType: 'contract', objectId: `c-${randomUUID()}`, title: 'Hosting' }).expect(201)).body;
    await waitFor(async () => (await p1('get', `/v1/approval-flows/${flow.id}`, admin)).body.stages[0].status === 'active', { what: 'the stage to open' });
    // Minted as the worker that emails it mints it: with the deployment's one LINK_SIGNING_SECRET.
    const { token } = signLink({ tenantId: tenant.id, subjectType: 'approval_flow', subjectId: flow.id, userId: signer.id, action: 'approve', stage: 0, ttlSeconds: 3600 }, app.config.linkSecret);
    const link = `/v1/approval-links/${token}`;
    for (const call of [p1, p2]) expect((await call('get', link).expect(200)).text).toContain('Hosting');
    expect((await p1('post', link).type('form').send({}).expect(200)).text).toContain('recorded');
    expect((await p2('post', link).type('form').send({}).expect(410)).text).toContain('This link was used already');
    expect(await ApprovalEvent.count({ where: { flowId: flow.id, type: 'signed' } })).toBe(1);
  });
});
