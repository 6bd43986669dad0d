// The delivery ledger (deliveries + delivery_attempts): every outbound delivery of every domain — an
// approval email, a reminder's email / webhook / in-app notice, next a webhook
// event — is one row under its natural key. Claim the keys, send what the claim answers, record the
// outcomes: a retried or crashed sender never sends a delivery already recorded as sent. Every call is
// one statement whatever the number of deliveries (arrays bound as parameters, not one row per round trip).
import { QueryTypes, Transaction } from 'sequelize';
import { Delivery, type DeliveryChannel } from '../../db/models/deliveries';

export interface DeliveryClaim {
  key: string;
  tenantId: string;
  channel: DeliveryChannel;
  recipient: string;
  subjectType: string;
  subjectId: string;
}

/** An attempt to log with an outcome (the subject's history of attempts, e.g. a reminder's deliveries). */
export interface AttemptLog {
  attempt: number;
  /** The recipient as shown (the address or URL it went to), if it differs from the claimed one. */
  shownAs?: string;
  durationMs?: number;
  detail?: Record<string, unknown>;
}

export type DeliveryOutcome =
  | { key: string; providerId: string | null; log?: AttemptLog }
  | { key: string; error: string; log?: AttemptLog };

/** Bound per statement: a million recipients are claimed and recorded in statements of this many rows. */
const ROWS_PER_STATEMENT = 5_000;

const sequelize = () => Delivery.sequelize!;

async function inSlices<T>(rows: T[], each: (slice: T[]) => Promise<void>): Promise<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) await each(rows.slice(i, i + ROWS_PER_STATEMENT));
}

/**
 * Claims deliveries: one row per natural key, created `pending` if it is new. Answers the keys still to
 * send (every claimed key not yet `sent`), each with the attempts recorded against it so far, so a retry
 * sends only what did not go out.
 */
export async function claimDeliveries(claims: DeliveryClaim[], transaction?: Transaction): Promise<Map<string, number>> {
  const toSend = new Map<string, number>();
  await inSlices(claims, async (slice) => {
    const rows = await sequelize().query<{ key: string; attempts: number }>(
      `WITH v AS (SELECT * FROM unnest($1::varchar[], $2::uuid[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[])
                    AS v(key, tenant_id, channel, recipient, subject_type, subject_id)),
       created AS (INSERT INTO deliveries (key, tenant_id, channel, recipient, subject_type, subject_id, status, attempts, created_at, updated_at)
                   SELECT key, tenant_id, channel, recipient, subject_type, subject_id, 'pending', 0, now(), now() FROM v
                   ON CONFLICT (key) DO NOTHING RETURNING key)
       SELECT key, 0 AS attempts FROM created UNION ALL SELECT d.key, d.attempts FROM deliveries d JOIN v ON d.key = v.key WHERE d.status <> 'sent'`,
      {
        bind: [slice.map((c) => c.key), slice.map((c) => c.tenantId), slice.map((c) => c.channel), slice.map((c) => c.recipient.slice(0, 320)),
          slice.map((c) => c.subjectType), slice.map((c) => c.subjectId)],
        type: QueryTypes.SELECT, transaction,
      },
    );
    for (const r of rows) toSend.set(r.key, r.attempts);
  });
  return toSend;
}

/**
 * Records outcomes: `sent` with the provider's id, or the error (the delivery stays `pending` for a retry).
 * Each counts an attempt; with `log`, the attempt is also a row of delivery_attempts. A delivery already
 * `sent` is never touched again, so a late duplicate cannot turn it back into a failure.
 */
export async function recordDeliveryOutcomes(outcomes: DeliveryOutcome[], transaction?: Transaction): Promise<void> {
  await inSlices(outcomes, async (slice) => {
    const error = (o: DeliveryOutcome) => ('error' in o ? o.error.slice(0, 1000) : null);
    await sequelize().query(
      `WITH v AS (SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::text[], $4::int[], $5::varchar[], $6::int[], $7::text[])
                    AS v(key, provider_id, error, attempt, shown_as, duration_ms, detail)),
       recorded AS (UPDATE deliveries d SET
           status = CASE WHEN v.error IS NULL THEN 'sent' ELSE d.status END,
           provider_id = CASE WHEN v.error IS NULL THEN v.provider_id ELSE d.provider_id END,
           error = v.error, attempts = d.attempts + 1, last_attempt_at = now(), updated_at = now()
         FROM v WHERE d.key = v.key AND d.status <> 'sent'
         RETURNING d.key, d.tenant_id, d.subject_type, d.subject_id, d.channel, d.recipient)
       INSERT INTO delivery_attempts (tenant_id, delivery_key, subject_type, subject_id, channel, recipient, attempt, status, error, duration_ms, detail, at)
       SELECT r.tenant_id, r.key, r.subject_type, r.subject_id, r.channel, COALESCE(v.shown_as, r.recipient), v.attempt,
              CASE WHEN v.error IS NULL THEN 'sent' ELSE 'failed' END, v.error, v.duration_ms, v.detail::jsonb, now()
       FROM recorded r JOIN v ON v.key = r.key WHERE v.attempt IS NOT NULL`,
      {
        bind: [slice.map((o) => o.key), slice.map((o) => ('providerId' in o ? o.providerId?.slice(0, 300) ?? null : null)), slice.map(error),
          slice.map((o) => o.log?.attempt ?? null), slice.map((o) => o.log?.shownAs?.slice(0, 1000) ?? null), slice.map((o) => o.log?.durationMs ?? null),
          slice.map((o) => (o.log?.detail ? JSON.stringify(o.log.detail) : null))],
        transaction,
      },
    );
  });
}

/** Gives up on deliveries not sent (retries spent, or refused for good): they end `failed`, kept as a dead letter. */
export async function giveUpDeliveries(keys: string[], error: string): Promise<void> {
  await Delivery.update({ status: 'failed', error: error.slice(0, 1000) }, { where: { key: keys, status: ['pending', 'failed'] } });
}
