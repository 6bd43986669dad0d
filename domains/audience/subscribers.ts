// Subscriber rules shared by the audience API and the imports that fill it: statuses, email keys, erasure.
import type { Sequelize, Transaction } from 'sequelize';
import { escapeRegExp } from '../campaigns/presenters';
import { normalizeEmail } from '../imports/mapping/validate';

export { SUBSCRIBER_STATUSES, type SubscriberStatus } from '../../db/models/audience';
export { isEmail, normalizeEmail } from '../imports/mapping/validate';

/** A LIKE pattern for values starting with `s`, its own `%`, `_` and `\\` taken literally. */
export const likePrefix = (s: string): string => `${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Erases a subscriber's personal data: the row keeps its id (deliveries keep pointing at it, anonymised) but loses
 * its address, name, attributes and lists; then eraseTraces scrubs what else names it. The address becomes a
 * placeholder that can never be mailed or match an import.
 */
export async function eraseSubscriber(sequelize: Sequelize, tenantId: string, subscriberId: string, within?: (transaction: Transaction) => Promise<void>): Promise<boolean> {
  return sequelize.transaction(async (transaction) => {
    const [rows] = await sequelize.query(`UPDATE subscribers s SET email = 'erased+' || s.id || '@erased.invalid', name = NULL, attributes = '{}',
        status = 'unsubscribed', erased_at = now(), updated_at = now()
      FROM (SELECT id, email FROM subscribers WHERE tenant_id = $1 AND id = $2 AND erased_at IS NULL FOR UPDATE) old
      WHERE s.tenant_id = $1 AND s.id = old.id RETURNING old.email`, { bind: [tenantId, subscriberId], transaction });
    const erased = rows as { email: string }[];
    if (!erased.length) return false;
    await sequelize.query('DELETE FROM list_members WHERE tenant_id = $1 AND subscriber_id = $2', { bind: [tenantId, subscriberId], transaction });
    await eraseTraces(sequelize, transaction, tenantId, subscriberId, normalizeEmail(erased[0].email));
    await within?.(transaction);
    return true;
  });
}

/**
 * Erases what is left of a subscriber that was deleted (no row): the address its audit events last named, and
 * everything eraseTraces scrubs for it. Answers `unknown` when the tenant's audit log never knew the id as a
 * subscriber, `erased` when its traces were erased already (or it named no address), else `done`.
 */
export async function eraseDeletedSubscriber(sequelize: Sequelize, tenantId: string, subscriberId: string, within?: (transaction: Transaction) => Promise<void>): Promise<'done' | 'erased' | 'unknown'> {
  return sequelize.transaction(async (transaction) => {
    // One erase of the id at a time: a second one, waiting here, then finds the images already cleared.
    await sequelize.query("SELECT pg_advisory_xact_lock(hashtext('subscriber-erase:' || $1 || ':' || $2))", { bind: [tenantId, subscriberId], transaction });
    const [rows] = await sequelize.query(`SELECT action, lower(COALESCE(after->>'email', before->>'email')) AS email FROM audit_events
      WHERE tenant_id = $1 AND entity_type = 'subscriber' AND entity_id = $2 ORDER BY id DESC`, { bind: [tenantId, subscriberId], transaction });
    const events = rows as { action: string; email: string | null }[];
    if (!events.length) return 'unknown';
    const email = events.find((e) => e.email)?.email;
    if (!email || events.some((e) => e.action === 'audience.subscriber.erased')) return 'erased';
    // Someone holds the address again: what is kept by address (deliveries, rejections) is theirs too, and goes when
    // they are erased (which reaches this subscriber's traces as well); here only what is kept by this id goes.
    const [holders] = await sequelize.query('SELECT 1 FROM subscribers WHERE tenant_id = $1 AND email = $2', { bind: [tenantId, email], transaction });
    await eraseTraces(sequelize, transaction, tenantId, subscriberId, email, { byAddress: !(holders as unknown[]).length });
    await within?.(transaction);
    return 'done';
  });
}

/**
 * Scrubs what else names a subscriber being erased (`email`, its address, lower-cased), in the erase's transaction:
 * what imports kept of it (before-images, rejected rows naming the address), its campaign recipient rows and
 * deliveries (anonymised, SMTP replies that quote the address included), the tenant's campaign errors quoting it,
 * and the before/after images of its audit events. Subscribers deleted earlier with the same address are erased with
 * it: their audit images and recipient rows still held the address. What is kept by address is scrubbed for each
 * address the subscriber had (its audit images name the earlier ones) that nobody holds now. `byAddress: false` (someone
 * holds `email` again) leaves what is kept under `email` to that holder's erase.
 */
async function eraseTraces(sequelize: Sequelize, transaction: Transaction, tenantId: string, subscriberId: string, email: string, opts = { byAddress: true }): Promise<void> {
  const placeholder = `erased+${subscriberId}@erased.invalid`;
  // A deleted subscriber's delete event named its last address (a subscriber erased before its delete names none).
  const [deleted] = opts.byAddress ? await sequelize.query(`SELECT DISTINCT entity_id FROM audit_events WHERE tenant_id = $1
    AND action = 'audience.subscriber.deleted' AND lower(before->>'email') = $2`, { bind: [tenantId, email], transaction }) : [[]];
  const ids = [...new Set([subscriberId, ...(deleted as { entity_id: string }[]).map((r) => r.entity_id)])];
  // Addresses it had before (an edit's before-image), read before the images go; one another subscriber holds now is
  // theirs, with what is kept under it.
  // Read whether or not `email` is held: the images are the only record of them, and they go below.
  const [earlier] = await sequelize.query(`SELECT DISTINCT a.email FROM audit_events e,
      LATERAL (VALUES (lower(e.before->>'email')), (lower(e.after->>'email'))) AS a(email)
    WHERE e.tenant_id = $1 AND e.entity_type = 'subscriber' AND e.entity_id = ANY($2::text[]) AND a.email IS NOT NULL AND a.email <> $3
      AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.tenant_id = $1 AND s.email = a.email)`, { bind: [tenantId, ids, email], transaction });
  const addresses = [email, ...(earlier as { email: string }[]).map((r) => r.email)];
  const pattern = addressPattern(addresses);
  await sequelize.query('DELETE FROM import_before_images WHERE tenant_id = $1 AND row_id = ANY($2::uuid[])', { bind: [tenantId, ids], transaction });
  // A campaign's recipient rows (its delivery ledger) keep their status, anonymised the same way, and so does the
  // server's reply to that recipient ("550 <a@b.c>: mailbox unavailable").
  await sequelize.query(`UPDATE campaign_recipients SET email = 'erased+' || subscriber_id || '@erased.invalid',
      error = regexp_replace(error, $3, 'erased+' || subscriber_id || '@erased.invalid', 'gi')
    WHERE tenant_id = $1 AND subscriber_id = ANY($2::uuid[])`, { bind: [tenantId, ids, pattern], transaction });
  // The audit log keeps that the subscriber was created, changed, deleted or erased, and by whom, but no longer what
  // it was: the before/after images held the address, name and attributes (GET /v1/audit-events, audit exports).
  await sequelize.query(`UPDATE audit_events SET before = CASE WHEN before IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END,
      after = CASE WHEN after IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END
    WHERE tenant_id = $1 AND entity_type = 'subscriber' AND entity_id = ANY($2::text[])`, { bind: [tenantId, ids], transaction });
  await eraseAddresses(sequelize, transaction, tenantId, opts.byAddress ? addresses : addresses.slice(1), placeholder);
}

/** Any of the addresses alone, not as a part of a longer one (jo+ann@x.com.au holds ann@x.com): a Postgres regular expression. */
const addressPattern = (emails: string[]) => `(?<![\\w.%+-])(?:${emails.map(escapeRegExp).join('|')})(?![\\w-]|\\.\\w)`;

/**
 * Scrubs what is kept by address (not by subscriber id) for all of `emails` (lower-cased) at once: rejected import rows,
 * deliveries and campaign errors. One pass whatever their number: a subscriber edited many times has many.
 */
async function eraseAddresses(sequelize: Sequelize, transaction: Transaction, tenantId: string, emails: string[], placeholder: string): Promise<void> {
  if (!emails.length) return;
  const pattern = addressPattern(emails);
  // Rejected rows are kept as they were read: any cell holding an address (in any case) loses the row's cells.
  await sequelize.query(`UPDATE import_rejections SET raw = NULL WHERE tenant_id = $1 AND raw IS NOT NULL
    AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(raw) AS cell WHERE lower(trim(cell)) = ANY($2::text[]))`, { bind: [tenantId, emails], transaction });
  // Duplicate-row messages written before they stopped naming the key did name it.
  const named = ` \\((?:${emails.map(escapeRegExp).join('|')})\\)`;
  await sequelize.query(`UPDATE import_rejections SET message = regexp_replace(message, $2, '', 'g') WHERE tenant_id = $1
    AND code = 'DUPLICATE_ENTRY' AND message ~ $2`, { bind: [tenantId, named], transaction });
  // Deliveries to the address stay (a campaign's counts hold) with their recipient anonymised, and so do their
  // attempts; an SMTP reply kept as the error quotes the address too.
  for (const table of ['deliveries', 'delivery_attempts']) {
    await sequelize.query(`UPDATE ${table} SET recipient = CASE WHEN lower(recipient) = ANY($2::text[]) THEN $3 ELSE recipient END,
        error = regexp_replace(error, $4, $3, 'gi')${table === 'deliveries' ? ', updated_at = now()' : ''}
      WHERE tenant_id = $1 AND channel = 'email' AND (lower(recipient) = ANY($2::text[]) OR error ~* $4)`, { bind: [tenantId, emails, placeholder, pattern], transaction });
  }
  // A campaign's last SMTP error (while the server was unreachable) or its error may quote a recipient's address.
  await sequelize.query(`UPDATE campaigns SET last_error = regexp_replace(last_error, $2, $3, 'gi'),
      error = regexp_replace(error::text, $2, $3, 'gi')::jsonb
    WHERE tenant_id = $1 AND (last_error ~* $2 OR error::text ~* $2)`, { bind: [tenantId, pattern, placeholder], transaction });
}
