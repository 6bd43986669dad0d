// The http job schedules whose header values are still stored plain (written before values were sealed), in a partial
// index that holds only them: the start reconciler looks for them on every run (domains/jobs/seal-stored-headers.ts,
// whose query repeats this condition word for word so the index serves it) and, once it has sealed them all, reads an
// empty index instead of every schedule's params.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`CREATE INDEX job_schedules_plain_headers ON job_schedules (id)
    WHERE job_type = 'http' AND params @? '$.headers.* ? (@.type() == "string" && !(@ starts with "enc:v1:"))'`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP INDEX IF EXISTS job_schedules_plain_headers');
}
