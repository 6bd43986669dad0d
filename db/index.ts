// One Sequelize instance with every model initialised; callers pass the URL (no globals).
import { Sequelize } from 'sequelize';
import { initAuditModels } from './models/audit';
import { initFileModels } from './models/files';
import { initIdempotencyModels } from './models/idempotency';
import { initIdentityModels } from './models/identity';

export * from './models/audit';
export * from './models/files';
export * from './models/idempotency';
export * from './models/identity';

export function createSequelize(databaseUrl: string, opts: { poolMax?: number } = {}): Sequelize {
  const sequelize = new Sequelize(databaseUrl, {
    dialect: 'postgres',
    logging: false,
    pool: { max: opts.poolMax ?? 10, min: 0, idle: 10_000, acquire: 30_000 },
  });
  initIdentityModels(sequelize);
  initAuditModels(sequelize);
  initFileModels(sequelize);
  initIdempotencyModels(sequelize);
  return sequelize;
}
