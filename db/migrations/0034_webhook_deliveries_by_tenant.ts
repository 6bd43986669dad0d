// GET /v1/webhook-deliveries pages a tenant's deliveries newest first across its endpoints: by (tenant_id, id) a page
// reads its own rows backwards, where the per-endpoint indexes would have to gather and sort every delivery of every
// endpoint first; by (tenant_id, status, id) a page of `?status=dead` reads only dead ones, however rare.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('CREATE INDEX webhook_deliveries_tenant_id_id ON webhook_deliveries (tenant_id, id)');
  await qi.sequelize.query('CREATE INDEX webhook_deliveries_tenant_status_id ON webhook_deliveries (tenant_id, status, id)');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP INDEX IF EXISTS webhook_deliveries_tenant_status_id');
  await qi.sequelize.query('DROP INDEX IF EXISTS webhook_deliveries_tenant_id_id');
}
