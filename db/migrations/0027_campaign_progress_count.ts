// A campaign's current rate is measured from its own counts (sent + failed + skipped) between two progress writes,
// not by the chunk that writes: with several lanes sending at once, each chunk sees only its own share.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE campaigns ADD COLUMN progress_count integer');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE campaigns DROP COLUMN progress_count');
}
