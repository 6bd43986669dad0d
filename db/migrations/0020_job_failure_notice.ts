// Who a job schedule's failed runs are told to: named users and members of named roles (resolved at each failure).
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`ALTER TABLE job_schedules ADD COLUMN notify_on_failure jsonb NOT NULL DEFAULT '{"users": [], "roles": []}'`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE job_schedules DROP COLUMN IF EXISTS notify_on_failure');
}
