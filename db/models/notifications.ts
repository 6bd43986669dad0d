// Notification templates (0022): a tenant's override of a built-in notification text, per type, channel and locale.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export type NotificationChannel = 'email' | 'in_app';
export type NotificationTemplateStatus = 'draft' | 'active' | 'archived';
/** email: subject, text and (optionally) html; in_app: title and body. */
export type NotificationParts = Partial<Record<'subject' | 'html' | 'text' | 'title' | 'body', string>>;

export class NotificationTemplate extends Model<InferAttributes<NotificationTemplate>, InferCreationAttributes<NotificationTemplate>> {
  declare id: string;
  declare tenantId: string;
  declare type: string;
  declare channel: NotificationChannel;
  declare locale: string;
  declare status: NotificationTemplateStatus;
  declare parts: NotificationParts;
  declare version: number;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class NotificationTemplateVersion extends Model<InferAttributes<NotificationTemplateVersion>, InferCreationAttributes<NotificationTemplateVersion>> {
  declare templateId: string;
  declare version: number;
  declare tenantId: string;
  declare status: NotificationTemplateStatus;
  declare parts: NotificationParts;
  declare createdBy: string | null;
  declare createdAt: CreationOptional<Date>;
}

export function initNotificationModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  NotificationTemplate.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, type: DataTypes.STRING, channel: DataTypes.STRING,
    locale: DataTypes.STRING, status: DataTypes.STRING, parts: DataTypes.JSONB, version: DataTypes.INTEGER,
    createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'notification_templates' });
  NotificationTemplateVersion.init({
    templateId: { type: DataTypes.UUID, primaryKey: true }, version: { type: DataTypes.INTEGER, primaryKey: true }, tenantId: DataTypes.UUID,
    status: DataTypes.STRING, parts: DataTypes.JSONB, createdBy: DataTypes.STRING, createdAt: DataTypes.DATE,
  }, { ...opts, tableName: 'notification_template_versions', updatedAt: false });
}
