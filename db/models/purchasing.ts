// Purchase orders: the example business object whose approval is an approval flow.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export type PurchaseOrderState = 'draft' | 'pending_approval' | 'approved' | 'rejected' | 'ordered';

export interface PurchaseOrderLine {
  description: string;
  quantity: number;
  unitPrice: number;
}

export class PurchaseOrder extends Model<InferAttributes<PurchaseOrder>, InferCreationAttributes<PurchaseOrder>> {
  declare id: string;
  declare tenantId: string;
  declare number: string;
  declare supplier: string;
  declare currency: string;
  declare lines: PurchaseOrderLine[];
  declare total: number;
  declare state: PurchaseOrderState;
  declare requesterId: string;
  /** Its author and everyone who edited it: none of them may approve it. */
  declare editorIds: CreationOptional<string[]>;
  declare approvalFlowId: CreationOptional<string | null>;
  declare version: CreationOptional<number>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function initPurchasingModels(sequelize: Sequelize): void {
  PurchaseOrder.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, number: DataTypes.STRING, supplier: DataTypes.STRING,
    currency: DataTypes.STRING, lines: DataTypes.JSONB,
    // DECIMAL arrives as a string from pg; totals stay well inside a double's exact range for cents.
    total: { type: DataTypes.DECIMAL(14, 2), get(this: PurchaseOrder) { return Number(this.getDataValue('total')); } },
    state: DataTypes.STRING, requesterId: DataTypes.UUID, approvalFlowId: DataTypes.UUID,
    editorIds: { type: DataTypes.ARRAY(DataTypes.UUID), allowNull: false, defaultValue: [] },
    version: { type: DataTypes.INTEGER, defaultValue: 0 }, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { sequelize, underscored: true, tableName: 'purchase_orders', version: true });
}
