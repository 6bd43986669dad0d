// The row of an export run as a workflow (audit_exports, subscriber_exports): one shape, declared once; each export
// is a model of its own table with its own filters.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model } from 'sequelize';

export type ExportStatus = 'queued' | 'running' | 'ready' | 'failed';

export abstract class ExportJobModel<M extends ExportJobModel<M, F>, F> extends Model<InferAttributes<M>, InferCreationAttributes<M>> {
  declare id: string;
  declare tenantId: string;
  declare status: ExportStatus;
  declare filters: F;
  declare totalRows: CreationOptional<number | null>;
  declare rowsWritten: CreationOptional<number>;
  declare fileId: CreationOptional<string | null>;
  declare error: CreationOptional<string | null>;
  declare workflowId: string;
  declare requestedBy: string | null;
  declare completedAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** The columns of an export's table, for its model's `init`. */
export const exportJobAttributes = () => ({
  id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, status: DataTypes.STRING, filters: DataTypes.JSONB,
  totalRows: DataTypes.INTEGER, rowsWritten: DataTypes.INTEGER, fileId: DataTypes.UUID, error: DataTypes.TEXT,
  workflowId: DataTypes.STRING, requestedBy: DataTypes.STRING, completedAt: DataTypes.DATE, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
});

/**
 * The where of an export's row while it is not finished: an attempt, a late failure write or a cancel never changes
 * an export that is ready or failed.
 */
export const unfinishedExport = (input: { exportId: string; tenantId: string }) =>
  ({ id: input.exportId, tenantId: input.tenantId, status: ['queued', 'running'] as ExportStatus[] });
