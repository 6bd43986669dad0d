// Users' locale and time zone (null: the tenant's default), and each tenant's notification templates with their versions.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE users ADD COLUMN locale varchar(35), ADD COLUMN time_zone varchar(64)');
  await qi.sequelize.query(`CREATE TABLE notification_templates (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type varchar(100) NOT NULL,
    channel varchar(10) NOT NULL,
    locale varchar(35) NOT NULL,
    status varchar(10) NOT NULL,
    parts jsonb NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`);
  // One active template per (type, channel, locale): the one a notification uses.
  await qi.sequelize.query(`CREATE UNIQUE INDEX notification_templates_active ON notification_templates (tenant_id, type, channel, locale) WHERE status = 'active'`);
  await qi.sequelize.query('CREATE INDEX notification_templates_tenant ON notification_templates (tenant_id, id)');
  await qi.sequelize.query(`CREATE TABLE notification_template_versions (
    template_id uuid NOT NULL REFERENCES notification_templates (id) ON DELETE CASCADE,
    version integer NOT NULL,
    tenant_id uuid NOT NULL,
    status varchar(10) NOT NULL,
    parts jsonb NOT NULL,
    created_by varchar(200),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_id, version)
  )`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP TABLE IF EXISTS notification_template_versions');
  await qi.sequelize.query('DROP TABLE IF EXISTS notification_templates');
  await qi.sequelize.query('ALTER TABLE users DROP COLUMN IF EXISTS locale, DROP COLUMN IF EXISTS time_zone');
}
