// Campaigns and their recipients (0014).
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export const CAMPAIGN_STATUSES = ['draft', 'scheduled', 'running', 'paused', 'finished', 'cancelled', 'failed'] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

export const RECIPIENT_STATUSES = ['pending', 'sent', 'failed', 'skipped'] as const;
export type RecipientStatus = (typeof RECIPIENT_STATUSES)[number];

export interface CampaignAudience {
  listIds: string[];
  segmentIds: string[];
  excludeListIds: string[];
  excludeSegmentIds: string[];
}

export class Campaign extends Model<InferAttributes<Campaign>, InferCreationAttributes<Campaign>> {
  declare tenantId: string;
  declare id: string;
  declare name: string;
  declare subject: string;
  declare fromEmail: string;
  declare fromName: string | null;
  declare replyTo: string | null;
  declare html: string;
  declare text: string;
  declare audience: CampaignAudience;
  declare status: CreationOptional<CampaignStatus>;
  declare retrying: CreationOptional<boolean>;
  declare lastError: CreationOptional<string | null>;
  declare error: CreationOptional<{ code: string; message: string } | null>;
  declare sendAt: CreationOptional<Date | null>;
  declare timeZone: CreationOptional<string | null>;
  declare version: CreationOptional<number>;
  declare workflowId: CreationOptional<string | null>;
  declare run: CreationOptional<number>;
  declare runStartedAt: CreationOptional<Date | null>;
  declare audienceSize: CreationOptional<number | null>;
  declare sent: CreationOptional<number>;
  declare failed: CreationOptional<number>;
  declare skipped: CreationOptional<number>;
  declare ratePerMinute: CreationOptional<number | null>;
  declare progressAt: CreationOptional<Date | null>;
  declare createdBy: string | null;
  declare startedAt: CreationOptional<Date | null>;
  declare finishedAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class CampaignRecipient extends Model<InferAttributes<CampaignRecipient>, InferCreationAttributes<CampaignRecipient>> {
  declare tenantId: string;
  declare campaignId: string;
  declare n: number;
  declare subscriberId: string;
  declare email: string;
  declare status: CreationOptional<RecipientStatus>;
  declare attempts: CreationOptional<number>;
  declare messageId: CreationOptional<string | null>;
  declare smtpCode: CreationOptional<number | null>;
  declare error: CreationOptional<string | null>;
  declare updatedAt: CreationOptional<Date | null>;
}

export function initCampaignModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  Campaign.init({
    tenantId: { type: DataTypes.UUID, primaryKey: true }, id: { type: DataTypes.UUID, primaryKey: true },
    name: DataTypes.STRING, subject: DataTypes.STRING, fromEmail: DataTypes.STRING, fromName: DataTypes.STRING, replyTo: DataTypes.STRING,
    html: DataTypes.TEXT, text: DataTypes.TEXT, audience: DataTypes.JSONB, status: DataTypes.STRING, retrying: DataTypes.BOOLEAN,
    lastError: DataTypes.TEXT, error: DataTypes.JSONB, sendAt: DataTypes.DATE, timeZone: DataTypes.STRING, version: DataTypes.INTEGER,
    workflowId: DataTypes.STRING, run: DataTypes.INTEGER, runStartedAt: DataTypes.DATE, audienceSize: DataTypes.INTEGER,
    sent: DataTypes.INTEGER, failed: DataTypes.INTEGER, skipped: DataTypes.INTEGER, ratePerMinute: DataTypes.REAL, progressAt: DataTypes.DATE,
    createdBy: DataTypes.UUID, startedAt: DataTypes.DATE, finishedAt: DataTypes.DATE, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'campaigns' });
  CampaignRecipient.init({
    tenantId: DataTypes.UUID, campaignId: { type: DataTypes.UUID, primaryKey: true }, n: { type: DataTypes.INTEGER, primaryKey: true },
    subscriberId: DataTypes.UUID, email: DataTypes.STRING, status: DataTypes.STRING, attempts: DataTypes.SMALLINT,
    messageId: DataTypes.STRING, smtpCode: DataTypes.SMALLINT, error: DataTypes.TEXT, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'campaign_recipients', createdAt: false });
}
