// Domain events (0016): the outbox every state change worth telling an integrator about writes with the change.
import { DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export class DomainEvent extends Model<InferAttributes<DomainEvent>, InferCreationAttributes<DomainEvent>> {
  declare tenantId: string;
  declare id: string;
  declare type: string;
  declare occurredAt: Date;
  declare subjectType: string;
  declare subjectId: string;
  declare data: Record<string, unknown>;
  declare eventKey: string | null;
}

export function initEventModels(sequelize: Sequelize): void {
  DomainEvent.init({
    tenantId: DataTypes.UUID, id: { type: DataTypes.UUID, primaryKey: true }, type: DataTypes.STRING, occurredAt: DataTypes.DATE,
    subjectType: DataTypes.STRING, subjectId: DataTypes.STRING, data: DataTypes.JSONB, eventKey: DataTypes.STRING,
  }, { sequelize, underscored: true, tableName: 'events', timestamps: false });
}
