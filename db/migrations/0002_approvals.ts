// Approvals (templates with versions, flows, history), notification deliveries, used links, purchase orders.
import { DataTypes, QueryInterface } from 'sequelize';

const tenantId = { type: DataTypes.UUID, allowNull: false, references: { model: 'tenants', key: 'id' }, onDelete: 'CASCADE' };
const stamps = {
  created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  updated_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
};

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.createTable('approval_templates', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    name: { type: DataTypes.STRING(200), allowNull: false },
    object_type: { type: DataTypes.STRING(100), allowNull: false },
    condition: { type: DataTypes.TEXT, allowNull: true },
    priority: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    definition: { type: DataTypes.JSONB, allowNull: false },
    version: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 1 },
    ...stamps,
  });
  await qi.addIndex('approval_templates', ['tenant_id', 'object_type']);
  await qi.createTable('approval_template_versions', {
    template_id: { type: DataTypes.UUID, primaryKey: true, references: { model: 'approval_templates', key: 'id' }, onDelete: 'CASCADE' },
    version: { type: DataTypes.INTEGER, primaryKey: true },
    tenant_id: tenantId,
    name: { type: DataTypes.STRING(200), allowNull: false },
    condition: { type: DataTypes.TEXT, allowNull: true },
    definition: { type: DataTypes.JSONB, allowNull: false },
    created_by: { type: DataTypes.STRING(200), allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  await qi.createTable('approval_flows', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    object_type: { type: DataTypes.STRING(100), allowNull: false },
    object_id: { type: DataTypes.STRING(200), allowNull: false },
    title: { type: DataTypes.STRING(300), allowNull: false },
    template_id: { type: DataTypes.UUID, allowNull: false },
    template_version: { type: DataTypes.INTEGER, allowNull: false },
    requester_id: { type: DataTypes.UUID, allowNull: false },
    status: { type: DataTypes.STRING(20), allowNull: false },
    current_stage: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    state: { type: DataTypes.JSONB, allowNull: false },
    state_version: { type: DataTypes.INTEGER, allowNull: false, defaultValue: -1 },
    pending_approvers: { type: DataTypes.ARRAY(DataTypes.UUID), allowNull: false, defaultValue: [] },
    context: { type: DataTypes.JSONB, allowNull: false, defaultValue: {} },
    workflow_id: { type: DataTypes.STRING(300), allowNull: false },
    completed_at: { type: DataTypes.DATE, allowNull: true },
    ...stamps,
  });
  await qi.addIndex('approval_flows', ['tenant_id', 'status', 'created_at']);
  await qi.addIndex('approval_flows', ['tenant_id', 'object_type', 'object_id']);
  await qi.addIndex('approval_flows', ['template_id', 'status']);
  // One active flow per object: a second start finds the first.
  await qi.addIndex('approval_flows', ['tenant_id', 'object_type', 'object_id'], { unique: true, where: { status: 'pending' }, name: 'approval_flows_one_pending_per_object' });
  await qi.sequelize.query('CREATE INDEX approval_flows_pending_approvers ON approval_flows USING GIN (pending_approvers)');
  await qi.createTable('approval_events', {
    flow_id: { type: DataTypes.UUID, primaryKey: true, references: { model: 'approval_flows', key: 'id' }, onDelete: 'CASCADE' },
    seq: { type: DataTypes.INTEGER, primaryKey: true },
    tenant_id: tenantId,
    type: { type: DataTypes.STRING(40), allowNull: false },
    stage: { type: DataTypes.INTEGER, allowNull: true },
    actor_id: { type: DataTypes.STRING(200), allowNull: true },
    decision: { type: DataTypes.STRING(10), allowNull: true },
    comment: { type: DataTypes.TEXT, allowNull: true },
    at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.createTable('notification_deliveries', {
    // Natural key, e.g. approvals:<flow>:<stage>:<kind>:<user>: a retried activity sends once.
    key: { type: DataTypes.STRING(400), primaryKey: true },
    tenant_id: tenantId,
    channel: { type: DataTypes.STRING(20), allowNull: false },
    recipient: { type: DataTypes.STRING(320), allowNull: false },
    subject_type: { type: DataTypes.STRING(100), allowNull: false },
    subject_id: { type: DataTypes.STRING(200), allowNull: false },
    status: { type: DataTypes.STRING(20), allowNull: false },
    attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    error: { type: DataTypes.TEXT, allowNull: true },
    provider_id: { type: DataTypes.STRING(300), allowNull: true },
    ...stamps,
  });
  await qi.addIndex('notification_deliveries', ['tenant_id', 'subject_type', 'subject_id']);
  await qi.createTable('used_links', {
    nonce: { type: DataTypes.STRING(100), primaryKey: true },
    tenant_id: tenantId,
    used_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  await qi.createTable('purchase_orders', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    number: { type: DataTypes.STRING(50), allowNull: false },
    supplier: { type: DataTypes.STRING(200), allowNull: false },
    currency: { type: DataTypes.STRING(3), allowNull: false },
    lines: { type: DataTypes.JSONB, allowNull: false },
    total: { type: DataTypes.DECIMAL(14, 2), allowNull: false },
    state: { type: DataTypes.STRING(30), allowNull: false },
    requester_id: { type: DataTypes.UUID, allowNull: false },
    approval_flow_id: { type: DataTypes.UUID, allowNull: true },
    version: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    ...stamps,
  });
  await qi.addIndex('purchase_orders', ['tenant_id', 'number'], { unique: true });
  await qi.addIndex('purchase_orders', ['tenant_id', 'state', 'created_at']);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  for (const t of ['purchase_orders', 'used_links', 'notification_deliveries', 'approval_events', 'approval_flows', 'approval_template_versions', 'approval_templates']) {
    await qi.dropTable(t);
  }
}
