// Resolves sets of people (named users + current members of named roles) to active user ids, and says why a set
// would reach nobody: an approval stage's approvers, who a failing job schedule tells. And who holds a role or a
// permission through their roles (GET /v1/users?role=&permission=).
import { literal } from 'sequelize';
import { Role, User, UserRole } from '../../db/models/identity';
import { grantingPatterns } from './permissions';

export async function resolvePeople(tenantId: string, users: string[], roles: string[]): Promise<string[]> {
  const ids = new Set<string>();
  if (users.length) for (const u of await User.findAll({ where: { tenantId, id: users, active: true } })) ids.add(u.id);
  if (roles.length) {
    const roleRows = await Role.findAll({ where: { tenantId, key: roles } });
    const links = await UserRole.findAll({ where: { roleId: roleRows.map((r) => r.id) } });
    for (const u of await User.findAll({ where: { tenantId, id: links.map((l) => l.userId), active: true } })) ids.add(u.id);
  }
  return [...ids].sort();
}

export interface PeopleSetIssue {
  /** JSON pointer into the request, e.g. /stages/1/approvers/roles/0. */
  path: string;
  message: string;
}

/**
 * Checks a set as a request names it (`path` points at it): every role exists in the tenant, every user
 * is an active user of the tenant (another tenant's id is simply unknown here), and someone is left.
 */
export async function checkPeopleSet(tenantId: string, set: { users: string[]; roles: string[] }, path: string): Promise<{ resolved: string[]; issues: PeopleSetIssue[] }> {
  const issues: PeopleSetIssue[] = [];
  const users = set.users.length ? await User.findAll({ where: { tenantId, id: set.users }, attributes: ['id', 'active'] }) : [];
  set.users.forEach((id, k) => {
    const user = users.find((u) => u.id === id);
    if (!user) issues.push({ path: `${path}/users/${k}`, message: `no user ${id} in this tenant` });
    else if (!user.active) issues.push({ path: `${path}/users/${k}`, message: `user ${id} is deactivated` });
  });
  const roles = set.roles.length ? await Role.findAll({ where: { tenantId, key: set.roles }, attributes: ['key'] }) : [];
  set.roles.forEach((key, k) => {
    if (!roles.some((r) => r.key === key)) issues.push({ path: `${path}/roles/${k}`, message: `no role "${key}" in this tenant` });
  });
  const resolved = await resolvePeople(tenantId, set.users, set.roles);
  if (!issues.length && !resolved.length) issues.push({ path, message: 'resolves to nobody: its roles have no active members' });
  return { resolved, issues };
}

/**
 * The users (active or not) of the tenant who hold `role`, and/or whose roles grant `permission`: a role lists it or a
 * wildcard that covers it. Scopes of keys and tokens only narrow a credential, so they do not count. A subquery for
 * `WHERE id IN (…)`, so a page of users reads only its own rows however many hold it (values escaped by Sequelize).
 */
export function roleHolders(tenantId: string, by: { role?: string; permission?: string }): ReturnType<typeof literal> {
  const db = UserRole.sequelize!;
  const conditions = [`ur.tenant_id = ${db.escape(tenantId)}`];
  if (by.role !== undefined) conditions.push(`r.key = ${db.escape(by.role)}`);
  if (by.permission !== undefined) conditions.push(`jsonb_exists_any(r.permissions, ARRAY[${grantingPatterns(by.permission).map((p) => db.escape(p)).join(', ')}]::text[])`);
  return literal(`(SELECT ur.user_id FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ${conditions.join(' AND ')})`);
}
