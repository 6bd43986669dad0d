// Identity commands: users, roles and API keys of a tenant, each change audited in its transaction.
//
// Nobody grants what they do not hold: a role, a user's roles or a key's scopes may only carry permissions
// the calling credential holds itself (its scopes included), and a user, role or key that can do something
// the caller cannot is not the caller's to change. The last user holding '*' in a tenant stays. A role an approval
// template names carries approval authority (domains/approvals/authority.ts): granting it needs approvals.template.manage too,
// as does a key for another user that can sign approvals, or start flows, as them.
import { randomUUID } from 'node:crypto';
import { IANAZone } from 'luxon';
import { QueryTypes, Sequelize, Transaction } from 'sequelize';
import { ApiKey, Role, User, UserRole } from '../../db/models/identity';
import { recordAudit } from '../../lib/audit';
import { ApiError, permissionDenied, validationFailed } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { APPROVAL_AUTHORITY_PERMISSION, approvalRoleKeys } from '../approvals/authority';
import { auditBy, Caller, Precondition } from '../command';
import type { Schemas } from '../schemas';
import { generateApiKey } from './keys';
import { lockTenantIdentity } from './lock';
import { grants, PermissionSet } from './permissions';
import { presentApiKey, presentRole, presentUser } from './presenters';

export interface IdentityDeps {
  sequelize: Sequelize;
  /** The permission names of openapi.yaml's catalogue (x-permissions). */
  permissionCatalogue: readonly string[];
}

export const ROLE_INCLUDE = [{ model: Role, as: 'roles', through: { attributes: [] } }];

/** One identity change per tenant at a time (imports of users and approval template saves take it too): ./lock.ts. */
export { IDENTITY_LOCK_CLASS } from './lock';
export const MANAGE_OTHERS_KEYS = 'identity.apikeys.manage_others';

const permissionsOf = (roles: readonly Role[]): string[] => roles.flatMap((r) => r.permissions);

/** 403 unless the caller holds every one of `perms`; `why` says whose they are. */
function refuseBeyond(c: Caller, perms: Iterable<string>, why: (beyond: string) => string): void {
  const beyond = c.permissions.missing(perms);
  if (beyond.length) throw new ApiError(403, 'PERMISSION_ESCALATION', why(beyond.join(', ')), { permission: beyond[0] });
}

const cannotGrant = (beyond: string) => `You cannot grant what you do not hold: ${beyond}`;

/**
 * 403 PERMISSION_DENIED unless the caller holds approvals.template.manage, when any of `gained` — role keys someone is
 * about to hold (given to them, or held by a user made active again) — carries approval authority: an approval template
 * names it (domains/approvals/authority.ts). Holding the role's permissions is not enough: the role itself decides
 * approvals. Taking such a role away needs nothing more.
 */
async function refuseApprovalAuthority(deps: IdentityDeps, c: Caller, gained: readonly string[], transaction: Transaction, act: string): Promise<void> {
  if (!gained.length || c.permissions.has(APPROVAL_AUTHORITY_PERMISSION)) return;
  const authority = await approvalRoleKeys(deps.sequelize, c.tenantId, transaction);
  const named = [...new Set(gained)].filter((k) => authority.has(k)).sort();
  if (!named.length) return;
  throw permissionDenied(
    `${act} ${named.map((k) => `"${k}"`).join(', ')}, which an approval template names (approval authority), needs the permission '${APPROVAL_AUTHORITY_PERMISSION}'`,
    APPROVAL_AUTHORITY_PERMISSION);
}

/** A permission must name a catalogue entry, or be a wildcard that covers at least one. */
export function assertKnownPermissions(catalogue: readonly string[], perms: string[]): void {
  const unknown = perms.filter((p) => !catalogue.includes(p) && !catalogue.some((k) => grants([p], k)));
  if (unknown.length) throw new ApiError(422, 'UNKNOWN_PERMISSION', `Not in the permission catalogue: ${unknown.join(', ')} (see GET /v1/permissions)`);
}

async function rolesByKey(tenantId: string, keys: string[]): Promise<Role[]> {
  const roles = await Role.findAll({ where: { tenantId, key: keys } });
  const missing = keys.filter((k) => !roles.some((r) => r.key === k));
  if (missing.length) throw new ApiError(422, 'UNKNOWN_ROLE', `No such role: ${missing.join(', ')}`);
  return roles;
}

/** Active users holding '*' through a role other than $2 (a role about to go; null for none), in tenant $1: `n`. */
export const COUNT_ADMINS_SQL = `SELECT count(DISTINCT u.id)::int AS n FROM users u
  JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
  WHERE u.tenant_id = $1 AND u.active AND r.permissions @> '["*"]'::jsonb AND r.id IS DISTINCT FROM $2`;

/** Active users holding '*' through a role (other than `withoutRoleId`, for a role about to go). */
async function countAdmins(sequelize: Sequelize, tenantId: string, transaction: Transaction, withoutRoleId?: string): Promise<number> {
  const [row] = await sequelize.query<{ n: number }>(COUNT_ADMINS_SQL, { bind: [tenantId, withoutRoleId ?? null], type: QueryTypes.SELECT, transaction });
  return row.n;
}

export function refuseLastAdmin(before: number, after: number): void {
  if (before > 0 && after === 0) {
    throw new ApiError(409, 'LAST_ADMIN', "This would leave the tenant without an active user holding '*'; give '*' to someone else first");
  }
}

/** A time zone must be one IANA knows (luxon, as job schedules check theirs); a locale's shape is the contract's. */
export function checkTimeZone(timeZone: string | null | undefined, path = '/requestBody/timeZone'): void {
  if (timeZone && !IANAZone.isValidZone(timeZone)) throw validationFailed([{ path, message: `"${timeZone}" is not an IANA time zone` }]);
}

export async function createUser(deps: IdentityDeps, c: Caller, input: Schemas['UserCreate']): Promise<User> {
  checkTimeZone(input.timeZone);
  return deps.sequelize.transaction(async (transaction) => {
    // Which roles carry approval authority is read under the lock template saves take too (./lock.ts).
    await lockTenantIdentity(deps.sequelize, c.tenantId, transaction);
    const roles = await rolesByKey(c.tenantId, input.roles ?? []);
    refuseBeyond(c, permissionsOf(roles), cannotGrant);
    await refuseApprovalAuthority(deps, c, roles.map((r) => r.key), transaction, 'Granting the role(s)');
    const exists = await User.count({ where: { tenantId: c.tenantId, email: input.email.toLowerCase() }, transaction });
    if (exists) throw new ApiError(409, 'ALREADY_EXISTS', `A user with email ${input.email} exists already`);
    const created = await User.create({ id: randomUUID(), tenantId: c.tenantId, email: input.email.toLowerCase(), name: input.name, locale: input.locale ?? null, timeZone: input.timeZone ?? null }, { transaction });
    await UserRole.bulkCreate(roles.map((r) => ({ userId: created.id, roleId: r.id, tenantId: c.tenantId })), { transaction });
    created.roles = roles;
    await recordAudit({ ...auditBy(c), action: 'identity.user.created', entityType: 'user', entityId: created.id, after: presentUser(created) }, transaction);
    return created;
  });
}

export async function updateUser(deps: IdentityDeps, c: Caller, userId: string, input: Schemas['UserUpdate'], precondition?: Precondition): Promise<User> {
  checkTimeZone(input.timeZone);
  return deps.sequelize.transaction(async (transaction) => {
    await lockTenantIdentity(deps.sequelize, c.tenantId, transaction);
    const found = await findInTenant(User, c.tenantId, userId, 'User', { include: ROLE_INCLUDE, transaction, lock: { level: transaction.LOCK.UPDATE, of: User } });
    precondition?.(found.version);
    refuseBeyond(c, permissionsOf(found.roles ?? []), (beyond) => `User ${found.id} holds ${beyond}, which you do not hold: only someone who holds all of it may change this user`);
    const roles = input.roles === undefined ? undefined : await rolesByKey(c.tenantId, input.roles);
    if (roles) refuseBeyond(c, permissionsOf(roles), cannotGrant);
    // What the user holds afterwards and did not before: every role when a deactivated user is made active again.
    const held = (found.roles ?? []).map((r) => r.key);
    const after = roles ? roles.map((r) => r.key) : held;
    const reactivated = !found.active && input.active === true;
    await refuseApprovalAuthority(deps, c, reactivated ? after : after.filter((k) => !held.includes(k)), transaction,
      reactivated ? `Making active again user ${found.id}, who would hold the role(s)` : 'Granting the role(s)');
    const adminsBefore = await countAdmins(deps.sequelize, c.tenantId, transaction);
    const before = presentUser(found);
    if (input.name !== undefined) found.name = input.name;
    if (input.active !== undefined) found.active = input.active;
    if (input.locale !== undefined) found.locale = input.locale;
    if (input.timeZone !== undefined) found.timeZone = input.timeZone;
    if (roles) {
      await UserRole.destroy({ where: { userId: found.id }, transaction });
      await UserRole.bulkCreate(roles.map((r) => ({ userId: found.id, roleId: r.id, tenantId: c.tenantId })), { transaction });
      found.roles = roles;
      found.changed('updatedAt', true);
    }
    await found.save({ transaction });
    refuseLastAdmin(adminsBefore, await countAdmins(deps.sequelize, c.tenantId, transaction));
    await recordAudit({ ...auditBy(c), action: 'identity.user.updated', entityType: 'user', entityId: found.id, before, after: presentUser(found) }, transaction);
    return found;
  });
}

export async function createRole(deps: IdentityDeps, c: Caller, input: Schemas['RoleCreate']): Promise<Role> {
  assertKnownPermissions(deps.permissionCatalogue, input.permissions);
  refuseBeyond(c, input.permissions, cannotGrant);
  return deps.sequelize.transaction(async (transaction) => {
    if (await Role.count({ where: { tenantId: c.tenantId, key: input.key }, transaction })) {
      throw new ApiError(409, 'ALREADY_EXISTS', `Role ${input.key} exists already`);
    }
    const created = await Role.create({ id: randomUUID(), tenantId: c.tenantId, key: input.key, title: input.title, permissions: [...new Set(input.permissions)] }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'identity.role.created', entityType: 'role', entityId: created.key, after: presentRole(created) }, transaction);
    return created;
  });
}

export async function updateRole(deps: IdentityDeps, c: Caller, key: string, input: Schemas['RoleUpdate'], precondition?: Precondition): Promise<Role> {
  if (input.permissions) assertKnownPermissions(deps.permissionCatalogue, input.permissions);
  return deps.sequelize.transaction(async (transaction) => {
    await lockTenantIdentity(deps.sequelize, c.tenantId, transaction);
    const found = await findInTenant(Role, c.tenantId, { key }, `Role ${key}`, { transaction, lock: transaction.LOCK.UPDATE });
    precondition?.(found.version);
    refuseBeyond(c, found.permissions, (beyond) => `Role ${found.key} grants ${beyond}, which you do not hold: only someone who holds all of it may change this role`);
    if (input.permissions) refuseBeyond(c, input.permissions, cannotGrant);
    const adminsBefore = await countAdmins(deps.sequelize, c.tenantId, transaction);
    const before = presentRole(found);
    if (input.title !== undefined) found.title = input.title;
    if (input.permissions !== undefined) found.permissions = [...new Set(input.permissions)];
    await found.save({ transaction });
    refuseLastAdmin(adminsBefore, await countAdmins(deps.sequelize, c.tenantId, transaction));
    await recordAudit({ ...auditBy(c), action: 'identity.role.updated', entityType: 'role', entityId: found.key, before, after: presentRole(found) }, transaction);
    return found;
  });
}

export async function deleteRole(deps: IdentityDeps, c: Caller, key: string): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    await lockTenantIdentity(deps.sequelize, c.tenantId, transaction);
    const role = await findInTenant(Role, c.tenantId, { key }, `Role ${key}`, { transaction, lock: transaction.LOCK.UPDATE });
    refuseBeyond(c, role.permissions, (beyond) => `Role ${role.key} grants ${beyond}, which you do not hold: only someone who holds all of it may delete this role`);
    // Checked before the holders: "the last admin's role" says more than "a role someone holds".
    refuseLastAdmin(await countAdmins(deps.sequelize, c.tenantId, transaction), await countAdmins(deps.sequelize, c.tenantId, transaction, role.id));
    const holders = await UserRole.count({ where: { roleId: role.id }, transaction });
    if (holders) throw new ApiError(409, 'DEPENDENCY_EXISTS', `Role ${role.key} is held by ${holders} user(s); take it from them first`, { count: holders });
    await role.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'identity.role.deleted', entityType: 'role', entityId: role.key, before: presentRole(role) }, transaction);
  });
}

/** A caller sets their own locale and time zone: nothing that grants anything, so no permission beyond being signed in. */
export async function updateMyPreferences(deps: IdentityDeps, c: Caller, input: Schemas['MyPreferences']): Promise<User> {
  checkTimeZone(input.timeZone);
  return deps.sequelize.transaction(async (transaction) => {
    const found = await findInTenant(User, c.tenantId, c.userId, 'User', { transaction, lock: transaction.LOCK.UPDATE });
    const before = { locale: found.locale ?? null, timeZone: found.timeZone ?? null };
    if (input.locale !== undefined) found.locale = input.locale;
    if (input.timeZone !== undefined) found.timeZone = input.timeZone;
    await found.save({ transaction });
    await recordAudit({ ...auditBy(c), action: 'identity.user.updated', entityType: 'user', entityId: found.id, before, after: { locale: found.locale ?? null, timeZone: found.timeZone ?? null } }, transaction);
    return found;
  });
}

/** A new key and its secret (shown once, stored hashed). */
export async function createApiKey(deps: IdentityDeps, c: Caller, input: Schemas['ApiKeyCreate']): Promise<{ key: ApiKey; secret: string }> {
  const ownerId = input.userId ?? c.userId;
  const forOther = ownerId !== c.userId;
  refuseOthersKey(c, ownerId, 'A key for another user');
  if (input.scopes) {
    assertKnownPermissions(deps.permissionCatalogue, input.scopes);
    refuseBeyond(c, input.scopes, cannotGrant);
  }
  // Never wider than the calling credential: without scopes, a key made with a scoped key or token (or
  // for someone else) gets the caller's effective permissions as its scopes. Only a key an unscoped
  // caller makes for itself follows its roles (it can never do more than its maker).
  const scopes = input.scopes ?? (forOther || c.permissions.scopes !== null ? c.permissions.list() : null);
  refuseOthersApprovalKey(c, ownerId, scopes, 'A key for another user');
  refusePastExpiry(input.expiresAt);
  if (!(await User.count({ where: { id: ownerId, tenantId: c.tenantId, active: true } }))) {
    throw new ApiError(422, 'UNKNOWN_USER', `No active user ${ownerId} in this tenant`);
  }
  const { prefix, secret, secretHash } = generateApiKey();
  const key = await deps.sequelize.transaction(async (transaction) => {
    const created = await ApiKey.create({
      id: randomUUID(), tenantId: c.tenantId, userId: ownerId, name: input.name, prefix, secretHash,
      scopes: scopes ? [...new Set(scopes)] : null, expiresAt: input.expiresAt ? new Date(input.expiresAt) : null,
    }, { transaction });
    // The key's userId names whom it acts as; a key for someone else has its own action to search for.
    const action = forOther ? 'identity.apikey.created_for_user' : 'identity.apikey.created';
    await recordAudit({ ...auditBy(c), action, entityType: 'api_key', entityId: created.id, after: presentApiKey(created) }, transaction);
    return created;
  });
  return { key, secret };
}

/**
 * A key of the tenant, locked, once the caller may change it: only a caller that holds everything the key can do
 * (its owner's permissions within its scopes) may `verb` it, else 403 PERMISSION_ESCALATION.
 */
async function keyToChange(deps: IdentityDeps, c: Caller, id: string, verb: string, transaction: Transaction, precondition?: Precondition): Promise<{ key: ApiKey; owner: User | null }> {
  // Changing a key changes what a credential resolves to, like a demotion: a users import's merge chunk judges its
  // importer under this lock, so one that is running finishes first and the next one sees the change.
  await lockTenantIdentity(deps.sequelize, c.tenantId, transaction);
  const key = await findInTenant(ApiKey, c.tenantId, id, 'API key', { transaction, lock: transaction.LOCK.UPDATE });
  const owner = await User.findOne({ where: { id: key.userId, tenantId: c.tenantId }, include: ROLE_INCLUDE, transaction });
  const canDo = new PermissionSet(permissionsOf(owner?.roles ?? []), key.scopes).list();
  refuseBeyond(c, canDo, (beyond) => `This key can do ${beyond}, which you do not hold: only someone who holds all of it may ${verb} it`);
  // Under the row lock: of two changes of the version both callers read, the second finds it changed (412).
  precondition?.(key.version);
  return { key, owner };
}

/**
 * Creating a key for another user, or giving theirs a new secret or a longer life, is acting for them:
 * identity.apikeys.manage_others. `what` names the act in the refusal. Where that key can act in approvals as them,
 * refuseOthersApprovalKey asks for more.
 */
function refuseOthersKey(c: Caller, ownerId: string, what: string): void {
  if (ownerId !== c.userId && !c.permissions.has(MANAGE_OTHERS_KEYS)) {
    throw permissionDenied(`${what} needs the permission '${MANAGE_OTHERS_KEYS}'`, MANAGE_OTHERS_KEYS);
  }
}

/**
 * What lets a key act in an approval as its owner — the flow's history names the owner: sign a stage, decide a flow
 * for everyone, take signatures off or cancel any flow (api/routes/approvals.ts), and start a flow, which is approved
 * at once when the owner holds a role a template auto-approves (a purchase order's submit starts one too).
 */
const APPROVAL_ACTS = ['approvals.flow.sign', 'approvals.flow.decide', 'approvals.flow.admin', 'approvals.flow.create', 'purchasing.order.submit'] as const;

/**
 * A key of another user that can decide in approvals (its `scopes` grant any of APPROVAL_ACTS; without scopes it
 * follows the owner's roles, so it may come to) lets whoever holds its secret sign as that user: making one, or giving
 * one a new secret or a longer life, decides who approves, so it needs APPROVAL_AUTHORITY_PERMISSION besides
 * refuseOthersKey's (403 PERMISSION_DENIED naming it). A user's keys for themselves are theirs to make.
 */
function refuseOthersApprovalKey(c: Caller, ownerId: string, scopes: readonly string[] | null, what: string): void {
  if (ownerId === c.userId || c.permissions.has(APPROVAL_AUTHORITY_PERMISSION)) return;
  const acts = APPROVAL_ACTS.filter((p) => scopes === null || grants(scopes, p));
  if (!acts.length) return;
  throw permissionDenied(
    `${what} with ${acts.join(', ')} acts in approvals as them: it needs the permission '${APPROVAL_AUTHORITY_PERMISSION}'`,
    APPROVAL_AUTHORITY_PERMISSION);
}

/** A key's new expiry, when it has one, is in the future. */
function refusePastExpiry(expiresAt: string | null | undefined): void {
  if (expiresAt && new Date(expiresAt) <= new Date()) throw new ApiError(422, 'INVALID_RANGE', 'expiresAt must be in the future');
}

const refuseRevoked = (k: ApiKey) => {
  if (k.revokedAt) throw new ApiError(409, 'API_KEY_REVOKED', 'This API key was revoked; create a new one');
};

export async function revokeApiKey(deps: IdentityDeps, c: Caller, id: string, precondition?: Precondition): Promise<ApiKey> {
  return deps.sequelize.transaction(async (transaction) => {
    const { key: found } = await keyToChange(deps, c, id, 'revoke', transaction, precondition);
    if (found.revokedAt) return found; // revoking twice changes nothing
    const before = presentApiKey(found);
    found.revokedAt = new Date();
    await found.save({ transaction });
    await recordAudit({ ...auditBy(c), action: 'identity.apikey.revoked', entityType: 'api_key', entityId: found.id, before, after: presentApiKey(found) }, transaction);
    return found;
  });
}

/** Renames a key or changes its expiry (a later one, or none, keeps its powers alive longer: see keyToChange). */
export async function updateApiKey(deps: IdentityDeps, c: Caller, id: string, input: Schemas['ApiKeyUpdate'], precondition?: Precondition): Promise<ApiKey> {
  refusePastExpiry(input.expiresAt);
  return deps.sequelize.transaction(async (transaction) => {
    const { key: found } = await keyToChange(deps, c, id, 'change', transaction, precondition);
    refuseOthersKey(c, found.userId, "Changing another user's key");
    refuseRevoked(found);
    // A later expiry, or none, re-arms what the key can do; renaming it, or an earlier expiry, does not.
    const longerLife = input.expiresAt !== undefined && found.expiresAt !== null && (input.expiresAt === null || new Date(input.expiresAt) > found.expiresAt);
    if (longerLife) refuseOthersApprovalKey(c, found.userId, found.scopes, "A longer life for another user's key");
    const before = presentApiKey(found);
    if (input.name !== undefined) found.name = input.name;
    if (input.expiresAt !== undefined) found.expiresAt = input.expiresAt === null ? null : new Date(input.expiresAt);
    await found.save({ transaction });
    await recordAudit({ ...auditBy(c), action: 'identity.apikey.updated', entityType: 'api_key', entityId: found.id, before, after: presentApiKey(found) }, transaction);
    return found;
  });
}

/**
 * A new secret for the key (shown once), the same key otherwise; the replaced secret keeps working `overlapHours`.
 * Whoever rotates a key holds a secret that acts as it: so, beyond keyToChange, another user's key needs
 * identity.apikeys.manage_others, as creating one for them does.
 */
export async function rotateApiKey(deps: IdentityDeps, c: Caller, id: string, input: Partial<Schemas['ApiKeyRotate']>, precondition?: Precondition): Promise<{ key: ApiKey; secret: string }> {
  const overlapHours = input.overlapHours ?? 0;
  return deps.sequelize.transaction(async (transaction) => {
    const { key: found, owner } = await keyToChange(deps, c, id, 'rotate', transaction, precondition);
    refuseOthersKey(c, found.userId, "Rotating another user's key");
    // What the new secret could ever do, not only what it can today: a key without scopes follows its owner's roles
    // and gains whatever they are given later. Only its owner, through an unscoped credential (which follows the same
    // roles), may rotate such a key without holding '*'; anyone else must hold all of the key's scopes — the cap
    // createApiKey puts on a key it makes for someone else or from a scoped credential.
    const ownUnscoped = found.scopes === null && found.userId === c.userId && c.permissions.scopes === null;
    if (!ownUnscoped) {
      refuseBeyond(c, found.scopes ?? ['*'], (beyond) => `This key ${found.scopes ? 'is scoped to' : 'follows its owner\'s roles, so may come to hold'} ${beyond}, which you do not hold: only someone who does may rotate it`);
    }
    refuseOthersApprovalKey(c, found.userId, found.scopes, "Rotating another user's key");
    refuseRevoked(found);
    const now = new Date();
    if (found.expiresAt && found.expiresAt <= now) throw new ApiError(409, 'API_KEY_EXPIRED', 'This API key has expired; create a new one');
    // A secret for a deactivated user's key would come alive with them.
    if (!owner?.active) throw new ApiError(422, 'UNKNOWN_USER', `The key's owner ${found.userId} is not an active user of this tenant`);
    const before = presentApiKey(found);
    const { secret, secretHash } = generateApiKey(found.prefix);
    // Without an overlap the replaced secret is forgotten at once: to whoever still holds it, it is an unknown key.
    found.previousSecretHash = overlapHours > 0 ? found.secretHash : null;
    found.previousValidUntil = overlapHours > 0 ? new Date(now.getTime() + overlapHours * 3_600_000) : null;
    found.secretHash = secretHash;
    found.rotatedAt = now;
    await found.save({ transaction });
    await recordAudit({
      ...auditBy(c), action: 'identity.apikey.rotated', entityType: 'api_key', entityId: found.id, before, after: { ...presentApiKey(found), overlapHours },
    }, transaction);
    return { key: found, secret };
  });
}
