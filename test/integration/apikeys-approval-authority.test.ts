// A key made for another user acts as them, in approvals too: whoever holds its secret signs as its owner, and the
// flow's history says the owner approved. So a key of another user that can act in approvals (approvals.flow.sign,
// .decide, .admin, .create, purchasing.order.submit — in its scopes, or through its owner's roles when it has none,
// since a flow its owner starts may be auto-approved by their roles) needs approvals.template.manage
// besides identity.apikeys.manage_others, to be made, rotated or given a longer life: the permission that already
// decides who approves. Keys for oneself are unaffected. The reported exploit end to end: a key manager who submits an
// order cannot approve it with a key acting as its approver.
import { randomUUID } from 'node:crypto';
import { ApiKey, AuditEvent, Role, Tenant, UserRole } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { createOrder } from '../helpers/approvals';
import { buildApiKey, buildTenant, buildUser } from '../helpers/factories';
import { runPermissionMatrix } from '../helpers/matrix';
import { waitFor } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  await app.startWorker();
});
afterAll(() => app.close());

/** Alice's permissions at the lowest level: keys for anyone, signing, purchasing. */
const ALICE = ['identity.apikeys.manage', 'identity.apikeys.manage_others', 'approvals.flow.sign', 'approvals.flow.read', 'purchasing.order.*'];

const LEVELS = ['manage_others', 'manage_others + approvals.flow.*', 'manage_others + approvals.template.manage', 'admin (*)'] as const;
type Level = (typeof LEVELS)[number];
const PERMISSIONS: Record<Level, string[]> = {
  manage_others: ALICE,
  'manage_others + approvals.flow.*': [...ALICE, 'approvals.flow.*'],
  'manage_others + approvals.template.manage': [...ALICE, 'approvals.template.manage'],
  'admin (*)': ['*'],
};

/**
 * One tenant: an admin (with a key); Bob, of the role `approver` (approvals.flow.sign, approvals.flow.read) that the
 * purchase-order template's stage names (`byUser`: the stage names Bob himself), with a key of his own; Carol, with
 * no roles; Alice, with the level's permissions and an unscoped key.
 */
async function buildWorld(level: Level, opts: { byUser?: boolean } = {}) {
  const tenant = await buildTenant();
  const adminKey = await buildApiKey(await buildUser(tenant, { name: 'admin', permissions: ['*'] }));
  const approver = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'approver', title: 'Approver', permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
  const bob = await buildUser(tenant, { name: 'bob' });
  await UserRole.create({ userId: bob.id, roleId: approver.id, tenantId: tenant.id });
  const bobKey = await buildApiKey(bob);
  const carol = await buildUser(tenant, { name: 'carol' });
  const alice = await buildUser(tenant, { name: 'alice', permissions: PERMISSIONS[level] });
  const aliceKey = await buildApiKey(alice);
  await app.call('post', '/v1/approval-templates', adminKey).send({
    name: 'Purchases', objectType: 'purchase_order',
    stages: [{ name: 'Approval', approvers: opts.byUser ? { users: [bob.id] } : { roles: ['approver'] }, rule: 'any' }],
  }).expect(201);
  return { tenant, adminKey, bob, bobKey, carol, alice, aliceKey };
}
type World = Awaited<ReturnType<typeof buildWorld>>;

/** What a refused key change could have written. */
async function snapshot(tenant: Tenant) {
  return {
    audit: await AuditEvent.count({ where: { tenantId: tenant.id } }),
    keys: (await ApiKey.findAll({ where: { tenantId: tenant.id }, order: [['id', 'ASC']] }))
      .map((k) => [k.id, k.userId, k.name, k.scopes, k.expiresAt?.toISOString() ?? null, k.secretHash, k.previousSecretHash, k.version]),
  };
}

/** A response as the matrices compare it. */
function outcome(res: { status: number; body: { code?: string; permission?: string } }): string {
  if (res.status < 300) return 'allowed';
  return [`refused ${res.status}`, res.body.code, ...(res.body.code === 'PERMISSION_DENIED' ? [res.body.permission] : [])].join(' ');
}

const ALLOWED = 'allowed';
const NEEDS_AUTHORITY = 'refused 403 PERMISSION_DENIED approvals.template.manage';
const ESCALATION = 'refused 403 PERMISSION_ESCALATION';

/** Allowed at every level. */
const EVERYONE: Record<Level, string> = Object.fromEntries(LEVELS.map((l) => [l, ALLOWED])) as Record<Level, string>;

const KEYS: { name: string; body: (w: World) => Record<string, unknown>; expected: Record<Level, string> }[] = [
  { name: 'for Bob (an approver), scoped approvals.flow.sign',
    body: (w) => ({ userId: w.bob.id, scopes: ['approvals.flow.sign'] }),
    expected: { manage_others: NEEDS_AUTHORITY, 'manage_others + approvals.flow.*': NEEDS_AUTHORITY, 'manage_others + approvals.template.manage': ALLOWED, 'admin (*)': ALLOWED } },
  { name: 'for Bob, scoped approvals.flow.decide',
    body: (w) => ({ userId: w.bob.id, scopes: ['approvals.flow.decide'] }),
    expected: { manage_others: ESCALATION, 'manage_others + approvals.flow.*': NEEDS_AUTHORITY, 'manage_others + approvals.template.manage': ESCALATION, 'admin (*)': ALLOWED } },
  { name: 'for Bob, scoped approvals.flow.admin',
    body: (w) => ({ userId: w.bob.id, scopes: ['approvals.flow.admin'] }),
    expected: { manage_others: ESCALATION, 'manage_others + approvals.flow.*': NEEDS_AUTHORITY, 'manage_others + approvals.template.manage': ESCALATION, 'admin (*)': ALLOWED } },
  { name: 'for Bob, scoped approvals.flow.* (a wildcard covering signing)',
    body: (w) => ({ userId: w.bob.id, scopes: ['approvals.flow.*'] }),
    expected: { manage_others: ESCALATION, 'manage_others + approvals.flow.*': NEEDS_AUTHORITY, 'manage_others + approvals.template.manage': ESCALATION, 'admin (*)': ALLOWED } },
  { name: 'for Bob, without scopes (the caller\'s permissions become its scopes)',
    body: (w) => ({ userId: w.bob.id }),
    expected: { manage_others: NEEDS_AUTHORITY, 'manage_others + approvals.flow.*': NEEDS_AUTHORITY, 'manage_others + approvals.template.manage': ALLOWED, 'admin (*)': ALLOWED } },
  { name: 'for Carol (no roles yet), scoped approvals.flow.sign: it signs once she is given a role',
    body: (w) => ({ userId: w.carol.id, scopes: ['approvals.flow.sign'] }),
    expected: { manage_others: NEEDS_AUTHORITY, 'manage_others + approvals.flow.*': NEEDS_AUTHORITY, 'manage_others + approvals.template.manage': ALLOWED, 'admin (*)': ALLOWED } },
  { name: 'for Bob, scoped purchasing.order.submit: an order submitted as him is auto-approved if his roles say so',
    body: (w) => ({ userId: w.bob.id, scopes: ['purchasing.order.submit'] }),
    expected: { manage_others: NEEDS_AUTHORITY, 'manage_others + approvals.flow.*': NEEDS_AUTHORITY, 'manage_others + approvals.template.manage': ALLOWED, 'admin (*)': ALLOWED } },
  { name: 'for Bob, scoped approvals.flow.create',
    body: (w) => ({ userId: w.bob.id, scopes: ['approvals.flow.create'] }),
    expected: { manage_others: ESCALATION, 'manage_others + approvals.flow.*': NEEDS_AUTHORITY, 'manage_others + approvals.template.manage': ESCALATION, 'admin (*)': ALLOWED } },
  { name: 'for Bob, scoped without any approval-deciding permission',
    body: (w) => ({ userId: w.bob.id, scopes: ['approvals.flow.read', 'purchasing.order.read'] }),
    expected: EVERYONE },
  { name: 'for myself, scoped approvals.flow.sign', body: () => ({ scopes: ['approvals.flow.sign'] }), expected: EVERYONE },
  { name: 'for myself, without scopes', body: () => ({}), expected: EVERYONE },
];

describe.each(KEYS)('createApiKey $name', ({ body, expected }) => {
  it('needs approvals.template.manage exactly where the key would act in approvals as another user; a refusal writes nothing', async () => {
    await runPermissionMatrix({
      levels: LEVELS, build: (level) => buildWorld(level), snapshot, refusal: outcome, expected: (level) => expected[level],
      call: async (w) => {
        const res = await app.call('post', '/v1/api-keys', w.aliceKey).send({ name: 'x', ...body(w) });
        if (outcome(res) === NEEDS_AUTHORITY) expect(res.body.detail).toContain('approvals.template.manage');
        return res;
      },
    });
  });
});

describe('re-arming another user\'s signing key', () => {
  const inDays = (d: number) => new Date(Date.now() + d * 86_400_000).toISOString();

  /** Bob's keys, made by the admin: one that signs, one that only reads (both expiring in 30 days), one unscoped. */
  async function bobsKeys(w: World) {
    const make = async (body: Record<string, unknown>) => (await app.call('post', '/v1/api-keys', w.adminKey).send({ name: 'bob', userId: w.bob.id, ...body }).expect(201)).body;
    return {
      signing: await make({ scopes: ['approvals.flow.sign', 'approvals.flow.read'], expiresAt: inDays(30) }),
      reading: await make({ scopes: ['approvals.flow.read'], expiresAt: inDays(30) }),
      unscoped: await make({ expiresAt: inDays(30) }),
    };
  }

  it('without approvals.template.manage: no new secret, no later expiry; renaming or shortening it is allowed, as is re-arming keys that cannot sign', async () => {
    const w = await buildWorld('manage_others');
    const bob = await bobsKeys(w);
    const as = (method: 'post' | 'patch', url: string) => app.call(method, url, w.aliceKey);
    const before = await snapshot(w.tenant);
    const refused = {
      rotate: await as('post', `/v1/api-keys/${bob.signing.id}/rotate`).send({ overlapHours: 1 }),
      'later expiry': await as('patch', `/v1/api-keys/${bob.signing.id}`).send({ expiresAt: inDays(365) }),
      'no expiry': await as('patch', `/v1/api-keys/${bob.signing.id}`).send({ expiresAt: null }),
      // Unscoped, it follows Bob's roles: it signs today.
      'later expiry of the unscoped key': await as('patch', `/v1/api-keys/${bob.unscoped.id}`).send({ expiresAt: inDays(365) }),
    };
    expect(Object.fromEntries(Object.entries(refused).map(([k, r]) => [k, outcome(r)]))).toEqual({
      rotate: NEEDS_AUTHORITY, 'later expiry': NEEDS_AUTHORITY, 'no expiry': NEEDS_AUTHORITY, 'later expiry of the unscoped key': NEEDS_AUTHORITY,
    });
    expect(await snapshot(w.tenant)).toEqual(before);
    // The old secret still is the key's only one, with its old expiry.
    await app.call('get', '/v1/me', bob.signing.secret).expect(200);
    expect((await app.call('get', `/v1/api-keys/${bob.signing.id}`, w.adminKey).expect(200)).body.expiresAt).toBe(bob.signing.expiresAt);

    // What does not re-arm it, and keys that cannot sign.
    expect((await as('patch', `/v1/api-keys/${bob.signing.id}`).send({ name: 'renamed' }).expect(200)).body.name).toBe('renamed');
    expect((await as('patch', `/v1/api-keys/${bob.signing.id}`).send({ expiresAt: inDays(7) }).expect(200)).body.expiresAt).not.toBe(bob.signing.expiresAt);
    const readRotated = await as('post', `/v1/api-keys/${bob.reading.id}/rotate`).send({}).expect(200);
    expect((await app.call('get', '/v1/me', readRotated.body.secret).expect(200)).body.permissions).toEqual(['approvals.flow.read']);
    await as('patch', `/v1/api-keys/${bob.reading.id}`).send({ expiresAt: null }).expect(200);

    // Her own signing key is hers to re-arm.
    const mine = (await as('post', '/v1/api-keys').send({ name: 'mine', scopes: ['approvals.flow.sign'], expiresAt: inDays(30) }).expect(201)).body;
    await as('post', `/v1/api-keys/${mine.id}/rotate`).send({}).expect(200);
    await as('patch', `/v1/api-keys/${mine.id}`).send({ expiresAt: inDays(365) }).expect(200);
  });

  it('with approvals.template.manage, rotating Bob\'s signing key and giving it a longer life are allowed', async () => {
    const w = await buildWorld('manage_others + approvals.template.manage');
    const bob = await bobsKeys(w);
    const rotated = await app.call('post', `/v1/api-keys/${bob.signing.id}/rotate`, w.aliceKey).send({}).expect(200);
    expect((await app.call('get', '/v1/me', rotated.body.secret).expect(200)).body.user.id).toBe(w.bob.id);
    await app.call('patch', `/v1/api-keys/${bob.signing.id}`, w.aliceKey).send({ expiresAt: null }).expect(200);
  });
});

describe('the reported exploit', () => {
  it.each([{ how: 'by role', byUser: false }, { how: 'by user id', byUser: true }])('Alice cannot approve her own order with a key acting as its approver (named $how); the flow stays pending for Bob', async ({ byUser }) => {
    const w = await buildWorld('manage_others', { byUser });
    const po = await createOrder(app, w.aliceKey);
    const submitted = await app.call('post', `/v1/purchase-orders/${po.id}/submit`, w.aliceKey).expect(202);
    const flowId = submitted.body.approvalFlowId as string;
    await waitFor(async () => (await app.call('get', `/v1/approval-flows/${flowId}`, w.aliceKey).expect(200)).body.stages[0].status === 'active', { what: 'stage open' });

    const bobKeysBefore = await ApiKey.count({ where: { userId: w.bob.id } });
    for (const body of [{ scopes: ['approvals.flow.sign'] }, {}]) {
      const res = await app.call('post', '/v1/api-keys', w.aliceKey).send({ name: 'x', userId: w.bob.id, ...body }).expect(403);
      expect(res.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'approvals.template.manage' });
    }
    expect(await ApiKey.count({ where: { userId: w.bob.id } })).toBe(bobKeysBefore);
    // A key acting as Bob that only reads is still hers to make, and signs nothing.
    const reader = await app.call('post', '/v1/api-keys', w.aliceKey).send({ name: 'x', userId: w.bob.id, scopes: ['approvals.flow.read'] }).expect(201);
    await app.call('post', `/v1/approval-flows/${flowId}/sign`, reader.body.secret).send({ decision: 'approve' }).expect(403);

    const flow = (await app.call('get', `/v1/approval-flows/${flowId}`, w.adminKey).expect(200)).body;
    expect([flow.status, flow.pendingApprovers]).toEqual(['pending', [w.bob.id]]);
    const history = (await app.call('get', `/v1/approval-flows/${flowId}/history`, w.adminKey).expect(200)).body.items;
    expect(history.filter((e: { type: string }) => e.type === 'signed')).toEqual([]);
    // Bob, with his own key, still decides it.
    expect((await app.call('post', `/v1/approval-flows/${flowId}/sign`, w.bobKey).send({ decision: 'approve' }).expect(200)).body.status).toBe('approved');
  });
});
