// One Sequelize instance with every model initialised; callers pass the URL (no globals).
import { Sequelize } from 'sequelize';
import { initApprovalModels } from './models/approvals';
import { initAudienceModels } from './models/audience';
import { initAuditModels } from './models/audit';
import { initDeliveryModels } from './models/deliveries';
import { initDocumentModels } from './models/documents';
import { initFileModels } from './models/files';
import { initIdempotencyModels } from './models/idempotency';
import { initIdentityModels } from './models/identity';
import { initImportModels } from './models/imports';
import { initJobModels } from './models/jobs';
import { initLinkModels } from './models/links';
import { initPurchasingModels } from './models/purchasing';
import { initReminderModels } from './models/reminders';

export * from './models/approvals';
export * from './models/audience';
export * from './models/audit';
export * from './models/deliveries';
export * from './models/documents';
export * from './models/files';
export * from './models/idempotency';
export * from './models/identity';
export * from './models/imports';
export * from './models/jobs';
export * from './models/links';
export * from './models/purchasing';
export * from './models/reminders';

export interface SequelizeOptions {
  poolMax?: number;
  /**
   * How long a query waits for a pooled connection (default 30 s). The API uses a few seconds: with Postgres
   * down or the pool exhausted it answers 503 quickly instead of holding the request.
   */
  acquireTimeoutMs?: number;
}

export function createSequelize(databaseUrl: string, opts: SequelizeOptions = {}): Sequelize {
  const sequelize = new Sequelize(databaseUrl, {
    dialect: 'postgres',
    logging: false,
    pool: { max: opts.poolMax ?? 10, min: 0, idle: 10_000, acquire: opts.acquireTimeoutMs ?? 30_000 },
    // A server that does not answer a connection attempt (a dropped network rather than a refusal) is given
    // up on after 3 s, and idle connections are kept alive so a dead peer is noticed.
    dialectOptions: { connectionTimeoutMillis: 3_000, keepAlive: true },
  });
  initIdentityModels(sequelize);
  initAuditModels(sequelize);
  initFileModels(sequelize);
  initIdempotencyModels(sequelize);
  initApprovalModels(sequelize);
  initDeliveryModels(sequelize);
  initLinkModels(sequelize);
  initPurchasingModels(sequelize);
  initDocumentModels(sequelize);
  initReminderModels(sequelize);
  initJobModels(sequelize);
  initAudienceModels(sequelize);
  initImportModels(sequelize);
  return sequelize;
}
