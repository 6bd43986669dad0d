// An endpoint's delivery statistics over the last days (the dashboard figures integrators expect): its deliveries by
// status, its attempts' success rate and durations, and when it last succeeded and failed. The cost grows with the
// endpoint's traffic, so the statement runs under a time budget: over it the caller is asked for fewer days.
import { QueryTypes, Sequelize } from 'sequelize';
import { ApiError } from '../../lib/problems';
import { isStatementTimeout, withStatementBudget } from '../../lib/statement-budget';
import { uuidV7Floor } from '../../lib/uuid';

export interface WebhookEndpointStats {
  since: Date;
  deliveries: { total: number; pending: number; delivered: number; failed: number; dead: number };
  attempts: { total: number; succeeded: number; failed: number; successRate: number | null; avgDurationMs: number | null; p95DurationMs: number | null };
  lastDeliveredAt: Date | null;
  lastFailedAt: Date | null;
}

interface Row {
  pending: number; delivered: number; failed: number; dead: number;
  attempts: number; succeeded: number; avg_ms: number | null; p95_ms: number | null; last_ok: Date | null; last_failed: Date | null;
}

/** The figures of one endpoint (already found in the caller's tenant) since `days` ago. */
export async function endpointStats(sequelize: Sequelize, tenantId: string, endpointId: string, days: number, budgetMs = 3_000): Promise<WebhookEndpointStats> {
  const since = new Date(Date.now() - days * 86_400_000);
  try {
    const [row] = await withStatementBudget(sequelize, budgetMs, (transaction) => sequelize.query<Row>(
      `WITH d AS (SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE status = 'delivered')::int AS delivered,
                         count(*) FILTER (WHERE status = 'failed')::int AS failed, count(*) FILTER (WHERE status = 'dead')::int AS dead
                    FROM webhook_deliveries WHERE endpoint_id = $2::uuid AND tenant_id = $1 AND id >= $3),
            a AS (SELECT count(*)::int AS attempts, count(*) FILTER (WHERE status = 'sent')::int AS succeeded,
                         avg(duration_ms)::float AS avg_ms, percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)::float AS p95_ms,
                         max(at) FILTER (WHERE status = 'sent') AS last_ok, max(at) FILTER (WHERE status <> 'sent') AS last_failed
                    FROM delivery_attempts WHERE tenant_id = $1 AND subject_type = 'webhook_endpoint' AND subject_id = $2::text AND at >= $4)
       SELECT * FROM d, a`,
      { bind: [tenantId, endpointId, uuidV7Floor(since.getTime()), since], type: QueryTypes.SELECT, transaction },
    ));
    const d = { pending: row.pending, delivered: row.delivered, failed: row.failed, dead: row.dead };
    return {
      since,
      deliveries: { total: d.pending + d.delivered + d.failed + d.dead, ...d },
      attempts: {
        total: row.attempts, succeeded: row.succeeded, failed: row.attempts - row.succeeded,
        successRate: row.attempts ? Math.round((row.succeeded / row.attempts) * 10_000) / 10_000 : null,
        avgDurationMs: row.avg_ms === null ? null : Math.round(row.avg_ms), p95DurationMs: row.p95_ms === null ? null : Math.round(row.p95_ms),
      },
      lastDeliveredAt: row.last_ok, lastFailedAt: row.last_failed,
    };
  } catch (err) {
    if (isStatementTimeout(err)) throw new ApiError(422, 'RANGE_TOO_LARGE', `Counting ${days} days of this endpoint's deliveries took longer than ${budgetMs} ms; ask for fewer days`);
    throw err;
  }
}
