// One Sequelize instance with every model initialised; callers pass the URL (no globals).
import { Sequelize } from 'sequelize';
import { initApprovalModels } from './models/approvals';
import { initAuditModels } from './models/audit';
import { initDocumentModels } from './models/documents';
import { initFileModels } from './models/files';
import { initIdempotencyModels } from './models/idempotency';
import { initIdentityModels } from './models/identity';
import { initJobModels } from './models/jobs';
import { initPurchasingModels } from './models/purchasing';
import { initReminderModels } from './models/reminders';

export * from './models/approvals';
export * from './models/audit';
export * from './models/documents';
export * from './models/files';
export * from './models/idempotency';
export * from './models/identity';
export * from './models/jobs';
export * from './models/purchasing';
export * from './models/reminders';

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
  initApprovalModels(sequelize);
  initPurchasingModels(sequelize);
  initDocumentModels(sequelize);
  initReminderModels(sequelize);
  initJobModels(sequelize);
  return sequelize;
}
