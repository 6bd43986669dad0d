// Tenants, users, roles and API keys → API JSON (key secrets and hashes never leave).
import type { ApiKey, Role, Tenant, User } from '../../db/models/identity';
import type { Schemas } from '../schemas';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const presentTenant = (t: Tenant): Schemas['Tenant'] => ({ id: t.id, name: t.name, slug: t.slug, createdAt: t.createdAt.toISOString() });

export const presentUser = (u: User): Schemas['User'] => ({
  id: u.id, email: u.email, name: u.name, active: u.active,
  roles: (u.roles ?? []).map((r) => r.key).sort(), locale: u.locale ?? null, timeZone: u.timeZone ?? null,
  createdAt: u.createdAt.toISOString(), updatedAt: u.updatedAt.toISOString(),
});

export const presentRole = (r: Role): Schemas['Role'] => ({
  key: r.key, title: r.title, permissions: r.permissions, createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString(),
});

export const presentApiKey = (k: ApiKey): Schemas['ApiKey'] => ({
  id: k.id, name: k.name, prefix: `dk_${k.prefix}`, userId: k.userId, scopes: k.scopes,
  expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt), lastUsedAt: iso(k.lastUsedAt), createdAt: k.createdAt.toISOString(),
  rotatedAt: iso(k.rotatedAt),
  // Shown only while the replaced secret still works.
  previousSecretValidUntil: k.previousValidUntil && k.previousValidUntil > new Date() ? k.previousValidUntil.toISOString() : null,
});
