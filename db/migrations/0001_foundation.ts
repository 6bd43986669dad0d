// Foundation schema: identity, audit, files, idempotency and exports. Every row carries tenant_id.
import { DataTypes, QueryInterface } from 'sequelize';

const id = { type: DataTypes.UUID, primaryKey: true, allowNull: false };
const tenantId = { type: DataTypes.UUID, allowNull: false, references: { model: 'tenants', key: 'id' }, onDelete: 'CASCADE' };
const timestamps = {
  created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  updated_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
};

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.createTable('tenants', {
    id,
    name: { type: DataTypes.STRING(200), allowNull: false },
    slug: { type: DataTypes.STRING(100), allowNull: false, unique: true },
    ...timestamps,
  });
  await qi.createTable('users', {
    id,
    tenant_id: tenantId,
    email: { type: DataTypes.STRING(320), allowNull: false },
    name: { type: DataTypes.STRING(200), allowNull: false },
    active: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
    version: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    ...timestamps,
  });
  await qi.addIndex('users', ['tenant_id', 'email'], { unique: true });
  await qi.createTable('roles', {
    id,
    tenant_id: tenantId,
    key: { type: DataTypes.STRING(100), allowNull: false },
    title: { type: DataTypes.STRING(200), allowNull: false },
    permissions: { type: DataTypes.JSONB, allowNull: false, defaultValue: [] },
    version: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    ...timestamps,
  });
  await qi.addIndex('roles', ['tenant_id', 'key'], { unique: true });
  await qi.createTable('user_roles', {
    user_id: { type: DataTypes.UUID, allowNull: false, primaryKey: true, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
    role_id: { type: DataTypes.UUID, allowNull: false, primaryKey: true, references: { model: 'roles', key: 'id' }, onDelete: 'RESTRICT' },
    tenant_id: tenantId,
  });
  await qi.createTable('api_keys', {
    id,
    tenant_id: tenantId,
    user_id: { type: DataTypes.UUID, allowNull: false, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
    name: { type: DataTypes.STRING(200), allowNull: false },
    prefix: { type: DataTypes.STRING(32), allowNull: false, unique: true },
    secret_hash: { type: DataTypes.STRING(128), allowNull: false },
    // null = every permission of the owning user; otherwise the key is narrowed to these.
    scopes: { type: DataTypes.JSONB, allowNull: true },
    expires_at: { type: DataTypes.DATE, allowNull: true },
    revoked_at: { type: DataTypes.DATE, allowNull: true },
    last_used_at: { type: DataTypes.DATE, allowNull: true },
    ...timestamps,
  });
  await qi.addIndex('api_keys', ['tenant_id', 'created_at']);
  await qi.createTable('audit_events', {
    id: { type: DataTypes.BIGINT, autoIncrement: true, primaryKey: true },
    tenant_id: tenantId,
    actor_type: { type: DataTypes.STRING(20), allowNull: false },
    actor_id: { type: DataTypes.STRING(200), allowNull: true },
    action: { type: DataTypes.STRING(100), allowNull: false },
    entity_type: { type: DataTypes.STRING(100), allowNull: false },
    entity_id: { type: DataTypes.STRING(200), allowNull: false },
    before: { type: DataTypes.JSONB, allowNull: true },
    after: { type: DataTypes.JSONB, allowNull: true },
    request_id: { type: DataTypes.STRING(100), allowNull: true },
    workflow_id: { type: DataTypes.STRING(300), allowNull: true },
    // Natural key for events written by activities: a retried activity writes its event once.
    event_key: { type: DataTypes.STRING(400), allowNull: true, unique: true },
    created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  await qi.addIndex('audit_events', ['tenant_id', 'id']);
  await qi.addIndex('audit_events', ['tenant_id', 'entity_type', 'entity_id']);
  await qi.addIndex('audit_events', ['tenant_id', 'action']);
  await qi.addIndex('audit_events', ['tenant_id', 'actor_id']);
  await qi.addIndex('audit_events', ['tenant_id', 'created_at']);
  await qi.createTable('files', {
    id,
    tenant_id: tenantId,
    sha256: { type: DataTypes.STRING(64), allowNull: false },
    size: { type: DataTypes.BIGINT, allowNull: false },
    content_type: { type: DataTypes.STRING(200), allowNull: false },
    filename: { type: DataTypes.STRING(255), allowNull: false },
    created_by: { type: DataTypes.STRING(200), allowNull: true },
    // Set when a workflow stores a file, so a retried activity finds its first file.
    origin_key: { type: DataTypes.STRING(300), allowNull: true },
    ...timestamps,
  });
  await qi.addIndex('files', ['tenant_id', 'created_at']);
  await qi.addIndex('files', ['sha256']);
  await qi.addIndex('files', ['tenant_id', 'origin_key'], { unique: true });
  await qi.createTable('idempotency_keys', {
    tenant_id: { ...tenantId, primaryKey: true },
    key: { type: DataTypes.STRING(255), allowNull: false, primaryKey: true },
    operation_id: { type: DataTypes.STRING(100), allowNull: false, primaryKey: true },
    request_hash: { type: DataTypes.STRING(64), allowNull: false },
    status_code: { type: DataTypes.INTEGER, allowNull: true },
    response_headers: { type: DataTypes.JSONB, allowNull: true },
    response_body: { type: DataTypes.JSONB, allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  await qi.createTable('audit_exports', {
    id,
    tenant_id: tenantId,
    status: { type: DataTypes.STRING(20), allowNull: false },
    filters: { type: DataTypes.JSONB, allowNull: false, defaultValue: {} },
    total_rows: { type: DataTypes.INTEGER, allowNull: true },
    rows_written: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    file_id: { type: DataTypes.UUID, allowNull: true, references: { model: 'files', key: 'id' }, onDelete: 'SET NULL' },
    error: { type: DataTypes.TEXT, allowNull: true },
    workflow_id: { type: DataTypes.STRING(300), allowNull: false },
    requested_by: { type: DataTypes.STRING(200), allowNull: true },
    completed_at: { type: DataTypes.DATE, allowNull: true },
    ...timestamps,
  });
  await qi.addIndex('audit_exports', ['tenant_id', 'created_at']);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  for (const t of ['audit_exports', 'idempotency_keys', 'files', 'audit_events', 'api_keys', 'user_roles', 'roles', 'users', 'tenants']) {
    await qi.dropTable(t);
  }
}
