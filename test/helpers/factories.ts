// Test factories: a tenant, a user with exactly the permissions a test needs, an API key.
import { randomUUID } from 'node:crypto';
import { ApiKey, Role, Tenant, User, UserRole } from '../../db';
import { generateApiKey } from '../../domains/identity/keys';
import type { Sequelize } from 'sequelize';

/** Every tenant this test file built: its Temporal work is ended when the file's last app closes. */
export const tenantsBuilt = new Set<string>();

export async function buildTenant(name = 'Acme'): Promise<Tenant> {
  const id = randomUUID();
  tenantsBuilt.add(id);
  return Tenant.create({ id, name, slug: `t-${id.slice(0, 8)}` });
}

export async function buildUser(tenant: Tenant, opts: { permissions?: string[]; email?: string; name?: string; active?: boolean } = {}): Promise<User> {
  const id = randomUUID();
  const user = await User.create({ id, tenantId: tenant.id, email: opts.email ?? `u-${id.slice(0, 8)}@example.com`, name: opts.name ?? 'Test User', active: opts.active ?? true });
  if (opts.permissions) {
    const role = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: `r-${id.slice(0, 8)}`, title: 'Test role', permissions: opts.permissions });
    await UserRole.create({ userId: user.id, roleId: role.id, tenantId: tenant.id });
  }
  return user;
}

export async function buildApiKey(user: User, opts: { scopes?: string[]; expiresAt?: Date; revoked?: boolean } = {}): Promise<string> {
  const key = generateApiKey();
  await ApiKey.create({
    id: randomUUID(), tenantId: user.tenantId, userId: user.id, name: 'test key', prefix: key.prefix, secretHash: key.secretHash,
    scopes: opts.scopes ?? null, expiresAt: opts.expiresAt ?? null, revokedAt: opts.revoked ? new Date() : null,
  });
  return key.secret;
}

/** A tenant whose only user holds `permissions`, and that user's key. */
export async function buildCaller(permissions: string[] = ['*'], tenant?: Tenant) {
  const t = tenant ?? (await buildTenant());
  const user = await buildUser(t, { permissions });
  return { tenant: t, user, key: await buildApiKey(user) };
}

/**
 * Runs one statement with triggers off (this transaction only; the test database's user is a superuser): the
 * change no process is told of, as when an API process's credential-change listener is down (api/auth.ts).
 */
export async function writeUnheard(sequelize: Sequelize, sql: string, bind: unknown[]): Promise<void> {
  await sequelize.transaction(async (transaction) => {
    await sequelize.query("SET LOCAL session_replication_role = 'replica'", { transaction });
    await sequelize.query(sql, { bind, transaction });
  });
}
