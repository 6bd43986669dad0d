// Reminders (read model of the reminder workflows), their delivery attempts, in-app notifications,
// job schedules (mirrors of Temporal Schedules) and job runs. Deliveries' natural keys live in
// notification_deliveries (0002): one row per (reminder, occurrence, trigger, channel, recipient).
import { DataTypes, QueryInterface } from 'sequelize';

const tenantId = { type: DataTypes.UUID, allowNull: false, references: { model: 'tenants', key: 'id' }, onDelete: 'CASCADE' };
const stamps = {
  created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  updated_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
};

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.createTable('reminders', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    subject: { type: DataTypes.STRING(300), allowNull: false },
    message: { type: DataTypes.TEXT, allowNull: false, defaultValue: '' },
    object_type: { type: DataTypes.STRING(100), allowNull: true },
    object_id: { type: DataTypes.STRING(200), allowNull: true },
    channels: { type: DataTypes.ARRAY(DataTypes.STRING(20)), allowNull: false },
    // users, emails and webhooks ({url, secret}); the secrets are never served back.
    recipients: { type: DataTypes.JSONB, allowNull: false },
    recipient_users: { type: DataTypes.ARRAY(DataTypes.UUID), allowNull: false, defaultValue: [] },
    recipient_emails: { type: DataTypes.ARRAY(DataTypes.STRING(320)), allowNull: false, defaultValue: [] },
    due_at: { type: DataTypes.DATE, allowNull: true },
    recurrence: { type: DataTypes.JSONB, allowNull: true },
    offsets: { type: DataTypes.ARRAY(DataTypes.INTEGER), allowNull: false },
    repeat: { type: DataTypes.JSONB, allowNull: true },
    status: { type: DataTypes.STRING(20), allowNull: false },
    next_trigger_at: { type: DataTypes.DATE, allowNull: true },
    current_occurrence: { type: DataTypes.DATE, allowNull: true },
    snoozed_until: { type: DataTypes.DATE, allowNull: true },
    occurrence_count: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    acknowledged_at: { type: DataTypes.DATE, allowNull: true },
    // The workflow's whole state (which triggers of the occurrence fired): the dispatch preview reads it.
    state: { type: DataTypes.JSONB, allowNull: false },
    state_version: { type: DataTypes.INTEGER, allowNull: false, defaultValue: -1 },
    workflow_id: { type: DataTypes.STRING(300), allowNull: false },
    created_by: { type: DataTypes.STRING(200), allowNull: true },
    ...stamps,
  });
  await qi.addIndex('reminders', ['tenant_id', 'status', 'created_at']);
  await qi.addIndex('reminders', ['tenant_id', 'next_trigger_at']);
  await qi.addIndex('reminders', ['tenant_id', 'object_type', 'object_id']);
  await qi.sequelize.query('CREATE INDEX reminders_recipient_users ON reminders USING GIN (recipient_users)');
  await qi.sequelize.query('CREATE INDEX reminders_recipient_emails ON reminders USING GIN (recipient_emails)');

  await qi.createTable('reminder_delivery_attempts', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    tenant_id: tenantId,
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

  await qi.createTable('notifications', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    user_id: { type: DataTypes.UUID, allowNull: false, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
    // The delivery that created it: a retried activity creates one notification.
    delivery_key: { type: DataTypes.STRING(400), allowNull: false, unique: true },
    source_type: { type: DataTypes.STRING(50), allowNull: false },
    source_id: { type: DataTypes.STRING(200), allowNull: false },
    subject: { type: DataTypes.STRING(300), allowNull: false },
    message: { type: DataTypes.TEXT, allowNull: false },
    object_type: { type: DataTypes.STRING(100), allowNull: true },
    object_id: { type: DataTypes.STRING(200), allowNull: true },
    read: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    read_at: { type: DataTypes.DATE, allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  // Unread first, newest first: the order of GET /v1/me/notifications.
  await qi.addIndex('notifications', ['tenant_id', 'user_id', 'read', 'created_at']);

  await qi.createTable('job_schedules', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    name: { type: DataTypes.STRING(200), allowNull: false },
    job_type: { type: DataTypes.STRING(100), allowNull: false },
    params: { type: DataTypes.JSONB, allowNull: false, defaultValue: {} },
    cron: { type: DataTypes.STRING(200), allowNull: true },
    run_at: { type: DataTypes.DATE, allowNull: true },
    timezone: { type: DataTypes.STRING(100), allowNull: false },
    paused: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    overlap_policy: { type: DataTypes.STRING(30), allowNull: false },
    catchup_window_seconds: { type: DataTypes.INTEGER, allowNull: false },
    retry: { type: DataTypes.JSONB, allowNull: false },
    temporal_schedule_id: { type: DataTypes.STRING(300), allowNull: false },
    created_by: { type: DataTypes.STRING(200), allowNull: true },
    version: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 1 },
    ...stamps,
  });
  await qi.addIndex('job_schedules', ['tenant_id', 'created_at']);

  await qi.createTable('job_runs', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    schedule_id: { type: DataTypes.UUID, allowNull: true, references: { model: 'job_schedules', key: 'id' }, onDelete: 'SET NULL' },
    job_type: { type: DataTypes.STRING(100), allowNull: false },
    // One run row per workflow execution: a retried activity updates it.
    workflow_id: { type: DataTypes.STRING(400), allowNull: false, unique: true },
    status: { type: DataTypes.STRING(20), allowNull: false },
    started_at: { type: DataTypes.DATE, allowNull: false },
    finished_at: { type: DataTypes.DATE, allowNull: true },
    duration_ms: { type: DataTypes.INTEGER, allowNull: true },
    error: { type: DataTypes.TEXT, allowNull: true },
    result: { type: DataTypes.JSONB, allowNull: true },
    ...stamps,
  });
  await qi.addIndex('job_runs', ['tenant_id', 'schedule_id', 'started_at']);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  for (const t of ['job_runs', 'job_schedules', 'notifications', 'reminder_delivery_attempts', 'reminders']) await qi.dropTable(t);
}
