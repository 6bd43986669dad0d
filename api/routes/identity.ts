// Identity: the caller, the permission catalogue, users, roles and API keys of a tenant.
import { randomUUID } from 'node:crypto';
import { ApiKey, Role, User, UserRole } from '../../db';
import { recordAudit } from '../../lib/audit';
import { generateApiKey } from '../auth';
import { checkIfMatch, page, paginate, queryOf, respond, versionEtag } from '../conventions';
import { ApiError, notFound } from '../errors';
import { grants } from '../permissions';
import { presentApiKey, presentRole, presentTenant, presentUser } from '../presenters';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';


const roleInclude = [{ model: Role, as: 'roles', through: { attributes: [] } }];

export function identityRoutes(deps: RouteDeps): Handlers {
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

  async function findRole(tenantId: string, key: string): Promise<Role> {
    const role = await Role.findOne({ where: { tenantId, key } });
    if (!role) throw notFound(`Role ${key}`);
    return role;
  }

  return {
    async getMe(_c, ctx) {
      const a = caller(ctx);
      ctx.body = {
        user: { id: a.user.id, email: a.user.email, name: a.user.name },
        tenant: presentTenant(a.tenant),
        roles: a.roles,
        permissions: a.permissions.list(),
        auth: { method: a.method, ...(a.apiKeyId ? { apiKeyId: a.apiKeyId } : {}), expiresAt: a.expiresAt ? a.expiresAt.toISOString() : null },
      };
    },

    async checkMyPermissions(c, ctx) {
      const { permissions } = c.request.requestBody as { permissions: Schemas['PermissionName'][] };
      const a = caller(ctx);
      const results = Object.fromEntries(permissions.map((p) => [p, a.permissions.has(p)]));
      ctx.body = { all: Object.values(results).every(Boolean), results };
    },

    async listPermissions(_c, ctx) {
      ctx.body = { items: deps.contract.permissions };
    },

    async getTenant(_c, ctx) {
      ctx.body = presentTenant(caller(ctx).tenant);
    },

    async listUsers(c, ctx) {
      const q = queryOf(c);
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (q.bool('active') !== undefined) where.active = q.bool('active');
      const result = await paginate(User, { where, limit: q.int('limit'), cursor: q.str('cursor'), include: roleInclude });
      ctx.body = page(result, presentUser);
    },

    async createUser(c, ctx) {
      const body = c.request.requestBody as Schemas['UserCreate'];
      const audit = auditContext(ctx);
      const user = await deps.sequelize.transaction(async (transaction) => {
        const roles = await rolesByKey(audit.tenantId, body.roles ?? []);
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

    async getUser(c, ctx) {
      const user = await findUser(caller(ctx).tenant.id, c.request.params.userId as string);
      respond(ctx, presentUser(user), { etag: versionEtag(user.version) });
    },

    async updateUser(c, ctx) {
      const body = c.request.requestBody as Schemas['UserUpdate'];
      const audit = auditContext(ctx);
      const user = await deps.sequelize.transaction(async (transaction) => {
        const found = await User.findOne({ where: { id: c.request.params.userId as string, tenantId: audit.tenantId }, include: roleInclude, transaction, lock: { level: transaction.LOCK.UPDATE, of: User } });
        if (!found) throw notFound(`User ${c.request.params.userId}`);
        checkIfMatch(ctx, versionEtag(found.version));
        const before = presentUser(found);
        if (body.name !== undefined) found.name = body.name;
        if (body.active !== undefined) found.active = body.active;
        if (body.roles !== undefined) {
          const roles = await rolesByKey(audit.tenantId, body.roles);
          await UserRole.destroy({ where: { userId: found.id }, transaction });
          await UserRole.bulkCreate(roles.map((r) => ({ userId: found.id, roleId: r.id, tenantId: audit.tenantId })), { transaction });
          found.roles = roles;
          found.changed('updatedAt', true);
        }
        await found.save({ transaction });
        await recordAudit({ ...audit, action: 'identity.user.updated', entityType: 'user', entityId: found.id, before, after: presentUser(found) }, transaction);
        return found;
      });
      deps.authenticator.forget();
      respond(ctx, presentUser(user), { etag: versionEtag(user.version) });
    },

    async listRoles(c, ctx) {
      const q = queryOf(c);
      const result = await paginate(Role, { where: { tenantId: caller(ctx).tenant.id }, limit: q.int('limit'), cursor: q.str('cursor'), order: [['key', 'ASC']] });
      ctx.body = page(result, presentRole);
    },

    async createRole(c, ctx) {
      const body = c.request.requestBody as Schemas['RoleCreate'];
      assertKnownPermissions(body.permissions);
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

    async getRole(c, ctx) {
      const role = await findRole(caller(ctx).tenant.id, c.request.params.roleKey as string);
      respond(ctx, presentRole(role), { etag: versionEtag(role.version) });
    },

    async updateRole(c, ctx) {
      const body = c.request.requestBody as Schemas['RoleUpdate'];
      if (body.permissions) assertKnownPermissions(body.permissions);
      const audit = auditContext(ctx);
      const role = await deps.sequelize.transaction(async (transaction) => {
        const found = await Role.findOne({ where: { tenantId: audit.tenantId, key: c.request.params.roleKey as string }, transaction, lock: transaction.LOCK.UPDATE });
        if (!found) throw notFound(`Role ${c.request.params.roleKey}`);
        checkIfMatch(ctx, versionEtag(found.version));
        const before = presentRole(found);
        if (body.title !== undefined) found.title = body.title;
        if (body.permissions !== undefined) found.permissions = [...new Set(body.permissions)];
        await found.save({ transaction });
        await recordAudit({ ...audit, action: 'identity.role.updated', entityType: 'role', entityId: found.key, before, after: presentRole(found) }, transaction);
        return found;
      });
      deps.authenticator.forget(); // permissions of every holder changed
      respond(ctx, presentRole(role), { etag: versionEtag(role.version) });
    },

    async deleteRole(c, ctx) {
      const audit = auditContext(ctx);
      await deps.sequelize.transaction(async (transaction) => {
        const role = await Role.findOne({ where: { tenantId: audit.tenantId, key: c.request.params.roleKey as string }, transaction, lock: transaction.LOCK.UPDATE });
        if (!role) throw notFound(`Role ${c.request.params.roleKey}`);
        const holders = await UserRole.count({ where: { roleId: role.id }, transaction });
        if (holders) throw new ApiError(409, 'DEPENDENCY_EXISTS', `Role ${role.key} is held by ${holders} user(s); take it from them first`, { count: holders });
        await role.destroy({ transaction });
        await recordAudit({ ...audit, action: 'identity.role.deleted', entityType: 'role', entityId: role.key, before: presentRole(role) }, transaction);
      });
      ctx.status = 204;
    },

    async listApiKeys(c, ctx) {
      const q = queryOf(c);
      const result = await paginate(ApiKey, { where: { tenantId: caller(ctx).tenant.id }, limit: q.int('limit'), cursor: q.str('cursor') });
      ctx.body = page(result, presentApiKey);
    },

    async createApiKey(c, ctx) {
      const body = c.request.requestBody as Schemas['ApiKeyCreate'];
      const a = caller(ctx);
      const audit = auditContext(ctx);
      if (body.scopes) {
        assertKnownPermissions(body.scopes);
        const beyond = body.scopes.filter((s) => !a.permissions.has(s));
        if (beyond.length) throw new ApiError(403, 'PERMISSION_ESCALATION', `You cannot grant what you do not hold: ${beyond.join(', ')}`, { permission: beyond[0] });
      } else if (body.userId && body.userId !== a.user.id && !a.permissions.has('*')) {
        // An unscoped key carries all its owner's permissions; only a full admin may mint one for someone else.
        throw new ApiError(403, 'PERMISSION_ESCALATION', 'A key for another user needs explicit scopes you hold', { permission: '*' });
      }
      if (body.expiresAt && new Date(body.expiresAt) <= new Date()) {
        throw new ApiError(422, 'INVALID_RANGE', 'expiresAt must be in the future');
      }
      const ownerId = body.userId ?? a.user.id;
      if (!(await User.count({ where: { id: ownerId, tenantId: audit.tenantId, active: true } }))) {
        throw new ApiError(422, 'UNKNOWN_USER', `No active user ${ownerId} in this tenant`);
      }
      const { prefix, secret, secretHash } = generateApiKey();
      const key = await deps.sequelize.transaction(async (transaction) => {
        const created = await ApiKey.create({
          id: randomUUID(), tenantId: audit.tenantId, userId: ownerId, name: body.name, prefix, secretHash,
          scopes: body.scopes ?? null, expiresAt: body.expiresAt ? new Date(body.expiresAt) : null,
        }, { transaction });
        await recordAudit({ ...audit, action: 'identity.apikey.created', entityType: 'api_key', entityId: created.id, after: presentApiKey(created) }, transaction);
        return created;
      });
      respond(ctx, { ...presentApiKey(key), secret }, { status: 201, location: `/v1/api-keys/${key.id}` });
    },

    async getApiKey(c, ctx) {
      const key = await ApiKey.findOne({ where: { id: c.request.params.apiKeyId as string, tenantId: caller(ctx).tenant.id } });
      if (!key) throw notFound(`API key ${c.request.params.apiKeyId}`);
      ctx.body = presentApiKey(key);
    },

    async revokeApiKey(c, ctx) {
      const audit = auditContext(ctx);
      const key = await deps.sequelize.transaction(async (transaction) => {
        const found = await ApiKey.findOne({ where: { id: c.request.params.apiKeyId as string, tenantId: audit.tenantId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!found) throw notFound(`API key ${c.request.params.apiKeyId}`);
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
  };
}
