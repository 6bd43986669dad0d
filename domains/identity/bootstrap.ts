// Creates a tenant with an admin role, an admin user and an API key (first start, CLI, tests).
import { randomUUID } from 'node:crypto';
import { Sequelize } from 'sequelize';
import { ApiKey, Role, Tenant, User, UserRole } from '../../db/models/identity';
import { generateApiKey } from './keys';

export interface BootstrappedTenant {
  tenant: Tenant;
  admin: User;
  apiKey: string;
}

export async function bootstrapTenant(sequelize: Sequelize, opts: { name: string; slug: string; adminEmail: string }): Promise<BootstrappedTenant> {
  return sequelize.transaction(async (transaction) => {
    const tenant = await Tenant.create({ id: randomUUID(), name: opts.name, slug: opts.slug }, { transaction });
    const role = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'admin', title: 'Administrator', permissions: ['*'] }, { transaction });
    const admin = await User.create({ id: randomUUID(), tenantId: tenant.id, email: opts.adminEmail, name: 'Administrator' }, { transaction });
    await UserRole.create({ userId: admin.id, roleId: role.id, tenantId: tenant.id }, { transaction });
    const key = generateApiKey();
    await ApiKey.create({ id: randomUUID(), tenantId: tenant.id, userId: admin.id, name: 'bootstrap admin key', prefix: key.prefix, secretHash: key.secretHash, scopes: null, expiresAt: null }, { transaction });
    return { tenant, admin, apiKey: key.secret };
  });
}
