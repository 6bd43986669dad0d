// Delivery rows (notification_deliveries, one per natural key): outcomes of a batch of sends recorded in bulk.
import { NotificationDelivery } from '../../db/models/approvals';

export type DeliveryOutcome = { key: string; providerId: string } | { key: string; error: string };

/**
 * One UPDATE for every sent row and one for every failed row, whatever the batch size: a stage of 60
 * approvers is two statements, not 60. Each outcome counts an attempt; a row already `sent` is never
 * touched again (a late duplicate cannot turn it back into a failure).
 */
export async function recordDeliveryOutcomes(outcomes: DeliveryOutcome[]): Promise<void> {
  const sent = outcomes.flatMap((o) => ('providerId' in o ? [[o.key, o.providerId]] : []));
  const failed = outcomes.flatMap((o) => ('error' in o ? [[o.key, o.error.slice(0, 1000)]] : []));
  const sequelize = NotificationDelivery.sequelize!;
  const update = async (rows: string[][], set: string) => {
    if (!rows.length) return;
    // Bind parameters ($1, $2 …), two per row; VALUES is typed by its first row, hence the casts.
    const values = rows.map((_, i) => `($${2 * i + 1}::varchar, $${2 * i + 2}::text)`).join(', ');
    await sequelize.query(
      `UPDATE notification_deliveries AS d SET ${set}, attempts = d.attempts + 1, updated_at = now()
       FROM (VALUES ${values}) AS v(key, value) WHERE d.key = v.key AND d.status <> 'sent'`,
      { bind: rows.flat() },
    );
  };
  await update(sent, `status = 'sent', provider_id = v.value, error = NULL`);
  await update(failed, 'error = v.value');
}
