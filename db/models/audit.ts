// Audit events (append-only) and audit exports (the read model of the export workflow).
import type { AuditFilters } from '../../workflows/audit.api';
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';
import { exportJobAttributes, ExportJobModel } from './export-jobs';

export type { ExportStatus } from './export-jobs';

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

export class AuditExport extends ExportJobModel<AuditExport, AuditFilters> {}

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
  AuditExport.init(exportJobAttributes(), { sequelize, underscored: true, tableName: 'audit_exports' });
}
