// An import's revert runs as a workflow (`import-reverts:<tenant>:<id>`), not in the API's request: undoing a
// 1M-row import is one transaction of several seconds (7.8 s for 1M created rows, bench/experiments/imports-throughput.ts
// with BENCH_REVERT=1), too long to hold a request and an API connection. The row says where a revert stands:
// asked (requested_at/by), then either reverted (reverted_at, and the counts in revert_outcome) or refused
// (revert_outcome.error, nothing changed; it may be asked again).
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`ALTER TABLE imports ADD COLUMN revert_requested_at timestamptz, ADD COLUMN revert_requested_by text,
    ADD COLUMN revert_outcome jsonb`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE imports DROP COLUMN revert_requested_at, DROP COLUMN revert_requested_by, DROP COLUMN revert_outcome');
}
