// Sender domains: domains a tenant proved it controls, which its campaigns may send From (0042).
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export const SENDER_DOMAIN_STATUSES = ['pending', 'verified'] as const;
export type SenderDomainStatus = (typeof SENDER_DOMAIN_STATUSES)[number];

export class SenderDomain extends Model<InferAttributes<SenderDomain>, InferCreationAttributes<SenderDomain>> {
  declare tenantId: string;
  declare id: string;
  declare domain: string;
  declare token: string;
  declare status: CreationOptional<SenderDomainStatus>;
  declare verifiedAt: CreationOptional<Date | null>;
  declare createdBy: string | null;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function initSenderDomainModels(sequelize: Sequelize): void {
  SenderDomain.init({
    tenantId: { type: DataTypes.UUID, primaryKey: true }, id: { type: DataTypes.UUID, primaryKey: true },
    domain: DataTypes.STRING, token: DataTypes.STRING, status: DataTypes.STRING, verifiedAt: DataTypes.DATE,
    createdBy: DataTypes.UUID, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { sequelize, underscored: true, tableName: 'sender_domains' });
}
