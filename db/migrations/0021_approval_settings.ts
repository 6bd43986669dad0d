// Each tenant's approval settings: the roles told of every new approval request (no row: nobody).
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`CREATE TABLE tenant_approval_settings (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    notify_on_request_roles text[] NOT NULL DEFAULT '{}',
    updated_by varchar(200),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP TABLE IF EXISTS tenant_approval_settings');
}
