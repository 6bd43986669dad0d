// Resolves approver sets (named users + current members of named roles) to active user ids.
import { Role, User, UserRole } from '../db';

export async function resolveApprovers(tenantId: string, users: string[], roles: string[]): Promise<string[]> {
  const ids = new Set<string>();
  if (users.length) for (const u of await User.findAll({ where: { tenantId, id: users, active: true } })) ids.add(u.id);
  if (roles.length) {
    const roleRows = await Role.findAll({ where: { tenantId, key: roles } });
    const links = await UserRole.findAll({ where: { roleId: roleRows.map((r) => r.id) } });
    for (const u of await User.findAll({ where: { tenantId, id: links.map((l) => l.userId), active: true } })) ids.add(u.id);
  }
  return [...ids].sort();
}
