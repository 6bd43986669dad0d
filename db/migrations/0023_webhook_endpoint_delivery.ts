// Webhook deliveries scheduled by row, for one delivery workflow per endpoint (no longer one per delivery): when each
// is due next (next_attempt_at, also the claim's lease) and until when it is retried (retry_until), the index an
// endpoint's due deliveries are claimed by, and when the relay last re-read its whole safety window. `started` stays
// for old rows; nothing reads it any more.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q('ALTER TABLE webhook_deliveries ADD COLUMN next_attempt_at timestamptz, ADD COLUMN retry_until timestamptz');
  // Existing rows keep the default schedule (WEBHOOK_GIVE_UP_HOURS = 72 from their creation). Pending ones whose
  // workflow never started are due now; those a per-delivery workflow (from before this change) still owns keep a
  // null next_attempt_at, so the endpoint workflow leaves them to it: that workflow ends them delivered or dead.
  await q(`UPDATE webhook_deliveries SET retry_until = created_at + interval '72 hours',
    next_attempt_at = CASE WHEN status IN ('pending', 'failed') AND NOT started THEN now() END`);
  // The default is the default schedule's, for rows written without one; the relay, a replay and a retry set it.
  await q(`ALTER TABLE webhook_deliveries ALTER COLUMN retry_until SET DEFAULT now() + interval '72 hours', ALTER COLUMN retry_until SET NOT NULL`);
  await q(`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at, id) WHERE status IN ('pending', 'failed')`);
  await q('DROP INDEX IF EXISTS webhook_deliveries_unstarted');
  // When the relay last re-read its whole safety window (the reads between look only a few seconds back).
  await q('ALTER TABLE webhook_relay_cursors ADD COLUMN deep_read_at timestamptz');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q('DROP INDEX IF EXISTS webhook_deliveries_due');
  await q('ALTER TABLE webhook_relay_cursors DROP COLUMN IF EXISTS deep_read_at');
  await q('ALTER TABLE webhook_deliveries DROP COLUMN IF EXISTS next_attempt_at, DROP COLUMN IF EXISTS retry_until');
  await q('CREATE INDEX IF NOT EXISTS webhook_deliveries_unstarted ON webhook_deliveries (tenant_id) WHERE NOT started');
}
