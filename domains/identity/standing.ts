// What a credential may still do when work it asked for runs later (an import merges minutes after its request):
// the permissions it had then, narrowed by what its user's roles and its key grant now. A request carries a
// snapshot; trusting that snapshot alone would let a demoted admin's import grant admin, or a revoked key's run on.
import type { ClientBase } from 'pg';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { Actor } from '../../lib/audit';
import { intersect, PermissionSet } from './permissions';

export interface PermissionSnapshot {
  fromRoles: readonly string[];
  scopes: readonly string[] | null;
}

/** The permissions a credential stands on now, or why it no longer stands (`lapsed`). */
export type Standing = { permissions: PermissionSet; lapsed: null } | { permissions: null; lapsed: string };

/** Runs one SELECT: on the models' pool, or on a connection the caller holds (inside its transaction and locks). */
export type Select = <T>(sql: string, params: unknown[]) => Promise<T[]>;
export const selectOn = (db: ClientBase): Select => async <T>(sql: string, params: unknown[]) => (await db.query(sql, params)).rows as T[];
export const selectWith = (sequelize: Sequelize): Select => <T>(sql: string, params: unknown[]) => sequelize.query<T & object>(sql, { bind: params, type: QueryTypes.SELECT }) as Promise<T[]>;

const narrower = (a: readonly string[] | null, b: readonly string[] | null): string[] | null =>
  a === null ? (b && [...b]) : b === null ? [...a] : intersect(a, b);

/**
 * `then` narrowed by the actor's standing now: a user's current roles (inactive or gone: lapsed); an API key's
 * current scopes and its owner's roles (revoked, expired or its owner inactive: lapsed). A token's scopes are
 * not stored anywhere to read again, so they stay as the request had them. A system actor keeps `then`.
 */
export async function standingNow(select: Select, tenantId: string, actor: Actor, then: PermissionSnapshot): Promise<Standing> {
  if (actor.type === 'system' || !actor.id) return { permissions: new PermissionSet(then.fromRoles, then.scopes), lapsed: null };
  let userId = actor.id;
  let scopes = then.scopes;
  if (actor.type === 'api_key') {
    const [key] = await select<{ user_id: string; scopes: string[] | null; revoked_at: Date | null; expires_at: Date | null }>(
      'SELECT user_id, scopes, revoked_at, expires_at FROM api_keys WHERE tenant_id = $1 AND id = $2', [tenantId, actor.id]);
    if (!key || key.revoked_at) return { permissions: null, lapsed: 'the API key that asked for it was revoked' };
    if (key.expires_at && new Date(key.expires_at) <= new Date()) return { permissions: null, lapsed: 'the API key that asked for it has expired' };
    userId = key.user_id;
    scopes = narrower(then.scopes, key.scopes);
  }
  const rows = await select<{ active: boolean; permissions: string[] | null }>(`SELECT u.active, r.permissions FROM users u
    LEFT JOIN user_roles ur ON ur.user_id = u.id LEFT JOIN roles r ON r.id = ur.role_id WHERE u.tenant_id = $1 AND u.id = $2`, [tenantId, userId]);
  if (!rows.length || !rows[0].active) return { permissions: null, lapsed: 'the user who asked for it is deactivated' };
  const now = [...new Set(rows.flatMap((r) => r.permissions ?? []))];
  return { permissions: new PermissionSet(intersect(then.fromRoles, now), scopes), lapsed: null };
}
