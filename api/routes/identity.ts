// Identity: the caller, the permission catalogue, users, roles and API keys of a tenant.
//
// Nobody grants what they do not hold: a role, a user's roles or a key's scopes may only carry permissions
// the calling credential holds itself (its scopes included), and a user, role or key that can do something
// the caller cannot is not the caller's to change. The last user holding '*' in a tenant stays.
import { randomUUID } from 'node:crypto';
import { QueryTypes, Transaction } from 'sequelize';
import { ApiKey, Role, User, UserRole } from '../../db/models/identity';
import { recordAudit } from '../../lib/audit';
import { AuthContext } from '../auth';
import { generateApiKey } from '../../domains/identity/keys';
import { checkIfMatch, page, paginate, respond, versionEtag } from '../conventions';
import { ApiError, notFound } from '../errors';
import { grants, PermissionSet } from '../../domains/identity/permissions';
import { presentApiKey, presentRole, presentTenant, presentUser } from '../../domains/identity/presenters';
import { auditContext, caller, RouteDeps, RouteHandlers } from '../types';


const roleInclude = [{ model: Role, as: 'roles', through: { attributes: [] } }];

/** Keys of pg_advisory_xact_lock(class, hashtext(tenant)): one identity change per tenant at a time. */
const IDENTITY_LOCK_CLASS = 727_275;
export const MANAGE_OTHERS_KEYS = 'identity.apikeys.manage_others';

const permissionsOf = (roles: readonly Role[]): string[] => roles.flatMap((r) => r.permissions);

/** 403 unless the caller holds every one of `perms`; `why` says whose they are. */
function refuseBeyond(a: AuthContext, perms: Iterable<string>, why: (beyond: string) => string): void {
  const beyond = a.permissions.missing(perms);
  if (beyond.length) throw new ApiError(403, 'PERMISSION_ESCALATION', why(beyond.join(', ')), { permission: beyond[0] });
}

const cannotGrant = (beyond: string) => `You cannot grant what you do not hold: ${beyond}`;

export function identityRoutes(deps: RouteDeps) {
  const known = deps.contract.permissions.map((p) => p.name);

  /** A permission must name a catalogue entry, or be a wildcard that covers at least one. */
  function assertKnownPermissions(perms: string[]): void {
    const unknown = perms.filter((p) => !known.includes(p) && !known.some((k) => grants([p], k)));
    if (unknown.length) throw new ApiError(422, 'UNKNOWN_PERMISSION', `Not in the permission catalogue: ${unknown.join(', ')} (see GET /v1/permissions)`);
  }

  async function rolesByKey(tenantId: string, keys: string[]): Promise<Role[]> {
    const roles = await Role.findAll({ where: { tenantId, key: keys } });
    const missing = keys.filter((k) => !roles.some((r) => r.key === k));
    if (missing.length) throw new ApiError(422, 'UNKNOWN_ROLE', `No such role: ${missing.join(', ')}`);
    return roles;
  }

  async function findUser(tenantId: string, id: string): Promise<User> {
    const user = await User.findOne({ where: { id, tenantId }, include: roleInclude });
    if (!user) throw notFound(`User ${id}`);
    return user;
  }

  /**
   * Serialises the changes that can take '*' away inside one tenant, so two admins demoting each other at
   * the same moment cannot both see the other one still holding it.
   */
  async function lockTenantIdentity(tenantId: string, transaction: Transaction): Promise<void> {
    await deps.sequelize.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', { bind: [IDENTITY_LOCK_CLASS, tenantId], transaction });
  }

  /** Active users holding '*' through a role (other than `withoutRoleId`, for a role about to go). */
  async function countAdmins(tenantId: string, transaction: Transaction, withoutRoleId?: string): Promise<number> {
    const [row] = await deps.sequelize.query<{ n: number }>(
      `SELECT count(DISTINCT u.id)::int AS n FROM users u
         JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
        WHERE u.tenant_id = $1 AND u.active AND r.permissions @> '["*"]'::jsonb AND r.id IS DISTINCT FROM $2`,
      { bind: [tenantId, withoutRoleId ?? null], type: QueryTypes.SELECT, transaction },
    );
    return row.n;
  }

  function refuseLastAdmin(before: number, after: number): void {
    if (before > 0 && after === 0) {
      throw new ApiError(409, 'LAST_ADMIN', "This would leave the tenant without an active user holding '*'; give '*' to someone else first");
    }
  }

  async function findRole(tenantId: string, key: string): Promise<Role> {
    const role = await Role.findOne({ where: { tenantId, key } });
    if (!role) throw notFound(`Role ${key}`);
    return role;
  }

  return {
    async getMe(_input, ctx) {
      const a = caller(ctx);
      ctx.body = {
        user: { id: a.user.id, email: a.user.email, name: a.user.name },
        tenant: presentTenant(a.tenant),
        roles: a.roles,
        permissions: a.permissions.list(),
        auth: { method: a.method, ...(a.apiKeyId ? { apiKeyId: a.apiKeyId } : {}), expiresAt: a.expiresAt ? a.expiresAt.toISOString() : null },
      };
    },

    async checkMyPermissions({ body }, ctx) {
      const { permissions } = body;
      const a = caller(ctx);
      const results = Object.fromEntries(permissions.map((p) => [p, a.permissions.has(p)]));
      ctx.body = { all: Object.values(results).every(Boolean), results };
    },

    async listPermissions(_input, ctx) {
      ctx.body = { items: deps.contract.permissions };
    },

    async getTenant(_input, ctx) {
      ctx.body = presentTenant(caller(ctx).tenant);
    },

    async listUsers({ query }, ctx) {
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (query.active !== undefined) where.active = query.active;
      const result = await paginate(User, { where, limit: query.limit, cursor: query.cursor, include: roleInclude });
      ctx.body = page(result, presentUser);
    },

    async createUser({ body }, ctx) {
      const audit = auditContext(ctx);
      const user = await deps.sequelize.transaction(async (transaction) => {
        const roles = await rolesByKey(audit.tenantId, body.roles ?? []);
        refuseBeyond(caller(ctx), permissionsOf(roles), cannotGrant);
        const exists = await User.count({ where: { tenantId: audit.tenantId, email: body.email.toLowerCase() }, transaction });
        if (exists) throw new ApiError(409, 'ALREADY_EXISTS', `A user with email ${body.email} exists already`);
        const created = await User.create({ id: randomUUID(), tenantId: audit.tenantId, email: body.email.toLowerCase(), name: body.name }, { transaction });
        await UserRole.bulkCreate(roles.map((r) => ({ userId: created.id, roleId: r.id, tenantId: audit.tenantId })), { transaction });
        created.roles = roles;
        await recordAudit({ ...audit, action: 'identity.user.created', entityType: 'user', entityId: created.id, after: presentUser(created) }, transaction);
        return created;
      });
      respond(ctx, presentUser(user), { status: 201, location: `/v1/users/${user.id}`, etag: versionEtag(user.version) });
    },

    async getUser({ params }, ctx) {
      const user = await findUser(caller(ctx).tenant.id, params.userId);
      respond(ctx, presentUser(user), { etag: versionEtag(user.version) });
    },

    async updateUser({ params, body }, ctx) {
      const a = caller(ctx);
      const audit = auditContext(ctx);
      const user = await deps.sequelize.transaction(async (transaction) => {
        await lockTenantIdentity(audit.tenantId, transaction);
        const found = await User.findOne({ where: { id: params.userId, tenantId: audit.tenantId }, include: roleInclude, transaction, lock: { level: transaction.LOCK.UPDATE, of: User } });
        if (!found) throw notFound(`User ${params.userId}`);
        checkIfMatch(ctx, versionEtag(found.version));
        refuseBeyond(a, permissionsOf(found.roles ?? []), (beyond) => `User ${found.id} holds ${beyond}, which you do not hold: only someone who holds all of it may change this user`);
        const roles = body.roles === undefined ? undefined : await rolesByKey(audit.tenantId, body.roles);
        if (roles) refuseBeyond(a, permissionsOf(roles), cannotGrant);
        const adminsBefore = await countAdmins(audit.tenantId, transaction);
        const before = presentUser(found);
        if (body.name !== undefined) found.name = body.name;
        if (body.active !== undefined) found.active = body.active;
        if (roles) {
          await UserRole.destroy({ where: { userId: found.id }, transaction });
          await UserRole.bulkCreate(roles.map((r) => ({ userId: found.id, roleId: r.id, tenantId: audit.tenantId })), { transaction });
          found.roles = roles;
          found.changed('updatedAt', true);
        }
        await found.save({ transaction });
        refuseLastAdmin(adminsBefore, await countAdmins(audit.tenantId, transaction));
        await recordAudit({ ...audit, action: 'identity.user.updated', entityType: 'user', entityId: found.id, before, after: presentUser(found) }, transaction);
        return found;
      });
      deps.authenticator.forget();
      respond(ctx, presentUser(user), { etag: versionEtag(user.version) });
    },

    async listRoles({ query }, ctx) {
      const result = await paginate(Role, { where: { tenantId: caller(ctx).tenant.id }, limit: query.limit, cursor: query.cursor, order: [['key', 'ASC']] });
      ctx.body = page(result, presentRole);
    },

    async createRole({ body }, ctx) {
      assertKnownPermissions(body.permissions);
      refuseBeyond(caller(ctx), body.permissions, cannotGrant);
      const audit = auditContext(ctx);
      const role = await deps.sequelize.transaction(async (transaction) => {
        if (await Role.count({ where: { tenantId: audit.tenantId, key: body.key }, transaction })) {
          throw new ApiError(409, 'ALREADY_EXISTS', `Role ${body.key} exists already`);
        }
        const created = await Role.create({ id: randomUUID(), tenantId: audit.tenantId, key: body.key, title: body.title, permissions: [...new Set(body.permissions)] }, { transaction });
        await recordAudit({ ...audit, action: 'identity.role.created', entityType: 'role', entityId: created.key, after: presentRole(created) }, transaction);
        return created;
      });
      respond(ctx, presentRole(role), { status: 201, location: `/v1/roles/${role.key}`, etag: versionEtag(role.version) });
    },

    async getRole({ params }, ctx) {
      const role = await findRole(caller(ctx).tenant.id, params.roleKey);
      respond(ctx, presentRole(role), { etag: versionEtag(role.version) });
    },

    async updateRole({ params, body }, ctx) {
      const a = caller(ctx);
      if (body.permissions) assertKnownPermissions(body.permissions);
      const audit = auditContext(ctx);
      const role = await deps.sequelize.transaction(async (transaction) => {
        await lockTenantIdentity(audit.tenantId, transaction);
        const found = await Role.findOne({ where: { tenantId: audit.tenantId, key: params.roleKey }, transaction, lock: transaction.LOCK.UPDATE });
        if (!found) throw notFound(`Role ${params.roleKey}`);
        checkIfMatch(ctx, versionEtag(found.version));
        refuseBeyond(a, found.permissions, (beyond) => `Role ${found.key} grants ${beyond}, which you do not hold: only someone who holds all of it may change this role`);
        if (body.permissions) refuseBeyond(a, body.permissions, cannotGrant);
        const adminsBefore = await countAdmins(audit.tenantId, transaction);
        const before = presentRole(found);
        if (body.title !== undefined) found.title = body.title;
        if (body.permissions !== undefined) found.permissions = [...new Set(body.permissions)];
        await found.save({ transaction });
        refuseLastAdmin(adminsBefore, await countAdmins(audit.tenantId, transaction));
        await recordAudit({ ...audit, action: 'identity.role.updated', entityType: 'role', entityId: found.key, before, after: presentRole(found) }, transaction);
        return found;
      });
      deps.authenticator.forget(); // permissions of every holder changed
      respond(ctx, presentRole(role), { etag: versionEtag(role.version) });
    },

    async deleteRole({ params }, ctx) {
      const a = caller(ctx);
      const audit = auditContext(ctx);
      await deps.sequelize.transaction(async (transaction) => {
        await lockTenantIdentity(audit.tenantId, transaction);
        const role = await Role.findOne({ where: { tenantId: audit.tenantId, key: params.roleKey }, transaction, lock: transaction.LOCK.UPDATE });
        if (!role) throw notFound(`Role ${params.roleKey}`);
        refuseBeyond(a, role.permissions, (beyond) => `Role ${role.key} grants ${beyond}, which you do not hold: only someone who holds all of it may delete this role`);
        // Checked before the holders: "the last admin's role" says more than "a role someone holds".
        refuseLastAdmin(await countAdmins(audit.tenantId, transaction), await countAdmins(audit.tenantId, transaction, role.id));
        const holders = await UserRole.count({ where: { roleId: role.id }, transaction });
        if (holders) throw new ApiError(409, 'DEPENDENCY_EXISTS', `Role ${role.key} is held by ${holders} user(s); take it from them first`, { count: holders });
        await role.destroy({ transaction });
        await recordAudit({ ...audit, action: 'identity.role.deleted', entityType: 'role', entityId: role.key, before: presentRole(role) }, transaction);
      });
      ctx.status = 204;
    },

    async listApiKeys({ query }, ctx) {
      const result = await paginate(ApiKey, { where: { tenantId: caller(ctx).tenant.id }, limit: query.limit, cursor: query.cursor });
      ctx.body = page(result, presentApiKey);
    },

    async createApiKey({ body }, ctx) {
      const a = caller(ctx);
      const audit = auditContext(ctx);
      const ownerId = body.userId ?? a.user.id;
      const forOther = ownerId !== a.user.id;
      if (forOther && !a.permissions.has(MANAGE_OTHERS_KEYS)) {
        throw new ApiError(403, 'PERMISSION_DENIED', `A key for another user needs the permission '${MANAGE_OTHERS_KEYS}'`, { permission: MANAGE_OTHERS_KEYS });
      }
      if (body.scopes) {
        assertKnownPermissions(body.scopes);
        refuseBeyond(a, body.scopes, cannotGrant);
      }
      // Never wider than the calling credential: without scopes, a key made with a scoped key or token (or
      // for someone else) gets the caller's effective permissions as its scopes. Only a key an unscoped
      // caller makes for itself follows its roles (it can never do more than its maker).
      const scopes = body.scopes ?? (forOther || a.permissions.scopes !== null ? a.permissions.list() : null);
      if (body.expiresAt && new Date(body.expiresAt) <= new Date()) {
        throw new ApiError(422, 'INVALID_RANGE', 'expiresAt must be in the future');
      }
      if (!(await User.count({ where: { id: ownerId, tenantId: audit.tenantId, active: true } }))) {
        throw new ApiError(422, 'UNKNOWN_USER', `No active user ${ownerId} in this tenant`);
      }
      const { prefix, secret, secretHash } = generateApiKey();
      const key = await deps.sequelize.transaction(async (transaction) => {
        const created = await ApiKey.create({
          id: randomUUID(), tenantId: audit.tenantId, userId: ownerId, name: body.name, prefix, secretHash,
          scopes: scopes ? [...new Set(scopes)] : null, expiresAt: body.expiresAt ? new Date(body.expiresAt) : null,
        }, { transaction });
        // The key's userId names whom it acts as; a key for someone else has its own action to search for.
        const action = forOther ? 'identity.apikey.created_for_user' : 'identity.apikey.created';
        await recordAudit({ ...audit, action, entityType: 'api_key', entityId: created.id, after: presentApiKey(created) }, transaction);
        return created;
      });
      respond(ctx, { ...presentApiKey(key), secret }, { status: 201, location: `/v1/api-keys/${key.id}` });
    },

    async getApiKey({ params }, ctx) {
      const key = await ApiKey.findOne({ where: { id: params.apiKeyId, tenantId: caller(ctx).tenant.id } });
      if (!key) throw notFound(`API key ${params.apiKeyId}`);
      ctx.body = presentApiKey(key);
    },

    async revokeApiKey({ params }, ctx) {
      const a = caller(ctx);
      const audit = auditContext(ctx);
      const key = await deps.sequelize.transaction(async (transaction) => {
        const found = await ApiKey.findOne({ where: { id: params.apiKeyId, tenantId: audit.tenantId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!found) throw notFound(`API key ${params.apiKeyId}`);
        const owner = await User.findOne({ where: { id: found.userId, tenantId: audit.tenantId }, include: roleInclude, transaction });
        const canDo = new PermissionSet(permissionsOf(owner?.roles ?? []), found.scopes).list();
        refuseBeyond(a, canDo, (beyond) => `This key can do ${beyond}, which you do not hold: only someone who holds all of it may revoke it`);
        if (found.revokedAt) return found; // revoking twice changes nothing
        const before = presentApiKey(found);
        found.revokedAt = new Date();
        await found.save({ transaction });
        await recordAudit({ ...audit, action: 'identity.apikey.revoked', entityType: 'api_key', entityId: found.id, before, after: presentApiKey(found) }, transaction);
        return found;
      });
      deps.authenticator.forget();
      ctx.body = presentApiKey(key);
    },
  } satisfies RouteHandlers;
}
