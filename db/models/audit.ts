// Audit events (append-only) and audit exports (the read model of the export workflow).
import type { AuditFilters } from '../../workflows/audit.api';
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export class AuditEvent extends Model<InferAttributes<AuditEvent>, InferCreationAttributes<AuditEvent>> {
  declare id: CreationOptional<string>; // BIGINT comes back as a string from pg
  declare tenantId: string;
  declare actorType: 'user' | 'api_key' | 'system';
  declare actorId: string | null;
  declare action: string;
  declare entityType: string;
  declare entityId: string;
  declare before: unknown;
  declare after: unknown;
  declare requestId: string | null;
  declare workflowId: string | null;
  declare eventKey: string | null;
  declare createdAt: CreationOptional<Date>;
}

export type ExportStatus = 'queued' | 'running' | 'ready' | 'failed';

export class AuditExport extends Model<InferAttributes<AuditExport>, InferCreationAttributes<AuditExport>> {
  declare id: string;
  declare tenantId: string;
  declare status: ExportStatus;
  declare filters: AuditFilters;
  declare totalRows: CreationOptional<number | null>;
  declare rowsWritten: CreationOptional<number>;
  declare fileId: CreationOptional<string | null>;
  declare error: CreationOptional<string | null>;
  declare workflowId: string;
  declare requestedBy: string | null;
  declare completedAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function initAuditModels(sequelize: Sequelize): void {
  AuditEvent.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      tenantId: DataTypes.UUID, actorType: DataTypes.STRING, actorId: DataTypes.STRING, action: DataTypes.STRING,
      entityType: DataTypes.STRING, entityId: DataTypes.STRING, before: DataTypes.JSONB, after: DataTypes.JSONB,
      requestId: DataTypes.STRING, workflowId: DataTypes.STRING, eventKey: DataTypes.STRING, createdAt: DataTypes.DATE,
    },
    { sequelize, underscored: true, tableName: 'audit_events', updatedAt: false },
  );
  AuditExport.init(
    {
      id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, status: DataTypes.STRING, filters: DataTypes.JSONB,
      totalRows: DataTypes.INTEGER, rowsWritten: DataTypes.INTEGER, fileId: DataTypes.UUID, error: DataTypes.TEXT,
      workflowId: DataTypes.STRING, requestedBy: DataTypes.STRING, completedAt: DataTypes.DATE,
      createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
    },
    { sequelize, underscored: true, tableName: 'audit_exports' },
  );
}
