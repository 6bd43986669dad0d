// What a credential may still do when work it asked for runs later (an import merges minutes after its request):
// the permissions it had then, narrowed by what its user's roles and its key grant now. A request carries a
// snapshot; trusting that snapshot alone would let a demoted admin's import grant admin, or a revoked key's run on.
import { ApiKey, Role, User } from '../../db/models/identity';
import type { Actor } from '../../lib/audit';
import { intersect, PermissionSet } from './permissions';

export interface PermissionSnapshot {
  fromRoles: readonly string[];
  scopes: readonly string[] | null;
}

/** The permissions a credential stands on now, or why it no longer stands (`lapsed`). */
export type Standing = { permissions: PermissionSet; lapsed: null } | { permissions: null; lapsed: string };

const narrower = (a: readonly string[] | null, b: readonly string[] | null): string[] | null =>
  a === null ? (b && [...b]) : b === null ? [...a] : intersect(a, b);

/**
 * `then` narrowed by the actor's standing now: a user's current roles (inactive or gone: lapsed); an API key's
 * current scopes and its owner's roles (revoked, expired or its owner inactive: lapsed). A token's scopes are
 * not stored anywhere to read again, so they stay as the request had them. A system actor keeps `then`.
 */
export async function standingNow(tenantId: string, actor: Actor, then: PermissionSnapshot): Promise<Standing> {
  if (actor.type === 'system' || !actor.id) return { permissions: new PermissionSet(then.fromRoles, then.scopes), lapsed: null };
  let userId = actor.id;
  let scopes = then.scopes;
  if (actor.type === 'api_key') {
    const key = await ApiKey.findOne({ where: { tenantId, id: actor.id }, attributes: ['userId', 'scopes', 'revokedAt', 'expiresAt'] });
    if (!key || key.revokedAt) return { permissions: null, lapsed: 'the API key that asked for it was revoked' };
    if (key.expiresAt && key.expiresAt <= new Date()) return { permissions: null, lapsed: 'the API key that asked for it has expired' };
    userId = key.userId;
    scopes = narrower(then.scopes, key.scopes);
  }
  const user = await User.findOne({ where: { tenantId, id: userId }, attributes: ['id', 'active'], include: [{ model: Role, as: 'roles', attributes: ['permissions'], through: { attributes: [] } }] });
  if (!user || !user.active) return { permissions: null, lapsed: 'the user who asked for it is deactivated' };
  const now = [...new Set((user.roles ?? []).flatMap((r) => r.permissions))];
  return { permissions: new PermissionSet(intersect(then.fromRoles, now), scopes), lapsed: null };
}
