// Subscriber exports: the audience (or the part of it a filter picks) written to a CSV by a workflow
// (`subscriber-exports:<tenant>:<id>`), the same shape as an audit export's row: its status is read from here
// while it runs, and the CSV is a stored file owned by the export (`origin_key` `subscriber-export:<id>`).
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`CREATE TABLE subscriber_exports (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    status varchar(20) NOT NULL CHECK (status IN ('queued', 'running', 'ready', 'failed')),
    filters jsonb NOT NULL DEFAULT '{}',
    total_rows integer,
    rows_written integer NOT NULL DEFAULT 0,
    file_id uuid REFERENCES files (id) ON DELETE SET NULL,
    error text,
    workflow_id varchar(300) NOT NULL,
    requested_by varchar(200),
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`);
  await qi.sequelize.query('CREATE INDEX subscriber_exports_tenant_created ON subscriber_exports (tenant_id, created_at)');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP TABLE subscriber_exports');
}
