// Nobody grants what they do not hold: every identity-changing operation tried by every kind of caller,
// each in a fresh tenant, against the expected allow/deny — and a refusal leaves no trace.
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { Op } from 'sequelize';
import { ApiKey, AuditEvent, Role, Tenant, User, UserRole } from '../../db';
import { generateApiKey } from '../../domains/identity/keys';
import { startTestApp, TestApp } from '../helpers/app';
import { buildTenant } from '../helpers/factories';
import { runPermissionMatrix } from '../helpers/matrix';

const JWT_SECRET = 'matrix-secret-that-is-long-enough-for-hs256';
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({ JWT_SECRET });
});
afterAll(() => app.close());

const LEVELS = ['admin', 'identity.*', 'users.manage', 'roles.manage', 'apikeys.manage', 'key scoped apikeys.manage (owner *)', 'JWT scoped (owner *)'] as const;
type Level = (typeof LEVELS)[number];

const JWT_SCOPE = ['identity.users.manage', 'identity.roles.manage', 'identity.apikeys.manage'];
/** The caller's role per level, and the scopes of its credential. */
const CALLERS: Record<Level, { permissions: string[]; keyScopes?: string[]; jwt?: boolean }> = {
  admin: { permissions: ['*'] },
  'identity.*': { permissions: ['identity.*'] },
  'users.manage': { permissions: ['identity.users.manage'] },
  'roles.manage': { permissions: ['identity.roles.manage'] },
  'apikeys.manage': { permissions: ['identity.apikeys.manage'] },
  'key scoped apikeys.manage (owner *)': { permissions: ['*'], keyScopes: ['identity.apikeys.manage'] },
  'JWT scoped (owner *)': { permissions: ['*'], jwt: true },
};

/**
 * One tenant: an admin (role `admin` = '*') with a key, a helpdesk user (role `helpdesk` =
 * identity.users.manage) with a key, two roles nobody holds (`spare-audit` = audit.read, `spare-roles` =
 * identity.roles.manage), `user-managers` (identity.users.manage), and the caller: role `caller` with the
 * level's permissions, a second unscoped key of its own, and the credential used.
 */
interface World {
  tenant: Tenant;
  admin: User;
  adminKeyId: string;
  helpdesk: User;
  helpdeskKeyId: string;
  helpdeskScopedKeyId: string;
  caller: User;
  callerSpareKeyId: string;
  credential: [header: string, value: string];
}

async function role(tenant: Tenant, key: string, permissions: string[]): Promise<Role> {
  return Role.create({ id: randomUUID(), tenantId: tenant.id, key, title: key, permissions });
}

async function user(tenant: Tenant, name: string, roles: Role[]): Promise<User> {
  const u = await User.create({ id: randomUUID(), tenantId: tenant.id, email: `${name}-${randomUUID().slice(0, 8)}@example.com`, name });
  for (const r of roles) await UserRole.create({ userId: u.id, roleId: r.id, tenantId: tenant.id });
  return u;
}

async function key(u: User, scopes: string[] | null = null): Promise<{ id: string; secret: string }> {
  const k = generateApiKey();
  const row = await ApiKey.create({ id: randomUUID(), tenantId: u.tenantId, userId: u.id, name: 'k', prefix: k.prefix, secretHash: k.secretHash, scopes, expiresAt: null });
  return { id: row.id, secret: k.secret };
}

async function buildWorld(level: Level): Promise<World> {
  const tenant = await buildTenant();
  const admin = await user(tenant, 'admin', [await role(tenant, 'admin', ['*'])]);
  const helpdesk = await user(tenant, 'helpdesk', [await role(tenant, 'helpdesk', ['identity.users.manage'])]);
  await role(tenant, 'spare-audit', ['audit.read']);
  await role(tenant, 'spare-roles', ['identity.roles.manage']);
  await role(tenant, 'user-managers', ['identity.users.manage']);
  const spec = CALLERS[level];
  const caller = await user(tenant, 'caller', [await role(tenant, 'caller', spec.permissions)]);
  let credential: World['credential'];
  if (spec.jwt) {
    const token = await new SignJWT({ sub: caller.id, tid: tenant.id, scope: JWT_SCOPE }).setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(JWT_SECRET));
    credential = ['Authorization', `Bearer ${token}`];
  } else {
    credential = ['X-API-Key', (await key(caller, spec.keyScopes ?? null)).secret];
  }
  return {
    tenant, admin, helpdesk, caller, credential,
    adminKeyId: (await key(admin)).id, helpdeskKeyId: (await key(helpdesk)).id, callerSpareKeyId: (await key(caller)).id,
    helpdeskScopedKeyId: (await key(helpdesk, ['identity.users.manage'])).id,
  };
}

/** Everything an identity operation could change in the tenant. */
async function snapshot(tenant: Tenant) {
  const tenantId = tenant.id;
  return {
    audit: await AuditEvent.count({ where: { tenantId } }),
    users: (await User.findAll({ where: { tenantId }, order: [['id', 'ASC']] })).map((u) => [u.id, u.name, u.active, u.version]),
    userRoles: (await UserRole.findAll({ where: { tenantId }, order: [['userId', 'ASC'], ['roleId', 'ASC']] })).map((ur) => [ur.userId, ur.roleId]),
    roles: (await Role.findAll({ where: { tenantId }, order: [['key', 'ASC']] })).map((r) => [r.key, r.title, r.permissions, r.version]),
    keys: (await ApiKey.findAll({ where: { tenantId }, order: [['id', 'ASC']] }))
      .map((k) => [k.id, k.userId, k.name, k.scopes, k.expiresAt, k.revokedAt, k.secretHash, k.previousSecretHash]),
  };
}

type Call = (w: World) => ReturnType<TestApp['call']>;
const as = (w: World, method: Parameters<TestApp['call']>[0], url: string) => app.call(method, url).set(...w.credential);

const ALL_USERS_MANAGERS: Level[] = ['admin', 'identity.*', 'users.manage', 'JWT scoped (owner *)'];
const ALL_ROLES_MANAGERS: Level[] = ['admin', 'identity.*', 'roles.manage', 'JWT scoped (owner *)'];
const ALL_KEY_MANAGERS: Level[] = ['admin', 'identity.*', 'apikeys.manage', 'key scoped apikeys.manage (owner *)', 'JWT scoped (owner *)'];

const OPERATIONS: { name: string; call: Call; allowed: Level[] }[] = [
  { name: 'createUser without roles', allowed: ALL_USERS_MANAGERS,
    call: (w) => as(w, 'post', '/v1/users').send({ email: 'new@example.com', name: 'New' }) },
  { name: 'createUser with the admin role', allowed: ['admin'],
    call: (w) => as(w, 'post', '/v1/users').send({ email: 'new@example.com', name: 'New', roles: ['admin'] }) },
  { name: 'createUser with a role granting identity.users.manage', allowed: ALL_USERS_MANAGERS,
    call: (w) => as(w, 'post', '/v1/users').send({ email: 'new@example.com', name: 'New', roles: ['user-managers'] }) },
  { name: 'updateUser: give myself the admin role', allowed: ['admin'],
    call: (w) => as(w, 'patch', `/v1/users/${w.caller.id}`).send({ roles: ['caller', 'admin'] }) },
  { name: 'updateUser: deactivate the admin', allowed: ['admin'],
    call: (w) => as(w, 'patch', `/v1/users/${w.admin.id}`).send({ active: false }) },
  { name: 'updateUser: strip the admin\'s roles', allowed: ['admin'],
    call: (w) => as(w, 'patch', `/v1/users/${w.admin.id}`).send({ roles: [] }) },
  { name: 'updateUser: rename the admin', allowed: ['admin'],
    call: (w) => as(w, 'patch', `/v1/users/${w.admin.id}`).send({ name: 'Renamed' }) },
  { name: 'updateUser: deactivate the helpdesk user (identity.users.manage)', allowed: ALL_USERS_MANAGERS,
    call: (w) => as(w, 'patch', `/v1/users/${w.helpdesk.id}`).send({ active: false }) },
  { name: 'updateUser: give the helpdesk user audit.read', allowed: ['admin'],
    call: (w) => as(w, 'patch', `/v1/users/${w.helpdesk.id}`).send({ roles: ['helpdesk', 'spare-audit'] }) },
  { name: 'createRole with *', allowed: ['admin'],
    call: (w) => as(w, 'post', '/v1/roles').send({ key: 'root2', title: 'Root', permissions: ['*'] }) },
  { name: 'createRole with identity.roles.manage', allowed: ALL_ROLES_MANAGERS,
    call: (w) => as(w, 'post', '/v1/roles').send({ key: 'rm', title: 'RM', permissions: ['identity.roles.manage'] }) },
  { name: 'createRole with identity.* (the JWT holds the names, not the wildcard)', allowed: ['admin', 'identity.*'],
    call: (w) => as(w, 'post', '/v1/roles').send({ key: 'idall', title: 'ID', permissions: ['identity.*'] }) },
  { name: 'updateRole: set my own role to *', allowed: ['admin'],
    call: (w) => as(w, 'patch', '/v1/roles/caller').send({ permissions: ['*'] }) },
  { name: 'updateRole: take * from the admin role', allowed: ['admin'],
    call: (w) => as(w, 'patch', '/v1/roles/admin').send({ permissions: ['files.read'] }) },
  { name: 'updateRole: retitle a role granting identity.roles.manage', allowed: ALL_ROLES_MANAGERS,
    call: (w) => as(w, 'patch', '/v1/roles/spare-roles').send({ title: 'Role managers' }) },
  { name: 'updateRole: add audit.read to a role', allowed: ['admin'],
    call: (w) => as(w, 'patch', '/v1/roles/spare-roles').send({ permissions: ['identity.roles.manage', 'audit.read'] }) },
  { name: 'deleteRole granting audit.read', allowed: ['admin'],
    call: (w) => as(w, 'delete', '/v1/roles/spare-audit') },
  { name: 'deleteRole granting identity.roles.manage', allowed: ALL_ROLES_MANAGERS,
    call: (w) => as(w, 'delete', '/v1/roles/spare-roles') },
  { name: 'createApiKey for myself, unscoped', allowed: ALL_KEY_MANAGERS,
    call: (w) => as(w, 'post', '/v1/api-keys').send({ name: 'mine' }) },
  { name: 'createApiKey for myself, scoped *', allowed: ['admin'],
    call: (w) => as(w, 'post', '/v1/api-keys').send({ name: 'mine', scopes: ['*'] }) },
  { name: 'createApiKey for myself, scoped identity.apikeys.manage', allowed: ALL_KEY_MANAGERS,
    call: (w) => as(w, 'post', '/v1/api-keys').send({ name: 'mine', scopes: ['identity.apikeys.manage'] }) },
  { name: 'createApiKey for the helpdesk user, unscoped', allowed: ['admin', 'identity.*'],
    call: (w) => as(w, 'post', '/v1/api-keys').send({ name: 'theirs', userId: w.helpdesk.id }) },
  { name: 'createApiKey for the helpdesk user, scoped identity.users.manage', allowed: ['admin', 'identity.*'],
    call: (w) => as(w, 'post', '/v1/api-keys').send({ name: 'theirs', userId: w.helpdesk.id, scopes: ['identity.users.manage'] }) },
  { name: 'createApiKey for the admin, unscoped', allowed: ['admin', 'identity.*'],
    call: (w) => as(w, 'post', '/v1/api-keys').send({ name: 'theirs', userId: w.admin.id }) },
  { name: 'createApiKey for the admin, scoped *', allowed: ['admin'],
    call: (w) => as(w, 'post', '/v1/api-keys').send({ name: 'theirs', userId: w.admin.id, scopes: ['*'] }) },
  { name: 'revokeApiKey of the admin', allowed: ['admin'],
    call: (w) => as(w, 'delete', `/v1/api-keys/${w.adminKeyId}`) },
  { name: 'revokeApiKey of the helpdesk user', allowed: ['admin', 'identity.*', 'JWT scoped (owner *)'],
    call: (w) => as(w, 'delete', `/v1/api-keys/${w.helpdeskKeyId}`) },
  { name: 'revokeApiKey: my own unscoped key', allowed: ['admin', 'identity.*', 'apikeys.manage'],
    call: (w) => as(w, 'delete', `/v1/api-keys/${w.callerSpareKeyId}`) },
  // Rotating hands the caller a secret that acts as the key: all the key could ever do (an unscoped key follows its
  // owner's roles, so '*'), and another user's key needs identity.apikeys.manage_others (the JWT's scope lacks it).
  { name: 'rotateApiKey of the admin', allowed: ['admin'],
    call: (w) => as(w, 'post', `/v1/api-keys/${w.adminKeyId}/rotate`) },
  { name: 'rotateApiKey of the helpdesk user (unscoped: it would gain what they are given later)', allowed: ['admin'],
    call: (w) => as(w, 'post', `/v1/api-keys/${w.helpdeskKeyId}/rotate`).send({ overlapHours: 1 }) },
  { name: 'rotateApiKey of the helpdesk user\'s key scoped identity.users.manage', allowed: ['admin', 'identity.*'],
    call: (w) => as(w, 'post', `/v1/api-keys/${w.helpdeskScopedKeyId}/rotate`) },
  { name: 'rotateApiKey: my own unscoped key', allowed: ['admin', 'identity.*', 'apikeys.manage'],
    call: (w) => as(w, 'post', `/v1/api-keys/${w.callerSpareKeyId}/rotate`) },
  // A later expiry, or none, keeps a key's powers alive: as revoking, for whoever holds everything it can do.
  { name: 'updateApiKey: the admin\'s key never expires', allowed: ['admin'],
    call: (w) => as(w, 'patch', `/v1/api-keys/${w.adminKeyId}`).send({ expiresAt: null, name: 'renamed' }) },
  { name: 'updateApiKey: rename the helpdesk user\'s key', allowed: ['admin', 'identity.*'],
    call: (w) => as(w, 'patch', `/v1/api-keys/${w.helpdeskKeyId}`).send({ name: 'renamed' }) },
  { name: 'updateApiKey: my own unscoped key expires next year', allowed: ['admin', 'identity.*', 'apikeys.manage'],
    call: (w) => as(w, 'patch', `/v1/api-keys/${w.callerSpareKeyId}`).send({ expiresAt: new Date(Date.now() + 365 * 86_400_000).toISOString() }) },
];

describe.each(OPERATIONS)('$name', ({ call, allowed }) => {
  it('is allowed exactly for the callers that hold everything it grants or touches, and a refusal changes nothing', async () => {
    await runPermissionMatrix({
      levels: LEVELS, build: buildWorld, call, snapshot,
      expected: (level) => (allowed.includes(level) ? 'allowed' : 'refused 403 PERMISSION_*'),
      // Denied (a permission missing) or escalation (more than the caller holds): either refuses the same callers here.
      refusal: (res) => `refused ${res.status} ${/^PERMISSION_(DENIED|ESCALATION)$/.test(res.body.code) ? 'PERMISSION_*' : res.body.code}`,
    });
  });
});

describe('what an allowed key can do', () => {
  const me = (secret: string) => app.call('get', '/v1/me', secret).expect(200).then((r) => r.body.permissions as string[]);

  it('a key made without scopes is never wider than the credential that made it', async () => {
    const made: Record<string, string[]> = {};
    for (const level of ALL_KEY_MANAGERS) {
      const w = await buildWorld(level);
      const res = await as(w, 'post', '/v1/api-keys').send({ name: 'mine' }).expect(201);
      made[level] = await me(res.body.secret);
    }
    expect(made).toEqual({
      admin: ['*'],
      'identity.*': ['identity.*'],
      'apikeys.manage': ['identity.apikeys.manage'],
      // The scoped key's owner holds '*': the new key carries the scope, not the owner's '*'.
      'key scoped apikeys.manage (owner *)': ['identity.apikeys.manage'],
      'JWT scoped (owner *)': [...JWT_SCOPE].sort(),
    });
  });

  it('a key for another user does only what both hold, acts as them, and is audited naming them', async () => {
    const w = await buildWorld('identity.*');
    const forHelpdesk = await as(w, 'post', '/v1/api-keys').send({ name: 'theirs', userId: w.helpdesk.id }).expect(201);
    expect(forHelpdesk.body).toMatchObject({ userId: w.helpdesk.id, scopes: ['identity.*'] });
    expect(await me(forHelpdesk.body.secret)).toEqual(['identity.users.manage']);
    const forAdmin = await as(w, 'post', '/v1/api-keys').send({ name: 'theirs', userId: w.admin.id }).expect(201);
    expect(await me(forAdmin.body.secret)).toEqual(['identity.*']);
    await app.call('get', '/v1/audit-events', forAdmin.body.secret).expect(403);
    const events = await AuditEvent.findAll({ where: { tenantId: w.tenant.id, action: 'identity.apikey.created_for_user' }, order: [['id', 'ASC']] });
    expect(events.map((e) => [e.entityId, (e.after as { userId: string }).userId])).toEqual([[forHelpdesk.body.id, w.helpdesk.id], [forAdmin.body.id, w.admin.id]]);
    expect(await AuditEvent.count({ where: { tenantId: w.tenant.id, action: 'identity.apikey.created' } })).toBe(0);
  });

  it('a key for another user needs identity.apikeys.manage_others, named in the refusal', async () => {
    const w = await buildWorld('apikeys.manage');
    const res = await as(w, 'post', '/v1/api-keys').send({ name: 'theirs', userId: w.helpdesk.id, scopes: ['identity.apikeys.manage'] }).expect(403);
    expect(res.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'identity.apikeys.manage_others' });
    expect(await ApiKey.count({ where: { tenantId: w.tenant.id, userId: w.helpdesk.id, id: { [Op.notIn]: [w.helpdeskKeyId, w.helpdeskScopedKeyId] } } })).toBe(0);
  });

  it('a rotated secret never comes to do more than its rotator held: an unscoped key of another user needs *', async () => {
    const w = await buildWorld('identity.*');
    // Refused: the helpdesk user's unscoped key follows their roles, and an admin may give them anything later.
    const refused = await as(w, 'post', `/v1/api-keys/${w.helpdeskKeyId}/rotate`).expect(403);
    expect(refused.body.code).toBe('PERMISSION_ESCALATION');
    // Allowed: their key scoped to identity.users.manage, which the caller holds; promoting them adds nothing to it.
    const rotated = await as(w, 'post', `/v1/api-keys/${w.helpdeskScopedKeyId}/rotate`).expect(200);
    await UserRole.create({ userId: w.helpdesk.id, roleId: (await Role.findOne({ where: { tenantId: w.tenant.id, key: 'admin' } }))!.id, tenantId: w.tenant.id });
    expect(await me(rotated.body.secret)).toEqual(['identity.users.manage']);
    await app.call('get', '/v1/audit-events', rotated.body.secret).expect(403);
    // A deactivated user's key is not rotated (its secret would come alive with them).
    await User.update({ active: false }, { where: { id: w.helpdesk.id } });
    const inactive = await as(w, 'post', `/v1/api-keys/${w.helpdeskScopedKeyId}/rotate`).expect(422);
    expect(inactive.body.code).toBe('UNKNOWN_USER');
  });

  it('the catalogue lists identity.apikeys.manage_others', async () => {
    const w = await buildWorld('admin');
    const res = await as(w, 'get', '/v1/permissions').expect(200);
    expect(res.body.items.map((p: { name: string }) => p.name)).toContain('identity.apikeys.manage_others');
  });
});
