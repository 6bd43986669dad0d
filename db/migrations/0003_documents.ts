// Documents: versioned HTML templates with parts, generated documents (one job each) and batches.
import { DataTypes, QueryInterface } from 'sequelize';

const tenantId = { type: DataTypes.UUID, allowNull: false, references: { model: 'tenants', key: 'id' }, onDelete: 'CASCADE' };
const stamps = {
  created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  updated_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
};

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.createTable('document_templates', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    code: { type: DataTypes.STRING(100), allowNull: false },
    name: { type: DataTypes.STRING(200), allowNull: false },
    description: { type: DataTypes.TEXT, allowNull: true },
    // Paper size, orientation, margins and strict/lenient variables.
    settings: { type: DataTypes.JSONB, allowNull: false },
    // base, header, footer, css and named partials: the raw Liquid/HTML/CSS text.
    parts: { type: DataTypes.JSONB, allowNull: false },
    version: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 1 },
    ...stamps,
  });
  await qi.addIndex('document_templates', ['tenant_id', 'code'], { unique: true });
  await qi.createTable('document_template_versions', {
    template_id: { type: DataTypes.UUID, primaryKey: true, references: { model: 'document_templates', key: 'id' }, onDelete: 'CASCADE' },
    version: { type: DataTypes.INTEGER, primaryKey: true },
    tenant_id: tenantId,
    name: { type: DataTypes.STRING(200), allowNull: false },
    description: { type: DataTypes.TEXT, allowNull: true },
    settings: { type: DataTypes.JSONB, allowNull: false },
    parts: { type: DataTypes.JSONB, allowNull: false },
    created_by: { type: DataTypes.STRING(200), allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  await qi.createTable('document_batches', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    template_id: { type: DataTypes.UUID, allowNull: false },
    template_version: { type: DataTypes.INTEGER, allowNull: false },
    output: { type: DataTypes.STRING(10), allowNull: false },
    status: { type: DataTypes.STRING(20), allowNull: false },
    total: { type: DataTypes.INTEGER, allowNull: false },
    done: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    failed: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    workflow_id: { type: DataTypes.STRING(300), allowNull: false },
    created_by: { type: DataTypes.STRING(200), allowNull: true },
    completed_at: { type: DataTypes.DATE, allowNull: true },
    ...stamps,
  });
  await qi.createTable('documents', {
    id: { type: DataTypes.UUID, primaryKey: true },
    tenant_id: tenantId,
    template_id: { type: DataTypes.UUID, allowNull: false },
    template_code: { type: DataTypes.STRING(100), allowNull: false },
    template_version: { type: DataTypes.INTEGER, allowNull: false },
    batch_id: { type: DataTypes.UUID, allowNull: true, references: { model: 'document_batches', key: 'id' }, onDelete: 'CASCADE' },
    batch_index: { type: DataTypes.INTEGER, allowNull: true },
    output: { type: DataTypes.STRING(10), allowNull: false },
    file_name: { type: DataTypes.STRING(255), allowNull: false },
    object_type: { type: DataTypes.STRING(100), allowNull: true },
    object_id: { type: DataTypes.STRING(200), allowNull: true },
    data: { type: DataTypes.JSONB, allowNull: false },
    status: { type: DataTypes.STRING(20), allowNull: false },
    error: { type: DataTypes.TEXT, allowNull: true },
    file_id: { type: DataTypes.UUID, allowNull: true },
    // sha256 of what was rendered from (template version, parts, data, output): the job's content key.
    content_hash: { type: DataTypes.STRING(64), allowNull: true },
    // A natural key for documents made by the system (e.g. a purchase order's approval): made once.
    origin_key: { type: DataTypes.STRING(300), allowNull: true },
    workflow_id: { type: DataTypes.STRING(300), allowNull: false },
    created_by: { type: DataTypes.STRING(200), allowNull: true },
    completed_at: { type: DataTypes.DATE, allowNull: true },
    ...stamps,
  });
  await qi.addIndex('documents', ['tenant_id', 'created_at']);
  await qi.addIndex('documents', ['tenant_id', 'object_type', 'object_id']);
  await qi.addIndex('documents', ['template_id', 'status']);
  // One row per batch item (NULLs are distinct, so single documents are not constrained).
  await qi.addIndex('documents', ['batch_id', 'batch_index'], { unique: true, name: 'documents_batch_item' });
  await qi.addIndex('documents', ['tenant_id', 'origin_key'], { unique: true, name: 'documents_origin_key' });
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  for (const t of ['documents', 'document_batches', 'document_template_versions', 'document_templates']) await qi.dropTable(t);
}
