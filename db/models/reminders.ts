// Reminders (the read model of the reminder workflows) and in-app notifications; their deliveries and
// attempts are in the delivery ledger (deliveries.ts).
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';
import type { Recurrence } from '../../lib/recurrence';
import type { ReminderChannel, ReminderState, ReminderStatus, RepeatPolicy } from '../../workflows/reminders.api';

export interface StoredRecipients {
  users: string[];
  emails: string[];
  /**
   * The webhooks' URLs, for presentation. Each is a reminder endpoint (webhook_endpoints.reminder_id, 0024), which
   * holds its secret; rows written before 0024 held `{url, secret}` here, converted by that migration.
   */
  webhooks: { url: string }[];
}

export class Reminder extends Model<InferAttributes<Reminder>, InferCreationAttributes<Reminder>> {
  declare id: string;
  declare tenantId: string;
  declare subject: string;
  declare message: string;
  declare objectType: string | null;
  declare objectId: string | null;
  declare channels: ReminderChannel[];
  declare recipients: StoredRecipients;
  declare recipientUsers: string[];
  declare recipientEmails: string[];
  declare dueAt: Date | null;
  declare recurrence: Recurrence | null;
  declare offsets: number[];
  declare repeat: RepeatPolicy | null;
  declare status: ReminderStatus;
  declare nextTriggerAt: Date | null;
  declare currentOccurrence: Date | null;
  declare snoozedUntil: Date | null;
  declare occurrenceCount: CreationOptional<number>;
  declare acknowledgedAt: Date | null;
  declare state: ReminderState;
  declare stateVersion: number;
  declare workflowId: string;
  declare createdBy: string | null;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class Notification extends Model<InferAttributes<Notification>, InferCreationAttributes<Notification>> {
  declare id: string;
  declare tenantId: string;
  declare userId: string;
  declare deliveryKey: string;
  declare sourceType: string;
  declare sourceId: string;
  declare subject: string;
  declare message: string;
  declare objectType: string | null;
  declare objectId: string | null;
  declare read: CreationOptional<boolean>;
  declare readAt: Date | null;
  declare createdAt: CreationOptional<Date>;
}

export function initReminderModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  Reminder.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, subject: DataTypes.STRING, message: DataTypes.TEXT,
    objectType: DataTypes.STRING, objectId: DataTypes.STRING, channels: DataTypes.ARRAY(DataTypes.STRING), recipients: DataTypes.JSONB,
    recipientUsers: DataTypes.ARRAY(DataTypes.UUID), recipientEmails: DataTypes.ARRAY(DataTypes.STRING), dueAt: DataTypes.DATE,
    recurrence: DataTypes.JSONB, offsets: DataTypes.ARRAY(DataTypes.INTEGER), repeat: DataTypes.JSONB, status: DataTypes.STRING,
    nextTriggerAt: DataTypes.DATE, currentOccurrence: DataTypes.DATE, snoozedUntil: DataTypes.DATE, occurrenceCount: DataTypes.INTEGER,
    acknowledgedAt: DataTypes.DATE, state: DataTypes.JSONB, stateVersion: DataTypes.INTEGER, workflowId: DataTypes.STRING, createdBy: DataTypes.STRING,
    createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'reminders' });
  Notification.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, userId: DataTypes.UUID, deliveryKey: DataTypes.STRING,
    sourceType: DataTypes.STRING, sourceId: DataTypes.STRING, subject: DataTypes.STRING, message: DataTypes.TEXT,
    objectType: DataTypes.STRING, objectId: DataTypes.STRING, read: DataTypes.BOOLEAN, readAt: DataTypes.DATE, createdAt: DataTypes.DATE,
  }, { ...opts, tableName: 'notifications', updatedAt: false });
}
