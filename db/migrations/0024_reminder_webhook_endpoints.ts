// Reminder webhooks move onto the webhook endpoints' delivery path: each webhook recipient of a reminder becomes a
// "reminder endpoint" (webhook_endpoints.reminder_id, subscribed to reminder.fired and matched only with its own
// reminder's events). Existing reminders' inline {url, secret} recipients are converted here, the sealed secret
// copied as it is (the same key signs); the reminder row keeps only the URLs, for its presentation.
import { QueryInterface, Sequelize } from 'sequelize';

/**
 * Converts the inline webhook recipients of every reminder that still holds secrets into reminder endpoints, and
 * strips the secrets from the row. Idempotent: a reminder whose webhooks hold no secret any more is left alone.
 * Only reminders that deliver by webhook get endpoints (a webhook listed without the channel never fired), and
 * those that have ended get them disabled (nothing of theirs fires again). Exported for the test that runs it on a
 * row written in the old shape.
 */
export async function convertInlineReminderWebhooks(sequelize: Sequelize): Promise<void> {
  await sequelize.transaction(async (transaction) => {
    const q = (sql: string) => sequelize.query(sql, { transaction });
    const holdsSecrets = `EXISTS (SELECT 1 FROM jsonb_array_elements(COALESCE(r.recipients->'webhooks', '[]'::jsonb)) h WHERE h ? 'secret')`;
    // now() as created_at: the relay delivers only events that occur after an endpoint exists, so nothing fired
    // (and sent the old way) before this migration is sent again.
    await q(`INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, enabled, disabled_reason, secret,
               previous_secret, previous_secret_expires_at, created_at, updated_at, reminder_id, recipient_index)
             SELECT gen_random_uuid(), r.tenant_id, w.hook->>'url', NULL, '{reminder.fired}', r.status NOT IN ('completed', 'cancelled'),
               CASE WHEN r.status IN ('completed', 'cancelled') THEN 'The reminder is ' || r.status END, w.hook->>'secret',
               NULL, NULL, now(), now(), r.id, w.i - 1
             FROM reminders r, jsonb_array_elements(r.recipients->'webhooks') WITH ORDINALITY AS w(hook, i)
             WHERE 'webhook' = ANY (r.channels) AND ${holdsSecrets}
             ON CONFLICT DO NOTHING`);
    await q(`UPDATE reminders r SET recipients = jsonb_set(r.recipients, '{webhooks}',
               (SELECT COALESCE(jsonb_agg(jsonb_build_object('url', h->>'url') ORDER BY i), '[]'::jsonb)
                  FROM jsonb_array_elements(r.recipients->'webhooks') WITH ORDINALITY AS x(h, i)))
             WHERE ${holdsSecrets}`);
  });
}

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`ALTER TABLE webhook_endpoints
    ADD COLUMN reminder_id uuid REFERENCES reminders (id) ON DELETE CASCADE,
    ADD COLUMN recipient_index smallint`);
  // A reminder's endpoints, one per recipient index; the relay's match and the reminder's reads use it.
  await qi.sequelize.query('CREATE UNIQUE INDEX webhook_endpoints_reminder ON webhook_endpoints (reminder_id, recipient_index) WHERE reminder_id IS NOT NULL');
  await convertInlineReminderWebhooks(qi.sequelize);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  // The secrets go back into the reminder rows (sealed as they are), then the reminder endpoints and the columns go.
  await qi.sequelize.query(`UPDATE reminders r SET recipients = jsonb_set(r.recipients, '{webhooks}', e.hooks)
    FROM (SELECT reminder_id, jsonb_agg(jsonb_build_object('url', url, 'secret', secret) ORDER BY recipient_index) AS hooks
          FROM webhook_endpoints WHERE reminder_id IS NOT NULL GROUP BY reminder_id) e
    WHERE e.reminder_id = r.id`);
  await qi.sequelize.query('DELETE FROM webhook_endpoints WHERE reminder_id IS NOT NULL');
  await qi.sequelize.query('DROP INDEX IF EXISTS webhook_endpoints_reminder');
  await qi.sequelize.query('ALTER TABLE webhook_endpoints DROP COLUMN reminder_id, DROP COLUMN recipient_index');
}
