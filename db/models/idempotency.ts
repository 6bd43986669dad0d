// Remembered responses of POSTs sent with an Idempotency-Key.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export class IdempotencyKey extends Model<InferAttributes<IdempotencyKey>, InferCreationAttributes<IdempotencyKey>> {
  declare tenantId: string;
  /** The credential that sent it: `key:<api key id>` or `user:<user id>` (a JWT). */
  declare principal: string;
  declare key: string;
  declare operationId: string;
  declare requestHash: string;
  declare statusCode: number | null;
  declare responseHeaders: Record<string, string> | null;
  declare responseBody: unknown;
  declare createdAt: CreationOptional<Date>;
}

export function initIdempotencyModels(sequelize: Sequelize): void {
  IdempotencyKey.init(
    {
      tenantId: { type: DataTypes.UUID, primaryKey: true }, principal: { type: DataTypes.STRING, primaryKey: true }, key: { type: DataTypes.STRING, primaryKey: true },
      operationId: { type: DataTypes.STRING, primaryKey: true }, requestHash: DataTypes.STRING, statusCode: DataTypes.INTEGER,
      responseHeaders: DataTypes.JSONB, responseBody: DataTypes.JSONB, createdAt: DataTypes.DATE,
    },
    { sequelize, underscored: true, tableName: 'idempotency_keys', updatedAt: false },
  );
}
