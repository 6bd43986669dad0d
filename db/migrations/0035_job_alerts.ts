// A job schedule tells people more than its failures: `notify_on_success` (who hears a run succeeded) and
// `long_run_alert` ({afterSeconds, users, roles}: who hears that a run is still going after that long, once a run),
// beside `notify_on_failure`. The run's workflow reads the alert's threshold when the run starts.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`ALTER TABLE job_schedules ADD COLUMN notify_on_success jsonb NOT NULL DEFAULT '{"users": [], "roles": []}',
    ADD COLUMN long_run_alert jsonb`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE job_schedules DROP COLUMN notify_on_success, DROP COLUMN long_run_alert');
}
