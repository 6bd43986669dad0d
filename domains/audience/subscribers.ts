// Subscriber rules shared by the audience API and the imports that fill it: statuses, email keys, erasure.
import type { Sequelize, Transaction } from 'sequelize';
import { normalizeEmail } from '../imports/mapping/validate';

export { SUBSCRIBER_STATUSES, type SubscriberStatus } from '../../db/models/audience';
export { isEmail, normalizeEmail } from '../imports/mapping/validate';

/** A LIKE pattern for values starting with `s`, its own `%`, `_` and `\\` taken literally. */
export const likePrefix = (s: string): string => `${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Erases a subscriber's personal data: the row keeps its id (deliveries keep pointing at it, anonymised) but loses
 * its address, name, attributes and lists; what imports kept of it (before-images, rejected rows naming the address)
 * goes too, and so do the before/after images of its audit events. The address becomes a placeholder that can never
 * be mailed or match an import.
 */
export async function eraseSubscriber(sequelize: Sequelize, tenantId: string, subscriberId: string, within?: (transaction: Transaction) => Promise<void>): Promise<boolean> {
  return sequelize.transaction(async (transaction) => {
    const [rows] = await sequelize.query(`UPDATE subscribers s SET email = 'erased+' || s.id || '@erased.invalid', name = NULL, attributes = '{}',
        status = 'unsubscribed', erased_at = now(), updated_at = now()
      FROM (SELECT id, email FROM subscribers WHERE tenant_id = $1 AND id = $2 AND erased_at IS NULL FOR UPDATE) old
      WHERE s.tenant_id = $1 AND s.id = old.id RETURNING old.email`, { bind: [tenantId, subscriberId], transaction });
    const erased = rows as { email: string }[];
    if (!erased.length) return false;
    const email = normalizeEmail(erased[0].email);
    await sequelize.query('DELETE FROM list_members WHERE tenant_id = $1 AND subscriber_id = $2', { bind: [tenantId, subscriberId], transaction });
    await sequelize.query('DELETE FROM import_before_images WHERE tenant_id = $1 AND row_id = $2', { bind: [tenantId, subscriberId], transaction });
    // Rejected rows are kept as they were read: any cell holding the address (in any case) loses the row's cells.
    await sequelize.query(`UPDATE import_rejections SET raw = NULL WHERE tenant_id = $1 AND raw IS NOT NULL
      AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(raw) AS cell WHERE lower(trim(cell)) = $2)`, { bind: [tenantId, email], transaction });
    // Duplicate-row messages written before they stopped naming the key did name it.
    await sequelize.query(`UPDATE import_rejections SET message = replace(message, ' (' || $2 || ')', '') WHERE tenant_id = $1
      AND code = 'DUPLICATE_ENTRY' AND strpos(message, ' (' || $2 || ')') > 0`, { bind: [tenantId, email], transaction });
    // Deliveries to the address stay (a campaign's counts hold) with their recipient anonymised.
    await sequelize.query(`UPDATE deliveries SET recipient = 'erased+' || $3 || '@erased.invalid', updated_at = now()
      WHERE tenant_id = $1 AND channel = 'email' AND lower(recipient) = $2`, { bind: [tenantId, email, subscriberId], transaction });
    await sequelize.query(`UPDATE delivery_attempts SET recipient = 'erased+' || $3 || '@erased.invalid'
      WHERE tenant_id = $1 AND channel = 'email' AND lower(recipient) = $2`, { bind: [tenantId, email, subscriberId], transaction });
    // A campaign's recipient rows (its delivery ledger) keep their status, anonymised the same way.
    await sequelize.query(`UPDATE campaign_recipients SET email = 'erased+' || $2 || '@erased.invalid'
      WHERE tenant_id = $1 AND subscriber_id = $2`, { bind: [tenantId, subscriberId], transaction });
    // The audit log keeps that the subscriber was created, changed or erased, and by whom, but no longer what they
    // were: its before/after images held the address, name and attributes (GET /v1/audit-events, audit exports).
    await sequelize.query(`UPDATE audit_events SET before = CASE WHEN before IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END,
        after = CASE WHEN after IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END
      WHERE tenant_id = $1 AND entity_type = 'subscriber' AND entity_id = $2`, { bind: [tenantId, subscriberId], transaction });
    await within?.(transaction);
    return true;
  });
}
