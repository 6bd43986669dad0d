// The tenant-wide run history (GET /v1/job-runs, newest first, by status or job type) read from an index.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('CREATE INDEX job_runs_by_tenant ON job_runs (tenant_id, started_at DESC, id DESC)');
  // Active runs are few among many finished ones.
  await qi.sequelize.query("CREATE INDEX job_runs_running ON job_runs (tenant_id, started_at DESC, id DESC) WHERE status = 'running'");
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP INDEX IF EXISTS job_runs_running');
  await qi.sequelize.query('DROP INDEX IF EXISTS job_runs_by_tenant');
}
