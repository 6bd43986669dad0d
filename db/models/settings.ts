// The tenant's settings (0013): sending limits, read by lib/send-limiter.ts with SQL of its own.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export class SendSettings extends Model<InferAttributes<SendSettings>, InferCreationAttributes<SendSettings>> {
  declare tenantId: string;
  declare maxPerMinute: number;
  declare maxConcurrent: number;
  declare updatedBy: string | null;
  declare updatedAt: CreationOptional<Date>;
}

/** The roles told of every new approval request (domains/settings; read by the approval activities). */
export class ApprovalSettings extends Model<InferAttributes<ApprovalSettings>, InferCreationAttributes<ApprovalSettings>> {
  declare tenantId: string;
  declare notifyOnRequestRoles: string[];
  declare updatedBy: string | null;
  declare updatedAt: CreationOptional<Date>;
}

export function initSettingsModels(sequelize: Sequelize): void {
  SendSettings.init({
    tenantId: { type: DataTypes.UUID, primaryKey: true }, maxPerMinute: DataTypes.INTEGER, maxConcurrent: DataTypes.INTEGER,
    updatedBy: DataTypes.STRING, updatedAt: DataTypes.DATE,
  }, { sequelize, underscored: true, tableName: 'tenant_send_settings', createdAt: false });
  ApprovalSettings.init({
    tenantId: { type: DataTypes.UUID, primaryKey: true }, notifyOnRequestRoles: DataTypes.ARRAY(DataTypes.TEXT),
    updatedBy: DataTypes.STRING, updatedAt: DataTypes.DATE,
  }, { sequelize, underscored: true, tableName: 'tenant_approval_settings', createdAt: false });
}
