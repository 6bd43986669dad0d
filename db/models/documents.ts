// Document templates (versioned, with parts), generated documents (the read model of their jobs) and batches.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export type DocumentStatus = 'queued' | 'rendering' | 'ready' | 'failed';
export type BatchStatus = 'queued' | 'running' | 'ready' | 'failed';
export type DocumentOutput = 'pdf' | 'html';

export interface TemplateParts {
  base: string;
  header: string;
  footer: string;
  css: string;
  partials: Record<string, string>;
}

export interface TemplateSettings {
  paperSize: 'A3' | 'A4' | 'A5' | 'Letter' | 'Legal';
  orientation: 'portrait' | 'landscape';
  margins: { top: string; right: string; bottom: string; left: string };
  /** strict: a missing variable fails the document with its path; lenient: it renders as empty. */
  variables: 'strict' | 'lenient';
}

export class DocumentTemplate extends Model<InferAttributes<DocumentTemplate>, InferCreationAttributes<DocumentTemplate>> {
  declare id: string;
  declare tenantId: string;
  declare code: string;
  declare name: string;
  declare description: string | null;
  declare settings: TemplateSettings;
  declare parts: TemplateParts;
  declare version: number;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class DocumentTemplateVersion extends Model<InferAttributes<DocumentTemplateVersion>, InferCreationAttributes<DocumentTemplateVersion>> {
  declare templateId: string;
  declare version: number;
  declare tenantId: string;
  declare name: string;
  declare description: string | null;
  declare settings: TemplateSettings;
  declare parts: TemplateParts;
  declare createdBy: string | null;
  declare createdAt: CreationOptional<Date>;
}

export class DocumentBatch extends Model<InferAttributes<DocumentBatch>, InferCreationAttributes<DocumentBatch>> {
  declare id: string;
  declare tenantId: string;
  declare templateId: string;
  declare templateVersion: number;
  declare output: DocumentOutput;
  declare status: BatchStatus;
  declare total: number;
  declare done: CreationOptional<number>;
  declare failed: CreationOptional<number>;
  declare workflowId: string;
  declare createdBy: string | null;
  declare completedAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class Document extends Model<InferAttributes<Document>, InferCreationAttributes<Document>> {
  declare id: string;
  declare tenantId: string;
  declare templateId: string;
  declare templateCode: string;
  declare templateVersion: number;
  declare batchId: string | null;
  declare batchIndex: number | null;
  declare output: DocumentOutput;
  declare fileName: string;
  declare objectType: string | null;
  declare objectId: string | null;
  declare data: Record<string, unknown>;
  declare status: DocumentStatus;
  declare error: CreationOptional<string | null>;
  declare fileId: CreationOptional<string | null>;
  declare contentHash: CreationOptional<string | null>;
  declare originKey: string | null;
  declare workflowId: string;
  declare createdBy: string | null;
  declare completedAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function initDocumentModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  DocumentTemplate.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, code: DataTypes.STRING, name: DataTypes.STRING,
    description: DataTypes.TEXT, settings: DataTypes.JSONB, parts: DataTypes.JSONB, version: DataTypes.INTEGER,
    createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'document_templates' });
  DocumentTemplateVersion.init({
    templateId: { type: DataTypes.UUID, primaryKey: true }, version: { type: DataTypes.INTEGER, primaryKey: true }, tenantId: DataTypes.UUID,
    name: DataTypes.STRING, description: DataTypes.TEXT, settings: DataTypes.JSONB, parts: DataTypes.JSONB, createdBy: DataTypes.STRING,
    createdAt: DataTypes.DATE,
  }, { ...opts, tableName: 'document_template_versions', updatedAt: false });
  DocumentBatch.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, templateId: DataTypes.UUID, templateVersion: DataTypes.INTEGER,
    output: DataTypes.STRING, status: DataTypes.STRING, total: DataTypes.INTEGER,
    done: { type: DataTypes.INTEGER, defaultValue: 0 }, failed: { type: DataTypes.INTEGER, defaultValue: 0 },
    workflowId: DataTypes.STRING, createdBy: DataTypes.STRING, completedAt: DataTypes.DATE, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'document_batches' });
  Document.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, templateId: DataTypes.UUID, templateCode: DataTypes.STRING,
    templateVersion: DataTypes.INTEGER, batchId: DataTypes.UUID, batchIndex: DataTypes.INTEGER, output: DataTypes.STRING,
    fileName: DataTypes.STRING, objectType: DataTypes.STRING, objectId: DataTypes.STRING, data: DataTypes.JSONB, status: DataTypes.STRING,
    error: DataTypes.TEXT, fileId: DataTypes.UUID, contentHash: DataTypes.STRING, originKey: DataTypes.STRING, workflowId: DataTypes.STRING,
    createdBy: DataTypes.STRING, completedAt: DataTypes.DATE, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'documents' });
}
