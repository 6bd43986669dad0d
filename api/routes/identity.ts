// Identity: the caller, the permission catalogue, users, roles and API keys of a tenant (what changes them
// is domains/identity/commands.ts).
import { Op } from 'sequelize';
import { ApiKey, Role, User } from '../../db/models/identity';
import {
  assertKnownPermissions, createApiKey, createRole, createUser, deleteRole, revokeApiKey, ROLE_INCLUDE, rotateApiKey, updateApiKey, updateMyPreferences, updateRole, updateUser,
} from '../../domains/identity/commands';
import { roleHolders } from '../../domains/identity/people';
import { presentApiKey, presentRole, presentTenant, presentUser } from '../../domains/identity/presenters';
import { findInTenant } from '../../lib/tenancy';
import { ifMatch, page, paginate, respond, versionEtag } from '../conventions';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

/** The caller as GET /v1/me answers it; `user` is passed separately so a change answers the row just written. */
function presentMe(a: ReturnType<typeof caller>, user: User) {
  return {
    user: { id: user.id, email: user.email, name: user.name, locale: user.locale ?? null, timeZone: user.timeZone ?? null },
    tenant: presentTenant(a.tenant),
    roles: a.roles,
    permissions: a.permissions.list(),
    auth: { method: a.method, ...(a.apiKeyId ? { apiKeyId: a.apiKeyId } : {}), expiresAt: a.expiresAt ? a.expiresAt.toISOString() : null },
  };
}

/**
 * GET /v1/me's body per cached credential: it is built from the credential alone, which the Authenticator
 * replaces (a new object) whenever it is looked up again or forgotten, so a stale body is never served.
 */
const meBodies = new WeakMap<ReturnType<typeof caller>, ReturnType<typeof presentMe>>();

export function identityRoutes(deps: RouteDeps) {
  const identity = { sequelize: deps.sequelize, permissionCatalogue: deps.contract.permissions.map((p) => p.name) };

  return {
    async getMe(_input, ctx) {
      const a = caller(ctx);
      let body = meBodies.get(a);
      if (!body) meBodies.set(a, (body = presentMe(a, a.user)));
      ctx.body = body;
    },

    async updateMyPreferences({ body }, ctx) {
      const a = caller(ctx);
      const user = await updateMyPreferences(identity, commandCaller(ctx), body);
      deps.authenticator.forget(); // the cached caller carries the old preferences
      ctx.body = presentMe(a, user);
    },

    async checkMyPermissions({ body }, ctx) {
      const a = caller(ctx);
      const results = Object.fromEntries(body.permissions.map((p) => [p, a.permissions.has(p)]));
      ctx.body = { all: Object.values(results).every(Boolean), results };
    },

    async listPermissions(_input, ctx) {
      ctx.body = { items: deps.contract.permissions };
    },

    async getTenant(_input, ctx) {
      ctx.body = presentTenant(caller(ctx).tenant);
    },

    async listUsers({ query }, ctx) {
      const tenantId = caller(ctx).tenant.id;
      const where: Record<string, unknown> = { tenantId };
      if (query.active !== undefined) where.active = query.active;
      if (query.permission !== undefined || query.role !== undefined) {
        if (query.permission !== undefined) assertKnownPermissions(identity.permissionCatalogue, [query.permission]);
        where.id = { [Op.in]: roleHolders(tenantId, { role: query.role, permission: query.permission }) };
      }
      ctx.body = page(await paginate(User, { where, limit: query.limit, cursor: query.cursor, include: ROLE_INCLUDE }), presentUser);
    },

    async createUser({ body }, ctx) {
      const user = await createUser(identity, commandCaller(ctx), body);
      respond(ctx, presentUser(user), { status: 201, location: `/v1/users/${user.id}`, etag: versionEtag(user.version) });
    },

    async getUser({ params }, ctx) {
      const user = await findInTenant(User, caller(ctx).tenant.id, params.userId, 'User', { include: ROLE_INCLUDE });
      respond(ctx, presentUser(user), { etag: versionEtag(user.version) });
    },

    async updateUser({ params, body }, ctx) {
      const user = await updateUser(identity, commandCaller(ctx), params.userId, body, ifMatch(ctx));
      deps.authenticator.forget();
      respond(ctx, presentUser(user), { etag: versionEtag(user.version) });
    },

    async listRoles({ query }, ctx) {
      const result = await paginate(Role, { where: { tenantId: caller(ctx).tenant.id }, limit: query.limit, cursor: query.cursor, order: [['key', 'ASC']] });
      ctx.body = page(result, presentRole);
    },

    async createRole({ body }, ctx) {
      const role = await createRole(identity, commandCaller(ctx), body);
      respond(ctx, presentRole(role), { status: 201, location: `/v1/roles/${role.key}`, etag: versionEtag(role.version) });
    },

    async getRole({ params }, ctx) {
      const role = await findInTenant(Role, caller(ctx).tenant.id, { key: params.roleKey }, `Role ${params.roleKey}`);
      respond(ctx, presentRole(role), { etag: versionEtag(role.version) });
    },

    async updateRole({ params, body }, ctx) {
      const role = await updateRole(identity, commandCaller(ctx), params.roleKey, body, ifMatch(ctx));
      deps.authenticator.forget(); // permissions of every holder changed
      respond(ctx, presentRole(role), { etag: versionEtag(role.version) });
    },

    async deleteRole({ params }, ctx) {
      await deleteRole(identity, commandCaller(ctx), params.roleKey);
      ctx.status = 204;
    },

    async listApiKeys({ query }, ctx) {
      ctx.body = page(await paginate(ApiKey, { where: { tenantId: caller(ctx).tenant.id }, limit: query.limit, cursor: query.cursor }), presentApiKey);
    },

    async createApiKey({ body }, ctx) {
      const { key, secret } = await createApiKey(identity, commandCaller(ctx), body);
      respond(ctx, { ...presentApiKey(key), secret }, { status: 201, location: `/v1/api-keys/${key.id}`, etag: versionEtag(key.version) });
    },

    async getApiKey({ params }, ctx) {
      const key = await findInTenant(ApiKey, caller(ctx).tenant.id, params.apiKeyId, 'API key');
      respond(ctx, presentApiKey(key), { etag: versionEtag(key.version) });
    },

    async updateApiKey({ params, body }, ctx) {
      const key = await updateApiKey(identity, commandCaller(ctx), params.apiKeyId, body, ifMatch(ctx));
      deps.authenticator.forget(); // a cached credential carries the old expiry
      respond(ctx, presentApiKey(key), { etag: versionEtag(key.version) });
    },

    async rotateApiKey({ params, body }, ctx) {
      const { key, secret } = await rotateApiKey(identity, commandCaller(ctx), params.apiKeyId, body ?? {}, ifMatch(ctx));
      deps.authenticator.forget(); // the replaced secret may be cached; without an overlap it must answer 401 now
      respond(ctx, { ...presentApiKey(key), secret }, { etag: versionEtag(key.version) });
    },

    async revokeApiKey({ params }, ctx) {
      const key = await revokeApiKey(identity, commandCaller(ctx), params.apiKeyId, ifMatch(ctx));
      deps.authenticator.forget();
      respond(ctx, presentApiKey(key), { etag: versionEtag(key.version) });
    },
  } satisfies RouteHandlers;
}
