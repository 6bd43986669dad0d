// The delivery ledger: one row per outbound delivery (email, webhook, in-app) of any domain, under its
// natural key, and one row per attempt at it. Written through lib/deliveries.ts.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export type DeliveryChannel = 'email' | 'webhook' | 'in_app';
/** `failed`: given up on (retries spent or refused for good); kept, as a dead letter is. */
export type DeliveryStatus = 'pending' | 'sent' | 'failed';

export class Delivery extends Model<InferAttributes<Delivery>, InferCreationAttributes<Delivery>> {
  /** The natural key, e.g. approvals:<flow>:<stage>:<kind>:<user>: one delivery, however often it is retried. */
  declare key: string;
  declare tenantId: string;
  declare channel: DeliveryChannel;
  declare recipient: string;
  declare subjectType: string;
  declare subjectId: string;
  declare status: DeliveryStatus;
  declare attempts: CreationOptional<number>;
  declare error: string | null;
  /** The provider's id of what was sent (SMTP Message-ID, HTTP status). */
  declare providerId: string | null;
  declare lastAttemptAt: CreationOptional<Date | null>;
  declare nextAttemptAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class DeliveryAttempt extends Model<InferAttributes<DeliveryAttempt>, InferCreationAttributes<DeliveryAttempt>> {
  declare id: CreationOptional<string>;
  declare tenantId: string;
  declare deliveryKey: string;
  declare subjectType: string;
  declare subjectId: string;
  declare channel: DeliveryChannel;
  declare recipient: string;
  declare attempt: number;
  declare status: 'sent' | 'failed';
  declare error: string | null;
  declare durationMs: number | null;
  declare detail: Record<string, unknown> | null;
  declare at: CreationOptional<Date>;
}

export function initDeliveryModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  Delivery.init({
    key: { type: DataTypes.STRING, primaryKey: true }, tenantId: DataTypes.UUID, channel: DataTypes.STRING, recipient: DataTypes.STRING,
    subjectType: DataTypes.STRING, subjectId: DataTypes.STRING, status: DataTypes.STRING, attempts: DataTypes.INTEGER,
    error: DataTypes.TEXT, providerId: DataTypes.STRING, lastAttemptAt: DataTypes.DATE, nextAttemptAt: DataTypes.DATE,
    createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'deliveries' });
  DeliveryAttempt.init({
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true }, tenantId: DataTypes.UUID, deliveryKey: DataTypes.STRING,
    subjectType: DataTypes.STRING, subjectId: DataTypes.STRING, channel: DataTypes.STRING, recipient: DataTypes.STRING,
    attempt: DataTypes.INTEGER, status: DataTypes.STRING, error: DataTypes.TEXT, durationMs: DataTypes.INTEGER, detail: DataTypes.JSONB, at: DataTypes.DATE,
  }, { ...opts, tableName: 'delivery_attempts', timestamps: false });
}
