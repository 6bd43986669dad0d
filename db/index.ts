// One Sequelize instance with every model initialised (each domain's, as domains/index.ts lists them); callers
// pass the URL (no globals). Every model is re-exported here for scripts and tests; Docket's own modules
// import their models from db/models/<domain>.ts, since this file loads every domain.
import { Sequelize } from 'sequelize';
import { DOMAINS } from '../domains';
import { initDeliveryModels } from './models/deliveries';
import { initIdempotencyModels } from './models/idempotency';
import { initLinkModels } from './models/links';
import { initSystemModels } from './models/system';

export * from './models/approvals';
export * from './models/audience';
export * from './models/audit';
export * from './models/campaigns';
export * from './models/deliveries';
export * from './models/documents';
export * from './models/events';
export * from './models/files';
export * from './models/idempotency';
export * from './models/identity';
export * from './models/imports';
export * from './models/jobs';
export * from './models/links';
export * from './models/purchasing';
export * from './models/reminders';
export * from './models/settings';
export * from './models/system';
export * from './models/webhooks';

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
  for (const domain of DOMAINS) if ('models' in domain) domain.models(sequelize);
  // Tables shared by the domains, not one domain's: the API's Idempotency-Key, the delivery ledger, used
  // one-click links and the outbox of workflow starts (the start reconciler's).
  initIdempotencyModels(sequelize);
  initDeliveryModels(sequelize);
  initLinkModels(sequelize);
  initSystemModels(sequelize);
  return sequelize;
}
