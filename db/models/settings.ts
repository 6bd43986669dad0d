// The tenant's settings: sending limits (0013, read by lib/send-limiter.ts with SQL of its own), approvals (0021,
// 0025) and notification defaults (0025).
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
  /** Object types whose submission is approved at once, recorded, with no template (0025). */
  declare notRequiredObjectTypes: CreationOptional<string[]>;
  /** Whether requesters hear how their flows ended (0025; on unless a tenant turns it off). */
  declare notifyRequesterOnDecision: CreationOptional<boolean>;
  declare updatedBy: string | null;
  declare updatedAt: CreationOptional<Date>;
}

/** The locale and time zone of the tenant's users who have not chosen their own (null: English, UTC). */
export class NotificationSettings extends Model<InferAttributes<NotificationSettings>, InferCreationAttributes<NotificationSettings>> {
  declare tenantId: string;
  declare defaultLocale: string | null;
  declare defaultTimeZone: string | null;
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
    notRequiredObjectTypes: { type: DataTypes.ARRAY(DataTypes.TEXT), defaultValue: [] },
    notifyRequesterOnDecision: { type: DataTypes.BOOLEAN, defaultValue: true },
    updatedBy: DataTypes.STRING, updatedAt: DataTypes.DATE,
  }, { sequelize, underscored: true, tableName: 'tenant_approval_settings', createdAt: false });
  NotificationSettings.init({
    tenantId: { type: DataTypes.UUID, primaryKey: true }, defaultLocale: DataTypes.STRING, defaultTimeZone: DataTypes.STRING,
    updatedBy: DataTypes.STRING, updatedAt: DataTypes.DATE,
  }, { sequelize, underscored: true, tableName: 'tenant_notification_settings', createdAt: false });
}
