// The audience campaigns send to: subscribers, lists and list memberships (0012), segments (0013).
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';
import type { SubscriberFilters } from '../../workflows/audience.api';
import { exportJobAttributes, ExportJobModel } from './export-jobs';

export const SUBSCRIBER_STATUSES = ['active', 'unsubscribed', 'blocklisted', 'bounced'] as const;
export type SubscriberStatus = (typeof SUBSCRIBER_STATUSES)[number];

export class Subscriber extends Model<InferAttributes<Subscriber>, InferCreationAttributes<Subscriber>> {
  declare tenantId: string;
  declare id: string;
  /** Lower-cased; unique per tenant. */
  declare email: string;
  declare name: string | null;
  declare attributes: CreationOptional<Record<string, unknown>>;
  declare status: CreationOptional<SubscriberStatus>;
  /** The import that last wrote the row; cleared by any other write. */
  declare importId: CreationOptional<string | null>;
  declare erasedAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class SubscriberList extends Model<InferAttributes<SubscriberList>, InferCreationAttributes<SubscriberList>> {
  declare tenantId: string;
  declare id: string;
  declare name: string;
  declare description: CreationOptional<string>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class ListMember extends Model<InferAttributes<ListMember>, InferCreationAttributes<ListMember>> {
  declare tenantId: string;
  declare listId: string;
  declare subscriberId: string;
  declare importId: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
}

/** A saved filter over subscribers: rules validated and compiled by domains/audience/segments.ts. */
export class Segment extends Model<InferAttributes<Segment>, InferCreationAttributes<Segment>> {
  declare tenantId: string;
  declare id: string;
  declare name: string;
  declare description: CreationOptional<string>;
  declare rules: object;
  declare version: CreationOptional<number>;
  declare createdBy: string | null;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** An export of subscribers to CSV (0032): its workflow writes the file; the row says where it stands. */
export class SubscriberExport extends ExportJobModel<SubscriberExport, SubscriberFilters> {}

export function initAudienceModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  // A fresh object per attribute: Sequelize writes the column name into the definition it is given.
  const tenantKey = () => ({ type: DataTypes.UUID, primaryKey: true });
  Subscriber.init({
    tenantId: tenantKey(), id: { type: DataTypes.UUID, primaryKey: true }, email: DataTypes.STRING, name: DataTypes.STRING,
    attributes: DataTypes.JSONB, status: DataTypes.STRING, importId: DataTypes.UUID, erasedAt: DataTypes.DATE,
    createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'subscribers' });
  SubscriberList.init({
    tenantId: tenantKey(), id: { type: DataTypes.UUID, primaryKey: true }, name: DataTypes.STRING, description: DataTypes.TEXT,
    createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'lists' });
  ListMember.init({
    tenantId: tenantKey(), listId: { type: DataTypes.UUID, primaryKey: true }, subscriberId: { type: DataTypes.UUID, primaryKey: true },
    importId: DataTypes.UUID, createdAt: DataTypes.DATE,
  }, { ...opts, tableName: 'list_members', updatedAt: false });
  Segment.init({
    tenantId: tenantKey(), id: { type: DataTypes.UUID, primaryKey: true }, name: DataTypes.STRING, description: DataTypes.TEXT,
    rules: DataTypes.JSONB, version: DataTypes.INTEGER, createdBy: DataTypes.STRING, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'segments' });
  SubscriberExport.init(exportJobAttributes(), { ...opts, tableName: 'subscriber_exports' });
}
