// Identity hardening: Idempotency-Keys belong to one credential, not to the whole tenant; rate-limit
// counters shared by the API processes.
import { DataTypes, QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  // `key:<api key id>` or `user:<user id>` (a JWT). Rows written before this have '' and match no caller
  // any more: they are forgotten like expired keys (at most IDEMPOTENCY_TTL_HOURS of replays are lost).
  await qi.addColumn('idempotency_keys', 'principal', { type: DataTypes.STRING(100), allowNull: false, defaultValue: '' });
  await qi.sequelize.query('ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey');
  await qi.sequelize.query('ALTER TABLE idempotency_keys ADD PRIMARY KEY (tenant_id, principal, operation_id, key)');

  // Counts per (limiter:key, fixed window); losing them in a crash only resets a minute's budget, so the
  // table is UNLOGGED (no WAL for the per-second updates).
  await qi.sequelize.query(`CREATE UNLOGGED TABLE rate_limit_counters (
    key varchar(300) NOT NULL,
    window_start timestamptz NOT NULL,
    count integer NOT NULL,
    PRIMARY KEY (key, window_start)
  )`);
  await qi.addIndex('rate_limit_counters', ['window_start']);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.dropTable('rate_limit_counters');
  await qi.sequelize.query("DELETE FROM idempotency_keys WHERE principal <> ''");
  await qi.sequelize.query('ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey');
  await qi.removeColumn('idempotency_keys', 'principal');
  await qi.sequelize.query('ALTER TABLE idempotency_keys ADD PRIMARY KEY (tenant_id, key, operation_id)');
}
