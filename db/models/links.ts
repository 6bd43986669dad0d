// Used one-click link tokens (lib/links.ts): a nonce claimed once, under a unique key, in the same
// transaction as what the link does.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export class UsedLink extends Model<InferAttributes<UsedLink>, InferCreationAttributes<UsedLink>> {
  declare nonce: string;
  declare tenantId: string;
  declare usedAt: CreationOptional<Date>;
}

export function initLinkModels(sequelize: Sequelize): void {
  UsedLink.init({ nonce: { type: DataTypes.STRING, primaryKey: true }, tenantId: DataTypes.UUID, usedAt: DataTypes.DATE }, { sequelize, underscored: true, tableName: 'used_links', timestamps: false });
}
