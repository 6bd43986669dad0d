// Webhook endpoints and their deliveries (0017): a tenant's receivers of domain events, one delivery per (endpoint, event).
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export class WebhookEndpoint extends Model<InferAttributes<WebhookEndpoint>, InferCreationAttributes<WebhookEndpoint>> {
  declare id: string;
  declare tenantId: string;
  declare url: string;
  declare description: string | null;
  declare eventTypes: string[];
  declare enabled: boolean;
  declare disabledReason: string | null;
  /** Sealed (lib/secrets.ts): never presented. */
  declare secret: string;
  declare previousSecret: string | null;
  declare previousSecretExpiresAt: Date | null;
  /**
   * Set on a reminder's webhook recipient (0024): it receives that reminder's `reminder.fired` events only, and is
   * managed through the reminder, never through /v1/webhook-endpoints. `recipientIndex` is its place in the list.
   */
  declare reminderId: CreationOptional<string | null>;
  declare recipientIndex: CreationOptional<number | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** `failed`: an attempt failed and another is scheduled; `dead`: the retries are spent. */
export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed' | 'dead';

export class WebhookDelivery extends Model<InferAttributes<WebhookDelivery>, InferCreationAttributes<WebhookDelivery>> {
  declare id: string;
  declare tenantId: string;
  declare endpointId: string;
  declare eventId: string;
  declare eventType: string;
  declare deliveryKey: string;
  declare status: WebhookDeliveryStatus;
  declare attempts: CreationOptional<number>;
  /** Rows from before 0023 only: their per-delivery workflow was started. Nothing reads it now. */
  declare started: CreationOptional<boolean>;
  /** When it is next attempted (while pending or failed); pushed ahead while an attempt is claimed (the lease). */
  declare nextAttemptAt: Date | null;
  /** No attempt is scheduled after this: the delivery is then `dead`. */
  declare retryUntil: CreationOptional<Date>;
  declare lastAttemptAt: CreationOptional<Date | null>;
  declare lastStatusCode: CreationOptional<number | null>;
  declare lastError: CreationOptional<string | null>;
  declare deliveredAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function initWebhookModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  WebhookEndpoint.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, url: DataTypes.STRING, description: DataTypes.STRING,
    eventTypes: DataTypes.ARRAY(DataTypes.TEXT), enabled: DataTypes.BOOLEAN, disabledReason: DataTypes.STRING, secret: DataTypes.TEXT,
    previousSecret: DataTypes.TEXT, previousSecretExpiresAt: DataTypes.DATE, reminderId: DataTypes.UUID, recipientIndex: DataTypes.SMALLINT,
    createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'webhook_endpoints' });
  WebhookDelivery.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, endpointId: DataTypes.UUID, eventId: DataTypes.UUID,
    eventType: DataTypes.STRING, deliveryKey: DataTypes.STRING, status: DataTypes.STRING, attempts: { type: DataTypes.INTEGER, defaultValue: 0 },
    started: { type: DataTypes.BOOLEAN, defaultValue: false }, nextAttemptAt: DataTypes.DATE, retryUntil: DataTypes.DATE, lastAttemptAt: DataTypes.DATE, lastStatusCode: DataTypes.INTEGER,
    lastError: DataTypes.TEXT, deliveredAt: DataTypes.DATE, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'webhook_deliveries' });
}
