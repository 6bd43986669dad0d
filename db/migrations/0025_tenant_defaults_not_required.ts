// Object types whose submission needs no approval (a flow approved at once, with no template), and each tenant's
// notification defaults: the locale and time zone of a user who has not chosen their own.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q(`ALTER TABLE tenant_approval_settings ADD COLUMN not_required_object_types text[] NOT NULL DEFAULT '{}',
    ADD COLUMN notify_requester_on_decision boolean NOT NULL DEFAULT true`);
  // A flow of an object type that needs no approval has no template.
  await q('ALTER TABLE approval_flows ALTER COLUMN template_id DROP NOT NULL, ALTER COLUMN template_version DROP NOT NULL');
  await q(`CREATE TABLE tenant_notification_settings (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    default_locale varchar(35),
    default_time_zone varchar(64),
    updated_by varchar(200),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q('DROP TABLE IF EXISTS tenant_notification_settings');
  await q('ALTER TABLE tenant_approval_settings DROP COLUMN IF EXISTS not_required_object_types, DROP COLUMN IF EXISTS notify_requester_on_decision');
}
