// Stored files: metadata rows per tenant; the bytes live in the FileStore, addressed by sha256.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export class StoredFile extends Model<InferAttributes<StoredFile>, InferCreationAttributes<StoredFile>> {
  declare id: CreationOptional<string>;
  declare tenantId: string;
  declare sha256: string;
  declare size: number;
  declare contentType: string;
  declare filename: string;
  declare createdBy: string | null;
  declare originKey: string | null;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function initFileModels(sequelize: Sequelize): void {
  StoredFile.init(
    {
      id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      tenantId: DataTypes.UUID, sha256: DataTypes.STRING,
      // BIGINT arrives as a string from pg; files here stay far below 2^53 bytes.
      size: { type: DataTypes.BIGINT, get(this: StoredFile) { return Number(this.getDataValue('size')); } },
      contentType: DataTypes.STRING, filename: DataTypes.STRING, createdBy: DataTypes.STRING, originKey: DataTypes.STRING,
      createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
    },
    { sequelize, underscored: true, tableName: 'files' },
  );
}
