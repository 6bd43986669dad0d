// Identity: who am I, the permission catalogue, users, roles, API keys, JWTs — and every refusal.
import { randomUUID } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { ApiKey, AuditEvent, Role, User, UserRole } from '../../db';
import { IDENTITY_LOCK_CLASS } from '../../domains/identity/commands';
import { buildApiKey, buildCaller, buildTenant, buildUser, writeUnheard } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { waitFor } from '../helpers/wait';

const JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256';
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({ JWT_SECRET, JWT_AUDIENCE: 'docket' });
});
afterAll(() => app.close());

describe('GET /v1/me', () => {
  it('tells an API key caller who they are, their tenant, roles and permissions', async () => {
    const { key, user, tenant } = await buildCaller(['audit.read', 'files.*']);
    const res = await app.call('get', '/v1/me', key).expect(200);
    expect(res.body.user).toEqual({ id: user.id, email: user.email, name: user.name, locale: null, timeZone: null });
    expect(res.body.tenant.id).toBe(tenant.id);
    expect(res.body.permissions).toEqual(['audit.read', 'files.*']);
    expect(res.body.auth.method).toBe('api_key');
  });

  it('lets any caller, with no permission at all, set their own locale and time zone — and nothing else of theirs', async () => {
    const { key, user, tenant } = await buildCaller([]);
    const { user: other } = await buildCaller(['*'], tenant);
    const set = await app.call('patch', '/v1/me', key).send({ locale: 'de', timeZone: 'Europe/Berlin' }).expect(200);
    expect(set.body.user).toEqual({ id: user.id, email: user.email, name: user.name, locale: 'de', timeZone: 'Europe/Berlin' });
    expect(set.body.permissions).toEqual([]);
    // Shown at once (the cached caller is dropped), and kept.
    expect((await app.call('get', '/v1/me', key).expect(200)).body.user).toMatchObject({ locale: 'de', timeZone: 'Europe/Berlin' });
    expect(await User.findByPk(user.id)).toMatchObject({ locale: 'de', timeZone: 'Europe/Berlin' });
    const audit = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'identity.user.updated', entityId: user.id } });
    expect([audit!.before, audit!.after]).toEqual([{ locale: null, timeZone: null }, { locale: 'de', timeZone: 'Europe/Berlin' }]);
    expect((await app.call('patch', '/v1/me', key).send({ timeZone: null }).expect(200)).body.user).toMatchObject({ locale: 'de', timeZone: null });

    // Roles, activity, a name, another user's id: not this route's to change; an unknown zone or a malformed locale is refused.
    for (const body of [{ roles: ['admin'] }, { active: false }, { name: 'Mallory' }, { id: other.id, locale: 'fr' }, {}, { locale: 'de DE' }]) {
      expect([body, (await app.call('patch', '/v1/me', key).send(body).expect(400)).body.code]).toEqual([body, 'VALIDATION_FAILED']);
    }
    expect((await app.call('patch', '/v1/me', key).send({ timeZone: 'Mars/Olympus' }).expect(400)).body.errors[0].path).toBe('/requestBody/timeZone');
    expect(await User.findByPk(other.id)).toMatchObject({ locale: null, timeZone: null });
    expect((await app.call('get', '/v1/me', key).expect(200)).body).toMatchObject({ permissions: [], user: { name: user.name, locale: 'de', timeZone: null } });
    await app.call('patch', '/v1/me').send({ locale: 'de' }).expect(401);
  });

  it('answers 401 UNAUTHENTICATED without credentials', async () => {
    const res = await app.call('get', '/v1/me').expect(401);
    expect(res.body.code).toBe('UNAUTHENTICATED');
  });

  it('answers 401 for an unknown or malformed key', async () => {
    expect((await app.call('get', '/v1/me', 'dk_000000000000_' + 'A'.repeat(43)).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
    expect((await app.call('get', '/v1/me', 'dk_nonsense').expect(401)).body.code).toBe('INVALID_CREDENTIALS');
  });

  it('looks a credential in use up again before its cache entry expires: a revocation made elsewhere shows before the 5 s TTL', async () => {
    const tenant = await buildTenant();
    const user = await buildUser(tenant, { permissions: ['*'] });
    const key = await buildApiKey(user);
    await app.call('get', '/v1/me', key).expect(200);
    const started = Date.now();
    // Revoked where this process does not hear of it (its change listener down): it keeps answering from its cache for now.
    await writeUnheard(app.sequelize, 'UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND user_id = $2', [tenant.id, user.id]);
    await app.call('get', '/v1/me', key).expect(200);
    // In the last second of the entry's TTL a request is still served from the cache, and starts a lookup.
    await new Promise((r) => setTimeout(r, 4_100 - (Date.now() - started)));
    await app.call('get', '/v1/me', key).expect(200);
    await new Promise((r) => setTimeout(r, 250));
    expect(Date.now() - started).toBeLessThan(4_900);
    expect((await app.call('get', '/v1/me', key).expect(401)).body.code).toBe('CREDENTIALS_REVOKED');
  });

  it('answers 401 CREDENTIALS_EXPIRED for an expired key and CREDENTIALS_REVOKED for a revoked one', async () => {
    const tenant = await buildTenant();
    const user = await buildUser(tenant, { permissions: ['*'] });
    const expired = await buildApiKey(user, { expiresAt: new Date(Date.now() - 1000) });
    const revoked = await buildApiKey(user, { revoked: true });
    expect((await app.call('get', '/v1/me', expired).expect(401)).body.code).toBe('CREDENTIALS_EXPIRED');
    expect((await app.call('get', '/v1/me', revoked).expect(401)).body.code).toBe('CREDENTIALS_REVOKED');
  });

  it('refuses the key of a deactivated user', async () => {
    const tenant = await buildTenant();
    const user = await buildUser(tenant, { permissions: ['*'], active: false });
    const res = await app.call('get', '/v1/me', await buildApiKey(user)).expect(401);
    expect(res.body).toMatchObject({ code: 'INVALID_CREDENTIALS', detail: expect.stringContaining('inactive') });
  });

  it('accepts the key as a bearer token too', async () => {
    const { key, user } = await buildCaller(['*']);
    const res = await app.call('get', '/v1/me').set('Authorization', `Bearer ${key}`).expect(200);
    expect(res.body.user.id).toBe(user.id);
    expect(res.body.auth.method).toBe('api_key');
  });
});

describe('JWT bearer tokens', () => {
  const sign = (claims: Record<string, unknown>, opts: { secret?: string; exp?: string | number; aud?: string } = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt()
      .setAudience(opts.aud ?? 'docket').setExpirationTime(opts.exp ?? '5m')
      .sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET));

  it('accepts a valid HS256 token for a user of the tenant and narrows by scope', async () => {
    const { user, tenant } = await buildCaller(['audit.read', 'files.read']);
    const token = await sign({ sub: user.id, tid: tenant.id, scope: 'files.read' });
    const res = await app.call('get', '/v1/me').set('Authorization', `Bearer ${token}`).expect(200);
    expect(res.body.auth.method).toBe('jwt');
    expect(res.body.permissions).toEqual(['files.read']);
    await app.call('get', '/v1/audit-events').set('Authorization', `Bearer ${token}`).expect(403);
  });

  it('refuses alg none', async () => {
    const { user, tenant } = await buildCaller(['*']);
    const token = new UnsecuredJWT({ sub: user.id, tid: tenant.id }).setAudience('docket').setExpirationTime('5m').encode();
    const res = await app.call('get', '/v1/me').set('Authorization', `Bearer ${token}`).expect(401);
    expect(res.body.code).toBe('INVALID_CREDENTIALS');
  });

  it('refuses a forged signature, an expired token and a wrong audience', async () => {
    const { user, tenant } = await buildCaller(['*']);
    const forged = await sign({ sub: user.id, tid: tenant.id }, { secret: 'another-secret-another-secret-123456' });
    expect((await app.call('get', '/v1/me').set('Authorization', `Bearer ${forged}`).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
    const expired = await sign({ sub: user.id, tid: tenant.id }, { exp: Math.floor(Date.now() / 1000) - 60 });
    expect((await app.call('get', '/v1/me').set('Authorization', `Bearer ${expired}`).expect(401)).body.code).toBe('CREDENTIALS_EXPIRED');
    const wrongAud = await sign({ sub: user.id, tid: tenant.id }, { aud: 'someone-else' });
    expect((await app.call('get', '/v1/me').set('Authorization', `Bearer ${wrongAud}`).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
  });

  it('refuses a token whose user is not in the named tenant', async () => {
    const { user } = await buildCaller(['*']);
    const other = await buildTenant();
    const token = await sign({ sub: user.id, tid: other.id });
    expect((await app.call('get', '/v1/me').set('Authorization', `Bearer ${token}`).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
  });
});

describe('permissions', () => {
  it('serves the catalogue with the operations that use each permission', async () => {
    const { key } = await buildCaller([]);
    const res = await app.call('get', '/v1/permissions', key).expect(200);
    const auditRead = res.body.items.find((p: { name: string }) => p.name === 'audit.read');
    expect(auditRead.operations).toEqual(expect.arrayContaining(['listAuditEvents', 'getAuditExport']));
  });

  it('checks the caller\'s permissions, wildcards included', async () => {
    const { key } = await buildCaller(['files.*']);
    const res = await app.call('post', '/v1/me/permissions/check', key).send({ permissions: ['files.write', 'audit.read'] }).expect(200);
    expect(res.body).toEqual({ all: false, results: { 'files.write': true, 'audit.read': false } });
  });

  it('refuses an operation without its permission with 403 naming it', async () => {
    const { key } = await buildCaller(['files.read']);
    const res = await app.call('get', '/v1/roles', key).expect(403);
    expect(res.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'identity.roles.read' });
  });

  it('narrows a scoped key below its user', async () => {
    const tenant = await buildTenant();
    const user = await buildUser(tenant, { permissions: ['*'] });
    const key = await buildApiKey(user, { scopes: ['identity.roles.read'] });
    await app.call('get', '/v1/roles', key).expect(200);
    expect((await app.call('get', '/v1/users', key).expect(403)).body.permission).toBe('identity.users.read');
  });
});

describe('roles', () => {
  it('creates, reads, edits with If-Match and deletes a role, auditing each change', async () => {
    // The caller holds what it grants (granting what one does not hold is refused: identity-matrix.test.ts).
    const { key, tenant } = await buildCaller(['identity.roles.read', 'identity.roles.manage', 'audit.read', 'audit.export']);
    const created = await app.call('post', '/v1/roles', key).send({ key: 'auditor', title: 'Auditor', permissions: ['audit.read'] }).expect(201);
    expect(created.headers.location).toBe('/v1/roles/auditor');
    const etag = created.headers.etag;
    const got = await app.call('get', '/v1/roles/auditor', key).expect(200);
    expect(got.headers.etag).toBe(etag);
    const updated = await app.call('patch', '/v1/roles/auditor', key).set('If-Match', etag).send({ permissions: ['audit.read', 'audit.export'] }).expect(200);
    expect(updated.body.permissions).toEqual(['audit.read', 'audit.export']);
    expect(updated.headers.etag).not.toBe(etag);
    // The old ETag is stale now: 412 and nothing is written.
    const stale = await app.call('patch', '/v1/roles/auditor', key).set('If-Match', etag).send({ title: 'Lost update' }).expect(412);
    expect(stale.body.code).toBe('PRECONDITION_FAILED');
    expect((await app.call('get', '/v1/roles/auditor', key).expect(200)).body.title).toBe('Auditor');
    await app.call('delete', '/v1/roles/auditor', key).expect(204);
    await app.call('get', '/v1/roles/auditor', key).expect(404);
    const actions = (await AuditEvent.findAll({ where: { tenantId: tenant.id, entityType: 'role', entityId: 'auditor' }, order: [['id', 'ASC']] })).map((e) => e.action);
    expect(actions).toEqual(['identity.role.created', 'identity.role.updated', 'identity.role.deleted']);
  });

  it('serves a strong ETag and compares If-Match strongly; the weak form served before still matches for one release', async () => {
    const { key } = await buildCaller(['identity.roles.read', 'identity.roles.manage']);
    const created = await app.call('post', '/v1/roles', key).send({ key: 'clerk', title: 'Clerk', permissions: [] }).expect(201);
    const etag = created.headers.etag;
    expect(etag).toMatch(/^"v\d+"$/);
    // A weak tag never matches under If-Match (RFC 9110), even one naming the current version's strong tag.
    const weak = await app.call('patch', '/v1/roles/clerk', key).set('If-Match', `W/${etag}`).send({ title: 'Weak' }).expect(412);
    expect(weak.body.code).toBe('PRECONDITION_FAILED');
    // W/"<version>", what users, roles and purchase orders answered before, is still taken.
    const version = etag.slice(2, -1);
    const legacy = await app.call('patch', '/v1/roles/clerk', key).set('If-Match', `W/"${version}"`).send({ title: 'Legacy' }).expect(200);
    expect(legacy.headers.etag).toBe(`"v${Number(version) + 1}"`);
    // …but only for the current version.
    await app.call('patch', '/v1/roles/clerk', key).set('If-Match', `W/"${version}"`).send({ title: 'Stale' }).expect(412);
    await app.call('patch', '/v1/roles/clerk', key).set('If-Match', `"nope", ${legacy.headers.etag}`).send({ title: 'Listed' }).expect(200);
    expect((await app.call('get', '/v1/roles/clerk', key).expect(200)).body.title).toBe('Listed');
  });

  it('refuses permissions not in the catalogue with 422 UNKNOWN_PERMISSION', async () => {
    const { key } = await buildCaller(['*']);
    const res = await app.call('post', '/v1/roles', key).send({ key: 'odd', title: 'Odd', permissions: ['audit.read', 'nuclear.launch'] }).expect(422);
    expect(res.body.code).toBe('UNKNOWN_PERMISSION');
    expect(res.body.detail).toContain('nuclear.launch');
  });

  it('refuses a duplicate key with 409 ALREADY_EXISTS', async () => {
    const { key } = await buildCaller(['*']);
    await app.call('post', '/v1/roles', key).send({ key: 'dup', title: 'One', permissions: [] }).expect(201);
    expect((await app.call('post', '/v1/roles', key).send({ key: 'dup', title: 'Two', permissions: [] }).expect(409)).body.code).toBe('ALREADY_EXISTS');
  });

  it('refuses to delete a role that users hold: 409 DEPENDENCY_EXISTS with the count', async () => {
    const { key } = await buildCaller(['*']);
    await app.call('post', '/v1/roles', key).send({ key: 'buyer', title: 'Buyer', permissions: [] }).expect(201);
    await app.call('post', '/v1/users', key).send({ email: 'b1@example.com', name: 'B1', roles: ['buyer'] }).expect(201);
    await app.call('post', '/v1/users', key).send({ email: 'b2@example.com', name: 'B2', roles: ['buyer'] }).expect(201);
    const res = await app.call('delete', '/v1/roles/buyer', key).expect(409);
    expect(res.body).toMatchObject({ code: 'DEPENDENCY_EXISTS', count: 2 });
  });

  it('lists roles page by page with a cursor', async () => {
    const { key } = await buildCaller(['*']);
    for (const k of ['a1', 'a2', 'a3']) await app.call('post', '/v1/roles', key).send({ key: k, title: k, permissions: [] }).expect(201);
    const first = await app.call('get', '/v1/roles?limit=2', key).expect(200);
    expect(first.body.items).toHaveLength(2);
    const second = await app.call('get', `/v1/roles?limit=2&cursor=${first.body.nextCursor}`, key).expect(200);
    const keys = [...first.body.items, ...second.body.items].map((r: { key: string }) => r.key);
    expect(keys).toEqual([...new Set(keys)]);
    expect(keys).toEqual(expect.arrayContaining(['a1', 'a2', 'a3']));
    expect(second.body.nextCursor).toBeNull();
  });
});

describe('users', () => {
  it('creates a user with roles, grants permissions through them, and edits with If-Match', async () => {
    const { key } = await buildCaller(['*']);
    await app.call('post', '/v1/roles', key).send({ key: 'reader', title: 'Reader', permissions: ['files.read'] }).expect(201);
    const created = await app.call('post', '/v1/users', key).send({ email: 'Ada@Example.com', name: 'Ada', roles: ['reader'] }).expect(201);
    expect(created.body).toMatchObject({ email: 'ada@example.com', roles: ['reader'], active: true });
    const id = created.body.id;
    const patched = await app.call('patch', `/v1/users/${id}`, key).set('If-Match', created.headers.etag).send({ name: 'Ada L.', roles: [] }).expect(200);
    expect(patched.body).toMatchObject({ name: 'Ada L.', roles: [] });
    await app.call('patch', `/v1/users/${id}`, key).set('If-Match', created.headers.etag).send({ name: 'stale' }).expect(412);
    const list = await app.call('get', '/v1/users?active=true', key).expect(200);
    expect(list.body.items.map((u: { id: string }) => u.id)).toContain(id);
  });

  it('refuses an unknown role with 422 and a duplicate email with 409', async () => {
    const { key } = await buildCaller(['*']);
    expect((await app.call('post', '/v1/users', key).send({ email: 'x@example.com', name: 'X', roles: ['ghost'] }).expect(422)).body.code).toBe('UNKNOWN_ROLE');
    await app.call('post', '/v1/users', key).send({ email: 'y@example.com', name: 'Y' }).expect(201);
    expect((await app.call('post', '/v1/users', key).send({ email: 'Y@example.com', name: 'Y2' }).expect(409)).body.code).toBe('ALREADY_EXISTS');
  });

  it('refuses an invalid email', async () => {
    const { key } = await buildCaller(['*']);
    const res = await app.call('post', '/v1/users', key).send({ email: 'not-an-email', name: 'X' }).expect(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['/requestBody/email']);
    expect((await app.call('get', '/v1/users', key).expect(200)).body.items.map((u: { name: string }) => u.name)).not.toContain('X');
  });

  it('takes effect at once: a deactivated user\'s key stops working', async () => {
    const { key: admin, tenant } = await buildCaller(['*']);
    const user = await buildUser(tenant, { permissions: ['files.read'] });
    const userKey = await buildApiKey(user);
    await app.call('get', '/v1/me', userKey).expect(200);
    expect((await app.call('patch', `/v1/users/${user.id}`, admin).send({ active: false }).expect(200)).body).toMatchObject({ id: user.id, active: false });
    expect((await app.call('get', '/v1/me', userKey).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
  });
});

describe('who can do this: GET /v1/users?permission=&role=', () => {
  it('lists the users whose roles grant a permission, wildcards included, or who hold a role; scopes do not count', async () => {
    const { key, user: admin, tenant } = await buildCaller(['*']);
    const auditor = await buildUser(tenant, { permissions: ['audit.*'], name: 'Auditor' });
    const reader = await buildUser(tenant, { permissions: ['audit.read', 'files.read'], name: 'Reader' });
    const signer = await buildUser(tenant, { permissions: ['approvals.flow.sign'], name: 'Signer', active: false });
    await buildUser(tenant, { name: 'Nobody' });
    // A key scoped to audit.read on a user who holds nothing of audit: still not a holder.
    const scopedOnly = await buildUser(tenant, { permissions: ['files.read'], name: 'Scoped' });
    await buildApiKey(scopedOnly, { scopes: ['audit.read'] });
    const { user: stranger } = await buildCaller(['*']); // another tenant's admin

    const ids = async (q: string) => {
      const seen: string[] = [];
      // One user a page: the filter holds across cursor pages.
      for (let cursor: string | null = null, first = true; first || cursor; first = false) {
        const res: { body: { items: { id: string }[]; nextCursor: string | null } } = await app.call('get', `/v1/users?limit=1&${q}${cursor ? `&cursor=${cursor}` : ''}`, key).expect(200);
        seen.push(...res.body.items.map((u: { id: string }) => u.id));
        cursor = res.body.nextCursor;
      }
      return seen.sort();
    };
    const sorted = (...us: { id: string }[]) => us.map((u) => u.id).sort();
    expect(await ids('permission=audit.read')).toEqual(sorted(admin, auditor, reader));
    expect(await ids('permission=audit.export')).toEqual(sorted(admin, auditor));
    expect(await ids('permission=audit.*')).toEqual(sorted(admin, auditor)); // audit.read does not cover audit.*
    expect(await ids('permission=approvals.flow.sign')).toEqual(sorted(admin, signer));
    expect(await ids('permission=approvals.flow.sign&active=true')).toEqual(sorted(admin));
    expect(await ids('permission=*')).toEqual(sorted(admin));
    const auditorRole = (await app.call('get', `/v1/users/${auditor.id}`, key).expect(200)).body.roles[0];
    expect(await ids(`role=${auditorRole}`)).toEqual(sorted(auditor));
    expect(await ids(`role=${auditorRole}&permission=files.read`)).toEqual([]);
    expect(await ids('role=no-such-role')).toEqual([]);
    expect(await ids('permission=audit.read')).not.toContain(stranger.id);

    expect((await app.call('get', '/v1/users?permission=nothing.here', key).expect(422)).body.code).toBe('UNKNOWN_PERMISSION');
    for (const bad of ['permission=Audit.Read', 'permission=audit.', 'permission=%27%3B--', `permission=${'a'.repeat(101)}`, 'role=Bad%20Key', 'role=']) {
      expect([bad, (await app.call('get', `/v1/users?${bad}`, key).expect(400)).body.code]).toEqual([bad, 'VALIDATION_FAILED']);
    }
    // Listing users needs identity.users.read, as without the filter.
    const { key: weak } = await buildCaller(['audit.read'], tenant);
    await app.call('get', '/v1/users?permission=audit.read', weak).expect(403);
  });
});

describe('tenancy', () => {
  it('answers 404 for another tenant\'s user, role, key and tenant data', async () => {
    const a = await buildCaller(['*']);
    const b = await buildCaller(['*']);
    await app.call('post', '/v1/roles', b.key).send({ key: 'secret-role', title: 'B only', permissions: [] }).expect(201);
    await app.call('get', `/v1/users/${b.user.id}`, a.key).expect(404);
    await app.call('patch', `/v1/users/${b.user.id}`, a.key).send({ name: 'hijack' }).expect(404);
    await app.call('get', '/v1/roles/secret-role', a.key).expect(404);
    const bKeys = await app.call('get', '/v1/api-keys', b.key).expect(200);
    await app.call('get', `/v1/api-keys/${bKeys.body.items[0].id}`, a.key).expect(404);
    await app.call('delete', `/v1/api-keys/${bKeys.body.items[0].id}`, a.key).expect(404);
    const aUsers = await app.call('get', '/v1/users', a.key).expect(200);
    expect(aUsers.body.items.map((u: { id: string }) => u.id)).not.toContain(b.user.id);
    expect((await app.call('get', '/v1/tenant', a.key).expect(200)).body.id).toBe(a.tenant.id);
  });
});

describe('API keys', () => {
  it('shows the secret once, stores only a hash, and works until revoked', async () => {
    const { key: admin } = await buildCaller(['*']);
    const created = await app.call('post', '/v1/api-keys', admin).send({ name: 'exporter', scopes: ['audit.read'] }).expect(201);
    const secret: string = created.body.secret;
    expect(secret).toMatch(/^dk_[a-f0-9]{12}_/);
    expect(secret.startsWith(created.body.prefix)).toBe(true);
    const listed = await app.call('get', '/v1/api-keys', admin).expect(200);
    expect(JSON.stringify(listed.body)).not.toContain(secret.slice('dk_000000000000_'.length));
    await app.call('get', '/v1/audit-events', secret).expect(200);
    await app.call('get', '/v1/files', secret).expect(403);
    const after = await app.call('get', `/v1/api-keys/${created.body.id}`, admin).expect(200);
    expect(after.body.lastUsedAt).not.toBeNull();
    const revoked = await app.call('delete', `/v1/api-keys/${created.body.id}`, admin).expect(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expect((await app.call('get', '/v1/audit-events', secret).expect(401)).body.code).toBe('CREDENTIALS_REVOKED');
  });

  const raw = (secret: string) => secret.slice('dk_000000000000_'.length);
  const keyOf = async (secret: string) => (await ApiKey.findOne({ where: { prefix: secret.slice(3, 15) } }))!;

  it('rotates: a new secret for the same key, the replaced one refused at once without an overlap, audited without secrets', async () => {
    const { key: admin, tenant } = await buildCaller(['*']);
    const created = (await app.call('post', '/v1/api-keys', admin).send({ name: 'exporter', scopes: ['audit.read'] }).expect(201)).body;
    const old: string = created.secret;
    await app.call('get', '/v1/audit-events', old).expect(200); // cached from now on
    const rotated = await app.call('post', `/v1/api-keys/${created.id}/rotate`, admin).expect(200);
    const { secret, ...shown } = rotated.body;
    expect(shown).toMatchObject({ id: created.id, name: 'exporter', prefix: created.prefix, scopes: ['audit.read'], previousSecretValidUntil: null });
    expect(Date.parse(shown.rotatedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(secret).not.toBe(old);
    expect(secret.startsWith(`${created.prefix}_`)).toBe(true);
    // The replaced secret answers 401 at once, though it was cached (forgotten: an unknown key); the new one does
    // what the key did, no more.
    expect((await app.call('get', '/v1/audit-events', old).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
    expect((await ApiKey.findByPk(created.id))!.previousSecretHash).toBeNull();
    await app.call('get', '/v1/audit-events', secret).expect(200);
    await app.call('get', '/v1/files', secret).expect(403);
    expect((await app.call('get', '/v1/me', secret).expect(200)).body.auth).toMatchObject({ apiKeyId: created.id });
    const events = await AuditEvent.findAll({ where: { tenantId: tenant.id, action: 'identity.apikey.rotated', entityId: created.id } });
    expect(events).toHaveLength(1);
    expect(events[0].after).toMatchObject({ overlapHours: 0, rotatedAt: shown.rotatedAt });
    expect(JSON.stringify(events.map((e) => [e.before, e.after]))).not.toContain(raw(secret));
    expect(JSON.stringify(events.map((e) => [e.before, e.after]))).not.toContain(raw(old));
    // A key can rotate itself (its holder holds everything it can do).
    const own = await app.call('post', `/v1/api-keys/${(await keyOf(admin)).id}/rotate`, admin).send({}).expect(200);
    await app.call('get', '/v1/me', own.body.secret).expect(200);
    expect((await app.call('get', '/v1/me', admin).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
  });

  it('with overlapHours the replaced secret works until then, cached no longer; a second rotation ends it', async () => {
    const { key: admin } = await buildCaller(['*']);
    const created = (await app.call('post', '/v1/api-keys', admin).send({ name: 'deploy' }).expect(201)).body;
    const first: string = created.secret;
    const r1 = (await app.call('post', `/v1/api-keys/${created.id}/rotate`, admin).send({ overlapHours: 24 }).expect(200)).body;
    const until = Date.parse(r1.previousSecretValidUntil);
    expect(until).toBeGreaterThan(Date.now() + 23.9 * 3_600_000);
    expect(until).toBeLessThan(Date.now() + 24.1 * 3_600_000);
    // Both work; the replaced one only until the overlap ends (its credential says so).
    expect((await app.call('get', '/v1/me', first).expect(200)).body.auth.expiresAt).toBe(r1.previousSecretValidUntil);
    expect((await app.call('get', '/v1/me', r1.secret).expect(200)).body.auth.expiresAt).toBeNull();
    expect((await app.call('get', `/v1/api-keys/${created.id}`, admin).expect(200)).body.previousSecretValidUntil).toBe(r1.previousSecretValidUntil);

    // The overlap ends (as if 24 h had passed): refused, though it was cached.
    await app.sequelize.query("UPDATE api_keys SET previous_valid_until = now() - interval '1 second' WHERE id = $1", { bind: [created.id] });
    await waitFor(async () => (await app.call('get', '/v1/me', first)).status === 401, { what: 'the replaced secret refused after its overlap' });
    expect((await app.call('get', '/v1/me', first).expect(401)).body.code).toBe('CREDENTIALS_EXPIRED');
    expect((await app.call('get', `/v1/api-keys/${created.id}`, admin).expect(200)).body.previousSecretValidUntil).toBeNull();
    await app.call('get', '/v1/me', r1.secret).expect(200);

    // One replaced secret at a time: a rotation during an overlap ends it.
    const r2 = (await app.call('post', `/v1/api-keys/${created.id}/rotate`, admin).send({ overlapHours: 1 }).expect(200)).body;
    await app.call('get', '/v1/me', r1.secret).expect(200);
    await app.call('get', '/v1/me', r2.secret).expect(200);
    const r3 = (await app.call('post', `/v1/api-keys/${created.id}/rotate`, admin).send({ overlapHours: 1 }).expect(200)).body;
    expect((await app.call('get', '/v1/me', r1.secret).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
    await app.call('get', '/v1/me', r2.secret).expect(200);
    await app.call('get', '/v1/me', r3.secret).expect(200);
  });

  it('caches a replaced secret no longer than its overlap, even when no process is told', async () => {
    const { key: admin } = await buildCaller(['*']);
    const created = (await app.call('post', '/v1/api-keys', admin).send({ name: 'deploy' }).expect(201)).body;
    await app.call('post', `/v1/api-keys/${created.id}/rotate`, admin).send({ overlapHours: 1 }).expect(200);
    // The overlap made to end in 3 s, written without NOTIFY: only the cached credential's own expiry can end it.
    const until = new Date(Date.now() + 3_000);
    await writeUnheard(app.sequelize, 'UPDATE api_keys SET previous_valid_until = $2 WHERE id = $1', [created.id, until]);
    await new Promise((r) => setTimeout(r, 50));
    expect((await app.call('get', '/v1/me', created.secret).expect(200)).body.auth.expiresAt).toBe(until.toISOString());
    await new Promise((r) => setTimeout(r, Math.max(0, until.getTime() - Date.now()) + 200));
    expect((await app.call('get', '/v1/me', created.secret).expect(401)).body.code).toBe('CREDENTIALS_EXPIRED');
  });

  it('refuses bad rotations and changes nothing: 400 for the body, 404 across tenants, 409 for a revoked or expired key', async () => {
    const { key: admin, user, tenant } = await buildCaller(['*']);
    const { key: stranger } = await buildCaller(['*']);
    const live = await buildApiKey(user);
    const revoked = await buildApiKey(user, { revoked: true });
    const expired = await buildApiKey(user, { expiresAt: new Date(Date.now() - 1000) });
    const liveKey = await keyOf(live);
    const hashes = async () => (await ApiKey.findAll({ where: { tenantId: tenant.id }, order: [['id', 'ASC']] })).map((k) => [k.secretHash, k.previousSecretHash, k.rotatedAt]);
    const before = await hashes();
    for (const body of [{ overlapHours: 169 }, { overlapHours: -1 }, { overlapHours: 1.5 }, { overlapHours: '24' }, { overlap: 24 }]) {
      expect([body, (await app.call('post', `/v1/api-keys/${liveKey.id}/rotate`, admin).send(body).expect(400)).body.code]).toEqual([body, 'VALIDATION_FAILED']);
    }
    await app.call('post', '/v1/api-keys/not-a-uuid/rotate', admin).expect(400);
    await app.call('post', `/v1/api-keys/${randomUUID()}/rotate`, admin).expect(404);
    await app.call('post', `/v1/api-keys/${liveKey.id}/rotate`, stranger).expect(404);
    expect((await app.call('post', `/v1/api-keys/${(await keyOf(revoked)).id}/rotate`, admin).expect(409)).body.code).toBe('API_KEY_REVOKED');
    expect((await app.call('post', `/v1/api-keys/${(await keyOf(expired)).id}/rotate`, admin).expect(409)).body.code).toBe('API_KEY_EXPIRED');
    expect(await hashes()).toEqual(before);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'identity.apikey.rotated' } })).toBe(0);
    await app.call('get', '/v1/me', live).expect(200);
  });

  it('with If-Match, of two rotations of the version both read one wins and the other is refused (412), changing nothing; PATCH and revoke the same', async () => {
    const { key: admin, tenant } = await buildCaller(['*']);
    const created = await app.call('post', '/v1/api-keys', admin).send({ name: 'deploy', scopes: ['audit.read'] }).expect(201);
    const etag: string = created.headers.etag;
    expect(etag).toMatch(/^"v\d+"$/);
    // Use is no change: the ETag stays.
    await app.call('get', '/v1/audit-events', created.body.secret).expect(200);
    expect((await app.call('get', `/v1/api-keys/${created.body.id}`, admin).expect(200)).headers.etag).toBe(etag);

    // Two deployments rotate the version they read, at the same moment.
    const rotate = () => app.call('post', `/v1/api-keys/${created.body.id}/rotate`, admin).set('If-Match', etag).send({ overlapHours: 1 });
    const [a, b] = await Promise.all([rotate(), rotate()]);
    expect([a.status, b.status].sort()).toEqual([200, 412]);
    const [won, lost] = a.status === 200 ? [a, b] : [b, a];
    expect(lost.body.code).toBe('PRECONDITION_FAILED');
    expect(lost.body.secret).toBeUndefined();
    expect(won.headers.etag).not.toBe(etag);
    // The winner's secret is the key's; the loser was given none, and the original still works through the overlap.
    await app.call('get', '/v1/audit-events', won.body.secret).expect(200);
    await app.call('get', '/v1/audit-events', created.body.secret).expect(200);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'identity.apikey.rotated', entityId: created.body.id } })).toBe(1);

    // A stale ETag refuses a PATCH and a revoke too; the current one, or none, is accepted.
    const id = created.body.id;
    expect((await app.call('patch', `/v1/api-keys/${id}`, admin).set('If-Match', etag).send({ name: 'stale' }).expect(412)).body.code).toBe('PRECONDITION_FAILED');
    expect((await app.call('delete', `/v1/api-keys/${id}`, admin).set('If-Match', etag).expect(412)).body.code).toBe('PRECONDITION_FAILED');
    const renamed = await app.call('patch', `/v1/api-keys/${id}`, admin).set('If-Match', won.headers.etag).send({ name: 'deploy 2' }).expect(200);
    expect(renamed.body.name).toBe('deploy 2');
    expect(renamed.headers.etag).not.toBe(won.headers.etag);
    await app.call('get', '/v1/audit-events', won.body.secret).expect(200);
    const revoked = await app.call('delete', `/v1/api-keys/${id}`, admin).set('If-Match', renamed.headers.etag).expect(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    await app.call('get', '/v1/audit-events', won.body.secret).expect(401);
  });

  it('renames a key and changes its expiry (PATCH), the new expiry holding at once', async () => {
    const { key: admin, tenant } = await buildCaller(['*']);
    const created = (await app.call('post', '/v1/api-keys', admin).send({ name: 'ci' }).expect(201)).body;
    await app.call('get', '/v1/me', created.secret).expect(200); // cached without an expiry
    const soon = new Date(Date.now() + 5_000).toISOString();
    const changed = await app.call('patch', `/v1/api-keys/${created.id}`, admin).send({ name: 'ci (2027)', expiresAt: soon }).expect(200);
    expect(changed.body).toMatchObject({ id: created.id, name: 'ci (2027)', expiresAt: soon, prefix: created.prefix });
    expect((await app.call('get', '/v1/me', created.secret).expect(200)).body.auth.expiresAt).toBe(soon);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(soon) - Date.now()) + 200));
    expect((await app.call('get', '/v1/me', created.secret).expect(401)).body.code).toBe('CREDENTIALS_EXPIRED');
    // Expired keys can be given a new expiry, or none, by someone who holds everything they can do.
    expect((await app.call('patch', `/v1/api-keys/${created.id}`, admin).send({ expiresAt: null }).expect(200)).body.expiresAt).toBeNull();
    await app.call('get', '/v1/me', created.secret).expect(200);
    const events = await AuditEvent.findAll({ where: { tenantId: tenant.id, action: 'identity.apikey.updated', entityId: created.id }, order: [['id', 'ASC']] });
    expect(events.map((e) => [(e.before as { name: string }).name, (e.after as { name: string; expiresAt: string | null }).expiresAt])).toEqual([['ci', soon], ['ci (2027)', null]]);

    const row = async () => { const k = (await ApiKey.findByPk(created.id))!; return [k.name, k.expiresAt, k.revokedAt]; };
    const before = await row();
    for (const body of [{}, { name: '' }, { name: 'x'.repeat(201) }, { expiresAt: 'tomorrow' }, { scopes: ['*'] }, { userId: randomUUID() }]) {
      expect([body, (await app.call('patch', `/v1/api-keys/${created.id}`, admin).send(body).expect(400)).body.code]).toEqual([body, 'VALIDATION_FAILED']);
    }
    expect((await app.call('patch', `/v1/api-keys/${created.id}`, admin).send({ expiresAt: new Date(Date.now() - 60_000).toISOString() }).expect(422)).body.code).toBe('INVALID_RANGE');
    await app.call('patch', `/v1/api-keys/${randomUUID()}`, admin).send({ name: 'x' }).expect(404);
    expect(await row()).toEqual(before);
    await app.call('delete', `/v1/api-keys/${created.id}`, admin).expect(200);
    expect((await app.call('patch', `/v1/api-keys/${created.id}`, admin).send({ name: 'back' }).expect(409)).body.code).toBe('API_KEY_REVOKED');
    expect((await ApiKey.findByPk(created.id))!.name).toBe('ci (2027)');
  });

  it('revokes under the tenant\'s identity lock, as demotions do: a users import\'s merge chunk holding it finishes first', async () => {
    const { key: admin, tenant } = await buildCaller(['*']);
    const created = await app.call('post', '/v1/api-keys', admin).send({ name: 'importer' }).expect(201);
    const chunk = await app.sequelize.transaction();
    let revoked = false;
    try {
      await app.sequelize.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', { bind: [IDENTITY_LOCK_CLASS, tenant.id], transaction: chunk });
      const revoking = app.call('delete', `/v1/api-keys/${created.body.id}`, admin).expect(200).then(() => { revoked = true; });
      await new Promise((r) => setTimeout(r, 500));
      expect(revoked).toBe(false);
      expect((await ApiKey.findByPk(created.body.id))!.revokedAt).toBeNull();
      await chunk.commit();
      await revoking;
    } finally {
      if (!revoked) await chunk.rollback().catch(() => undefined);
    }
    expect((await ApiKey.findByPk(created.body.id))!.revokedAt).not.toBeNull();
  });

  it('refuses to grant scopes the caller does not hold: 403 PERMISSION_ESCALATION', async () => {
    const { key } = await buildCaller(['identity.apikeys.manage', 'files.read']);
    const res = await app.call('post', '/v1/api-keys', key).send({ name: 'sneaky', scopes: ['files.read', 'audit.export'] }).expect(403);
    expect(res.body).toMatchObject({ code: 'PERMISSION_ESCALATION', permission: 'audit.export' });
  });

  it('refuses an expiry in the past and an unknown owner with 422', async () => {
    const { key } = await buildCaller(['*']);
    expect((await app.call('post', '/v1/api-keys', key).send({ name: 'old', expiresAt: '2001-01-01T00:00:00Z' }).expect(422)).body.code).toBe('INVALID_RANGE');
    const other = await buildCaller(['*']);
    expect((await app.call('post', '/v1/api-keys', key).send({ name: 'x', userId: other.user.id }).expect(422)).body.code).toBe('UNKNOWN_USER');
  });

  it('expires a key at its expiry time', async () => {
    const { key: admin } = await buildCaller(['*']);
    const created = await app.call('post', '/v1/api-keys', admin).send({ name: 'short', expiresAt: new Date(Date.now() + 2000).toISOString() }).expect(201);
    const expiresAt = Date.parse(created.body.expiresAt);
    // Poll until the key stops working: it works up to its expiry and is refused from then on.
    const answers: { askedAt: number; answeredAt: number; status: number; code?: string }[] = [];
    await waitFor(async () => {
      const askedAt = Date.now();
      const res = await app.call('get', '/v1/me', created.body.secret);
      answers.push({ askedAt, answeredAt: Date.now(), status: res.status, code: res.body.code });
      return res.status !== 200;
    }, { what: 'the key to expire', intervalMs: 50, timeoutMs: 10_000 });
    const refused = answers.pop()!;
    expect(refused).toMatchObject({ status: 401, code: 'CREDENTIALS_EXPIRED' });
    expect(refused.answeredAt).toBeGreaterThanOrEqual(expiresAt);
    expect(refused.askedAt - expiresAt).toBeLessThan(1000);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((x) => x.status === 200 && x.askedAt < expiresAt)).toBe(true);
  });
});

describe('JWT bearer tokens from a JWKS endpoint', () => {
  it('accepts an RS256 token signed by a key the JWKS publishes for this API\'s audience; refuses one signed by another key, and one for another audience', async () => {
    const http = await import('node:http');
    const { exportJWK, generateKeyPair } = await import('jose');
    const trusted = await generateKeyPair('RS256');
    const stranger = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(trusted.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const jwks = http.createServer((_req, res) => { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify({ keys: [jwk] })); });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const port = (jwks.address() as { port: number }).port;
    const withJwks = await startTestApp({ JWT_SECRET: '', JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`, JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'https://docket.example' });
    try {
      const { user, tenant } = await buildCaller(['files.read']);
      const sign = (key: Parameters<SignJWT['sign']>[0], audience = 'https://docket.example') => new SignJWT({ sub: user.id, tid: tenant.id })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer('https://idp.example').setAudience(audience).setExpirationTime('5m').sign(key);
      const good = await withJwks.call('get', '/v1/me').set('Authorization', `Bearer ${await sign(trusted.privateKey)}`).expect(200);
      expect(good.body.user.id).toBe(user.id);
      await withJwks.call('get', '/v1/me').set('Authorization', `Bearer ${await sign(stranger.privateKey)}`).expect(401);
      // The same provider's token for another application it serves: signed by the trusted key, for another audience.
      await withJwks.call('get', '/v1/me').set('Authorization', `Bearer ${await sign(trusted.privateKey, 'https://crm.example')}`).expect(401);
    } finally {
      await withJwks.close();
      jwks.close();
    }
  });
});

describe('the last admin', () => {
  /** A tenant whose admins (role `admin` = '*') are the given users, each with a key. */
  async function adminsOf(n: number, extra: { inactiveAdmin?: boolean } = {}) {
    const tenant = await buildTenant();
    const role = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'admin', title: 'Admin', permissions: ['*'] });
    const admins: { user: User; key: string }[] = [];
    for (let i = 0; i < n + (extra.inactiveAdmin ? 1 : 0); i++) {
      const user = await buildUser(tenant, { active: i < n });
      await UserRole.create({ userId: user.id, roleId: role.id, tenantId: tenant.id });
      admins.push({ user, key: await buildApiKey(user) });
    }
    return { tenant, admins: admins.slice(0, n) };
  }

  const state = async (tenantId: string) => ({
    users: (await User.findAll({ where: { tenantId }, include: [{ model: Role, as: 'roles' }], order: [['id', 'ASC']] })).map((u) => [u.id, u.active, u.version, (u.roles ?? []).map((r) => r.key)]),
    roles: (await Role.findAll({ where: { tenantId }, order: [['key', 'ASC']] })).map((r) => [r.key, r.permissions, r.version]),
    audit: await AuditEvent.count({ where: { tenantId } }),
  });

  it('cannot be deactivated, stripped of its roles, nor lose * from its role or the role itself: 409 LAST_ADMIN, nothing written', async () => {
    // An inactive user holding the admin role does not count.
    const { tenant, admins: [a] } = await adminsOf(1, { inactiveAdmin: true });
    const before = await state(tenant.id);
    for (const req of [
      app.call('patch', `/v1/users/${a.user.id}`, a.key).send({ active: false }),
      app.call('patch', `/v1/users/${a.user.id}`, a.key).send({ roles: [] }),
      app.call('patch', '/v1/roles/admin', a.key).send({ permissions: ['identity.*'] }),
      app.call('delete', '/v1/roles/admin', a.key),
    ]) {
      const res = await req.expect(409);
      expect(res.body.code).toBe('LAST_ADMIN');
    }
    expect(await state(tenant.id)).toEqual(before);
    // Renaming is fine, and so is demoting once someone else holds '*' through another role.
    await app.call('patch', `/v1/users/${a.user.id}`, a.key).send({ name: 'Still admin' }).expect(200);
    await app.call('post', '/v1/roles', a.key).send({ key: 'root', title: 'Root', permissions: ['*'] }).expect(201);
    const b = await app.call('post', '/v1/users', a.key).send({ email: `b-${randomUUID().slice(0, 8)}@example.com`, name: 'B', roles: ['root'] }).expect(201);
    await app.call('patch', '/v1/roles/admin', a.key).send({ permissions: ['identity.*'] }).expect(200);
    await app.call('patch', `/v1/users/${b.body.id}`).set('X-API-Key', await buildApiKey((await User.findByPk(b.body.id))!)).send({ active: false }).expect(409);
  });

  it('holds under concurrency: two admins deactivating each other at once, exactly one wins', async () => {
    for (let round = 0; round < 6; round++) {
      const { tenant, admins: [a, b] } = await adminsOf(2);
      const results = await Promise.all([
        app.call('patch', `/v1/users/${b.user.id}`, a.key).send({ active: false }),
        app.call('patch', `/v1/users/${a.user.id}`, b.key).send({ active: false }),
      ]);
      expect([round, results.map((r) => r.status).sort()]).toEqual([round, [200, 409]]);
      expect(results.find((r) => r.status === 409)!.body.code).toBe('LAST_ADMIN');
      expect(await User.count({ where: { tenantId: tenant.id, active: true } })).toBe(1);
    }
  });
});

describe('JWT claims', () => {
  const sign = (claims: Record<string, unknown>, opts: { exp?: boolean } = {}) => {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setAudience('docket');
    if (opts.exp !== false) jwt.setExpirationTime('5m');
    return jwt.sign(new TextEncoder().encode(JWT_SECRET));
  };
  const me = (token: string) => app.call('get', '/v1/me').set('Authorization', `Bearer ${token}`);

  it('honours a scope given as an array', async () => {
    const { user, tenant } = await buildCaller(['audit.read', 'files.read']);
    const token = await sign({ sub: user.id, tid: tenant.id, scope: ['files.read'] });
    expect((await me(token).expect(200)).body.permissions).toEqual(['files.read']);
    await app.call('get', '/v1/audit-events').set('Authorization', `Bearer ${token}`).expect(403);
  });

  it('refuses a scope of any other shape instead of ignoring it', async () => {
    const { user, tenant } = await buildCaller(['*']);
    for (const scope of [7, { files: 'read' }, ['files.read', 3], null]) {
      const res = await me(await sign({ sub: user.id, tid: tenant.id, scope })).expect(401);
      expect([scope, res.body.code]).toEqual([scope, 'INVALID_CREDENTIALS']);
    }
  });

  it('refuses a token without exp', async () => {
    const { user, tenant } = await buildCaller(['*']);
    const res = await me(await sign({ sub: user.id, tid: tenant.id }, { exp: false })).expect(401);
    expect(res.body).toMatchObject({ code: 'INVALID_CREDENTIALS', detail: expect.stringContaining('exp') });
  });

  it('accepts tokens only for the tenants in JWT_TENANTS (by id or slug)', async () => {
    const a = await buildCaller(['*']);
    const b = await buildCaller(['*']);
    const c = await buildCaller(['*']);
    const restricted = await startTestApp({ JWT_SECRET, JWT_AUDIENCE: 'docket', JWT_TENANTS: `${a.tenant.slug},${b.tenant.id}` });
    try {
      const [ta, tb, tc] = await Promise.all([a, b, c].map((x) => sign({ sub: x.user.id, tid: x.tenant.id })));
      const call = (token: string) => restricted.call('get', '/v1/me').set('Authorization', `Bearer ${token}`);
      await call(ta).expect(200);
      await call(tb).expect(200);
      expect((await call(tc).expect(401)).body.code).toBe('INVALID_CREDENTIALS');
      // API keys are not JWTs: the list does not touch them.
      await restricted.call('get', '/v1/me', c.key).expect(200);
    } finally {
      await restricted.close();
    }
  });
});

describe('one credential per request', () => {
  it('refuses a bad credential beside a good one, and two different good ones; accepts the same key twice', async () => {
    const { key, user, tenant } = await buildCaller(['*']);
    const other = await buildApiKey(user);
    const token = await new SignJWT({ sub: user.id, tid: tenant.id }).setProtectedHeader({ alg: 'HS256' }).setAudience('docket').setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));
    const bad = 'dk_000000000000_' + 'A'.repeat(43);
    const cases: [string, Record<string, string>][] = [
      ['valid key, invalid bearer', { 'X-API-Key': key, Authorization: `Bearer ${bad}` }],
      ['invalid key, valid bearer', { 'X-API-Key': bad, Authorization: `Bearer ${key}` }],
      ['valid key, invalid JWT', { 'X-API-Key': key, Authorization: 'Bearer not.a.jwt' }],
      ['two valid keys', { 'X-API-Key': key, Authorization: `Bearer ${other}` }],
      ['valid key, valid JWT', { 'X-API-Key': key, Authorization: `Bearer ${token}` }],
      ['valid key, Basic authorization', { 'X-API-Key': key, Authorization: 'Basic dXNlcjpwYXNz' }],
      ['empty key, valid bearer', { 'X-API-Key': '', Authorization: `Bearer ${key}` }],
    ];
    for (const [name, headers] of cases) {
      const res = await app.call('get', '/v1/me').set(headers).expect(401);
      expect([name, res.body.code]).toEqual([name, 'INVALID_CREDENTIALS']);
    }
    await app.call('get', '/v1/me').set({ 'X-API-Key': key, Authorization: `Bearer ${key}` }).expect(200);
  });
});

describe('GET /v1/me shows effective permissions', () => {
  it('a key scoped files.* on a user holding files.read lists files.read; a key scoped * lists the roles\' permissions', async () => {
    const tenant = await buildTenant();
    const reader = await buildUser(tenant, { permissions: ['files.read'] });
    expect((await app.call('get', '/v1/me', await buildApiKey(reader, { scopes: ['files.*'] })).expect(200)).body.permissions).toEqual(['files.read']);
    const auditor = await buildUser(tenant, { permissions: ['audit.read', 'files.write'] });
    expect((await app.call('get', '/v1/me', await buildApiKey(auditor, { scopes: ['*'] })).expect(200)).body.permissions).toEqual(['audit.read', 'files.write']);
  });
});
