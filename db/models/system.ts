// Deployment-wide bookkeeping: the outbox of workflow starts (see db/migrations/0010_workflow_start_intents.ts).
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export class WorkflowStartIntent extends Model<InferAttributes<WorkflowStartIntent>, InferCreationAttributes<WorkflowStartIntent>> {
  declare workflowId: string;
  declare tenantId: string;
  declare workflowType: string;
  /** lib/temporal.ts StartBusinessWorkflow: everything needed to make the start again. */
  declare request: Record<string, unknown>;
  declare createdAt: CreationOptional<Date>;
}

export function initSystemModels(sequelize: Sequelize): void {
  WorkflowStartIntent.init(
    {
      workflowId: { type: DataTypes.STRING, primaryKey: true }, tenantId: DataTypes.UUID, workflowType: DataTypes.STRING,
      request: DataTypes.JSONB, createdAt: DataTypes.DATE,
    },
    { sequelize, underscored: true, tableName: 'workflow_start_intents', updatedAt: false },
  );
}
