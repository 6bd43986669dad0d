// Object types whose submission needs no approval (a flow approved at once, with no template), and each tenant's
// notification defaults: the locale and time zone of a user who has not chosen their own.
import { QueryInterface, QueryTypes } from 'sequelize';

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
  // Before 0025 every flow had a template: a flow approved at once for want of one cannot be put back into that
  // schema, so the rollback stops here, before changing anything, rather than deleting approval history.
  const [{ n }] = await qi.sequelize.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM approval_flows WHERE template_id IS NULL OR template_version IS NULL', { type: QueryTypes.SELECT });
  if (n > 0) throw new Error(`${n} approval flow(s) have no template (their object type needs no approval); the schema before 0025 cannot hold them`);
  await q('ALTER TABLE approval_flows ALTER COLUMN template_id SET NOT NULL, ALTER COLUMN template_version SET NOT NULL');
  await q('DROP TABLE IF EXISTS tenant_notification_settings');
  await q('ALTER TABLE tenant_approval_settings DROP COLUMN IF EXISTS not_required_object_types, DROP COLUMN IF EXISTS notify_requester_on_decision');
}
