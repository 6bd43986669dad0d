// Creates a tenant with an admin user and prints its first API key (shown once).
// Usage: npm run bootstrap-tenant -- --name "Acme Ltd" --slug acme --admin-email ops@acme.example
//   (in a container: node dist/scripts/bootstrap-tenant.js --name … )
import { parseArgs } from 'node:util';
import { loadDatabaseUrl } from '../config';
import { createSequelize, Tenant } from '../db';
import { migrate } from '../db/migrate';
import { bootstrapTenant } from '../domains/identity/bootstrap';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { name: { type: 'string' }, slug: { type: 'string' }, 'admin-email': { type: 'string' } } });
  const name = values.name;
  const slug = values.slug;
  const adminEmail = values['admin-email'];
  if (!name || !slug || !adminEmail || !/^[a-z0-9-]{1,100}$/.test(slug)) {
    console.error('usage: bootstrap-tenant --name NAME --slug lowercase-slug --admin-email EMAIL');
    process.exit(2);
  }
  const sequelize = createSequelize(loadDatabaseUrl());
  try {
    await migrate(sequelize);
    if (await Tenant.count({ where: { slug } })) {
      console.error(`a tenant with slug "${slug}" exists already`);
      process.exit(1);
    }
    const boot = await bootstrapTenant(sequelize, { name, slug, adminEmail: adminEmail.toLowerCase() });
    console.log(JSON.stringify({ tenantId: boot.tenant.id, adminUserId: boot.admin.id, apiKey: boot.apiKey }, null, 2));
  } finally {
    await sequelize.close();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
