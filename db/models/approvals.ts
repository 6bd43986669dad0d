// Approval templates (versioned), flows (the read model of the flow workflow) and their history; their
// emails are in the delivery ledger (deliveries.ts), their used links in links.ts.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';
import type { FlowState, FlowStatus, HistoryEvent, TemplateDef } from '../../workflows/approvals.api';

export class ApprovalTemplate extends Model<InferAttributes<ApprovalTemplate>, InferCreationAttributes<ApprovalTemplate>> {
  declare id: string;
  declare tenantId: string;
  declare name: string;
  declare objectType: string;
  declare condition: string | null;
  declare priority: number;
  declare definition: TemplateDef;
  declare version: number;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class ApprovalTemplateVersion extends Model<InferAttributes<ApprovalTemplateVersion>, InferCreationAttributes<ApprovalTemplateVersion>> {
  declare templateId: string;
  declare version: number;
  declare tenantId: string;
  declare name: string;
  declare condition: string | null;
  declare definition: TemplateDef;
  declare createdBy: string | null;
  declare createdAt: CreationOptional<Date>;
}

export class ApprovalFlow extends Model<InferAttributes<ApprovalFlow>, InferCreationAttributes<ApprovalFlow>> {
  declare id: string;
  declare tenantId: string;
  declare objectType: string;
  declare objectId: string;
  declare title: string;
  /** Null for an object type that needs no approval (approved at once, no template). */
  declare templateId: string | null;
  declare templateVersion: number | null;
  declare requesterId: string;
  declare status: FlowStatus;
  declare currentStage: number;
  declare state: FlowState;
  declare stateVersion: number;
  declare pendingApprovers: string[];
  declare context: Record<string, unknown>;
  declare workflowId: string;
  declare completedAt: Date | null;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class ApprovalEvent extends Model<InferAttributes<ApprovalEvent>, InferCreationAttributes<ApprovalEvent>> {
  declare flowId: string;
  declare seq: number;
  declare tenantId: string;
  declare type: HistoryEvent['type'];
  declare stage: number | null;
  declare actorId: string | null;
  declare decision: string | null;
  declare comment: string | null;
  declare at: Date;
}

export function initApprovalModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  ApprovalTemplate.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, name: DataTypes.STRING, objectType: DataTypes.STRING,
    condition: DataTypes.TEXT, priority: DataTypes.INTEGER, definition: DataTypes.JSONB, version: DataTypes.INTEGER,
    createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'approval_templates' });
  ApprovalTemplateVersion.init({
    templateId: { type: DataTypes.UUID, primaryKey: true }, version: { type: DataTypes.INTEGER, primaryKey: true }, tenantId: DataTypes.UUID,
    name: DataTypes.STRING, condition: DataTypes.TEXT, definition: DataTypes.JSONB, createdBy: DataTypes.STRING, createdAt: DataTypes.DATE,
  }, { ...opts, tableName: 'approval_template_versions', updatedAt: false });
  ApprovalFlow.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, objectType: DataTypes.STRING, objectId: DataTypes.STRING,
    title: DataTypes.STRING, templateId: DataTypes.UUID, templateVersion: DataTypes.INTEGER, requesterId: DataTypes.UUID,
    status: DataTypes.STRING, currentStage: DataTypes.INTEGER, state: DataTypes.JSONB, stateVersion: DataTypes.INTEGER,
    pendingApprovers: DataTypes.ARRAY(DataTypes.UUID), context: DataTypes.JSONB, workflowId: DataTypes.STRING,
    completedAt: DataTypes.DATE, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'approval_flows' });
  ApprovalEvent.init({
    flowId: { type: DataTypes.UUID, primaryKey: true }, seq: { type: DataTypes.INTEGER, primaryKey: true }, tenantId: DataTypes.UUID,
    type: DataTypes.STRING, stage: DataTypes.INTEGER, actorId: DataTypes.STRING, decision: DataTypes.STRING, comment: DataTypes.TEXT, at: DataTypes.DATE,
  }, { ...opts, tableName: 'approval_events', timestamps: false });
}
