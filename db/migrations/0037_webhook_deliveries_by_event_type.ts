// `?eventType=` on a delivery log (the tenant's, an endpoint's, a reminder's webhooks') reads only that type's rows,
// newest first, by (tenant_id, event_type, id): by (tenant_id, id) alone a page of a rare type walked back through
// every delivery of every other type first. One index for all three logs; an endpoint's is a filter on its rows.
// Not CONCURRENTLY, though the relay's inserts wait while a large table is indexed: a concurrent build waits for
// every transaction with an older snapshot, and another API process starting at the same moment waits, inside
// one, for the migration lock this process holds (db/migrate.ts) — a wait Postgres cannot see as a deadlock.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('CREATE INDEX webhook_deliveries_tenant_event_type_id ON webhook_deliveries (tenant_id, event_type, id)');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP INDEX IF EXISTS webhook_deliveries_tenant_event_type_id');
}
