// Imports: runs, their row rejections and before-images, and versioned mapping templates (0012).
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';
import type { ImportRevertOutcome } from '../../workflows/imports.api';
import type { ColumnMapping, DetectedSource, ImportPhase, MergeStrategy, RowErrorCode, RowErrorPolicy, SourceOptions } from '../../domains/imports/types';

export class ImportRun extends Model<InferAttributes<ImportRun>, InferCreationAttributes<ImportRun>> {
  declare tenantId: string;
  declare id: string;
  declare target: string;
  declare fileId: string;
  declare fileSha256: string;
  declare fileName: string | null;
  declare fileSize: number;
  declare templateId: string | null;
  declare templateVersion: number | null;
  declare source: SourceOptions;
  declare columns: ColumnMapping[];
  declare keyField: string;
  declare mergeStrategy: MergeStrategy;
  declare dryRun: CreationOptional<boolean>;
  declare onRowError: CreationOptional<RowErrorPolicy>;
  declare phase: CreationOptional<ImportPhase>;
  declare detected: CreationOptional<DetectedSource | null>;
  declare rowsRead: CreationOptional<number>;
  declare rowsValid: CreationOptional<number>;
  declare rowsRejected: CreationOptional<number>;
  declare rowsCreated: CreationOptional<number>;
  declare rowsUpdated: CreationOptional<number>;
  declare rowsUnchanged: CreationOptional<number>;
  declare rowsSkipped: CreationOptional<number>;
  declare mergeCursor: CreationOptional<{ nextRow: number } | null>;
  declare error: CreationOptional<{ code: string; message: string; details?: unknown } | null>;
  declare workflowId: string;
  declare createdBy: string | null;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
  declare startedAt: CreationOptional<Date | null>;
  declare finishedAt: CreationOptional<Date | null>;
  declare revertedAt: CreationOptional<Date | null>;
  declare revertedBy: CreationOptional<string | null>;
  declare revertRequestedAt: CreationOptional<Date | null>;
  declare revertRequestedBy: CreationOptional<string | null>;
  /** What the last revert asked came to: the counts once reverted, or why it was refused (nothing changed). */
  declare revertOutcome: CreationOptional<ImportRevertOutcome | null>;
}

export class ImportRejection extends Model<InferAttributes<ImportRejection>, InferCreationAttributes<ImportRejection>> {
  declare tenantId: string;
  declare importId: string;
  declare rowNo: number;
  declare columnName: string | null;
  declare code: RowErrorCode;
  declare message: string;
  declare raw: string[] | null;
}

export class ImportBeforeImage extends Model<InferAttributes<ImportBeforeImage>, InferCreationAttributes<ImportBeforeImage>> {
  declare tenantId: string;
  declare importId: string;
  declare rowId: string;
  declare before: Record<string, unknown>;
}

interface TemplateBody {
  name: string;
  target: string;
  source: SourceOptions;
  columns: ColumnMapping[];
  keyField: string;
  mergeStrategy: MergeStrategy;
  createdBy: string | null;
}

export class ImportTemplate extends Model<InferAttributes<ImportTemplate>, InferCreationAttributes<ImportTemplate>> implements TemplateBody {
  declare tenantId: string;
  declare id: string;
  declare name: string;
  declare version: CreationOptional<number>;
  declare target: string;
  declare source: SourceOptions;
  declare columns: ColumnMapping[];
  declare keyField: string;
  declare mergeStrategy: MergeStrategy;
  declare createdBy: string | null;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class ImportTemplateVersion extends Model<InferAttributes<ImportTemplateVersion>, InferCreationAttributes<ImportTemplateVersion>> implements TemplateBody {
  declare tenantId: string;
  declare templateId: string;
  declare version: number;
  declare name: string;
  declare target: string;
  declare source: SourceOptions;
  declare columns: ColumnMapping[];
  declare keyField: string;
  declare mergeStrategy: MergeStrategy;
  declare createdBy: string | null;
  declare createdAt: CreationOptional<Date>;
}

export function initImportModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  // A fresh object per attribute: Sequelize writes the column name into the definition it is given.
  const key = () => ({ type: DataTypes.UUID, primaryKey: true });
  const template = {
    name: DataTypes.STRING, target: DataTypes.STRING, source: DataTypes.JSONB, columns: DataTypes.JSONB,
    keyField: DataTypes.STRING, mergeStrategy: DataTypes.STRING, createdBy: DataTypes.STRING,
  };
  ImportRun.init({
    tenantId: key(), id: key(), target: DataTypes.STRING, fileId: DataTypes.UUID, fileSha256: DataTypes.STRING, fileName: DataTypes.STRING,
    fileSize: DataTypes.BIGINT, templateId: DataTypes.UUID, templateVersion: DataTypes.INTEGER, source: DataTypes.JSONB,
    columns: DataTypes.JSONB, keyField: DataTypes.STRING, mergeStrategy: DataTypes.STRING, dryRun: DataTypes.BOOLEAN,
    onRowError: DataTypes.STRING, phase: DataTypes.STRING, detected: DataTypes.JSONB,
    rowsRead: DataTypes.INTEGER, rowsValid: DataTypes.INTEGER, rowsRejected: DataTypes.INTEGER, rowsCreated: DataTypes.INTEGER,
    rowsUpdated: DataTypes.INTEGER, rowsUnchanged: DataTypes.INTEGER, rowsSkipped: DataTypes.INTEGER, mergeCursor: DataTypes.JSONB,
    error: DataTypes.JSONB, workflowId: DataTypes.STRING, createdBy: DataTypes.STRING, createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE, startedAt: DataTypes.DATE, finishedAt: DataTypes.DATE, revertedAt: DataTypes.DATE, revertedBy: DataTypes.STRING,
    revertRequestedAt: DataTypes.DATE, revertRequestedBy: DataTypes.STRING, revertOutcome: DataTypes.JSONB,
  }, { ...opts, tableName: 'imports' });
  ImportRejection.init({
    tenantId: key(), importId: key(), rowNo: { type: DataTypes.INTEGER, primaryKey: true }, columnName: DataTypes.STRING,
    code: DataTypes.STRING, message: DataTypes.TEXT, raw: DataTypes.JSONB,
  }, { ...opts, tableName: 'import_rejections', timestamps: false });
  ImportBeforeImage.init({
    tenantId: key(), importId: key(), rowId: key(), before: DataTypes.JSONB,
  }, { ...opts, tableName: 'import_before_images', timestamps: false });
  ImportTemplate.init({
    tenantId: key(), id: key(), version: DataTypes.INTEGER, ...template, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'import_templates' });
  ImportTemplateVersion.init({
    tenantId: key(), templateId: key(), version: { type: DataTypes.INTEGER, primaryKey: true }, ...template, createdAt: DataTypes.DATE,
  }, { ...opts, tableName: 'import_template_versions', updatedAt: false });
}
