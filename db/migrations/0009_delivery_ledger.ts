// One delivery ledger for every domain: each outbound delivery (email, webhook, in-app) is one row of
// `deliveries` under its natural key, and each attempt at it one row of `delivery_attempts`.
// notification_deliveries (approval emails, reminder deliveries) becomes `deliveries`; reminders' own
// attempt log (reminder_delivery_attempts) moves into delivery_attempts, ids kept.
import { DataTypes, QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q('ALTER TABLE notification_deliveries RENAME TO deliveries');
  await q('ALTER INDEX notification_deliveries_pkey RENAME TO deliveries_pkey');
  await q('DROP INDEX notification_deliveries_tenant_id_subject_type_subject_id');
  // A subject's deliveries by outcome: a campaign's failed recipients, a flow's pending emails.
  await qi.addIndex('deliveries', ['tenant_id', 'subject_type', 'subject_id', 'status']);
  await qi.addColumn('deliveries', 'last_attempt_at', { type: DataTypes.DATE, allowNull: true });
  // When a delivery retried over a long time (webhooks) is due again; null when nothing is scheduled.
  await qi.addColumn('deliveries', 'next_attempt_at', { type: DataTypes.DATE, allowNull: true });
  await q('UPDATE deliveries SET last_attempt_at = updated_at WHERE attempts > 0');

  await qi.createTable('delivery_attempts', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    tenant_id: { type: DataTypes.UUID, allowNull: false },
    delivery_key: { type: DataTypes.STRING(400), allowNull: false },
    subject_type: { type: DataTypes.STRING(100), allowNull: false },
    subject_id: { type: DataTypes.STRING(200), allowNull: false },
    channel: { type: DataTypes.STRING(20), allowNull: false },
    // As shown to people: the address, URL or user id the attempt went to.
    recipient: { type: DataTypes.STRING(1000), allowNull: false },
    attempt: { type: DataTypes.INTEGER, allowNull: false },
    status: { type: DataTypes.STRING(20), allowNull: false },
    error: { type: DataTypes.TEXT, allowNull: true },
    duration_ms: { type: DataTypes.INTEGER, allowNull: true },
    // What the subject needs to present the attempt (a reminder's occurrence and trigger).
    detail: { type: DataTypes.JSONB, allowNull: true },
    at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  // A subject's attempts newest first (GET /v1/reminders/{id}/deliveries), and one delivery's attempts.
  await qi.addIndex('delivery_attempts', ['tenant_id', 'subject_type', 'subject_id', 'at', 'id']);
  await qi.addIndex('delivery_attempts', ['delivery_key']);
  await q(`INSERT INTO delivery_attempts (id, tenant_id, delivery_key, subject_type, subject_id, channel, recipient, attempt, status, error, detail, at)
    SELECT id, tenant_id, delivery_key, 'reminder', reminder_id::text, channel, recipient, attempt, status, error,
      jsonb_build_object('occurrence', to_char(occurrence_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'trigger', trigger), at
    FROM reminder_delivery_attempts`);
  await q(`SELECT setval(pg_get_serial_sequence('delivery_attempts', 'id'), COALESCE((SELECT max(id) FROM delivery_attempts), 0) + 1, false)`);
  await qi.dropTable('reminder_delivery_attempts');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await qi.createTable('reminder_delivery_attempts', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    tenant_id: { type: DataTypes.UUID, allowNull: false, references: { model: 'tenants', key: 'id' }, onDelete: 'CASCADE' },
    reminder_id: { type: DataTypes.UUID, allowNull: false, references: { model: 'reminders', key: 'id' }, onDelete: 'CASCADE' },
    delivery_key: { type: DataTypes.STRING(400), allowNull: false },
    occurrence_at: { type: DataTypes.DATE, allowNull: false },
    trigger: { type: DataTypes.STRING(100), allowNull: false },
    channel: { type: DataTypes.STRING(20), allowNull: false },
    recipient: { type: DataTypes.STRING(1000), allowNull: false },
    attempt: { type: DataTypes.INTEGER, allowNull: false },
    status: { type: DataTypes.STRING(20), allowNull: false },
    error: { type: DataTypes.TEXT, allowNull: true },
    at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  await qi.addIndex('reminder_delivery_attempts', ['reminder_id', 'at']);
  await q(`INSERT INTO reminder_delivery_attempts (id, tenant_id, reminder_id, delivery_key, occurrence_at, trigger, channel, recipient, attempt, status, error, at)
    SELECT a.id, a.tenant_id, a.subject_id::uuid, a.delivery_key, (a.detail->>'occurrence')::timestamptz, a.detail->>'trigger', a.channel, a.recipient, a.attempt, a.status, a.error, a.at
    FROM delivery_attempts a JOIN reminders r ON r.id::text = a.subject_id WHERE a.subject_type = 'reminder'`);
  await q(`SELECT setval(pg_get_serial_sequence('reminder_delivery_attempts', 'id'), COALESCE((SELECT max(id) FROM reminder_delivery_attempts), 0) + 1, false)`);
  await qi.dropTable('delivery_attempts');
  await qi.removeColumn('deliveries', 'next_attempt_at');
  await qi.removeColumn('deliveries', 'last_attempt_at');
  await q('DROP INDEX deliveries_tenant_id_subject_type_subject_id_status');
  await q('ALTER INDEX deliveries_pkey RENAME TO notification_deliveries_pkey');
  await q('ALTER TABLE deliveries RENAME TO notification_deliveries');
  await qi.addIndex('notification_deliveries', ['tenant_id', 'subject_type', 'subject_id']);
}
