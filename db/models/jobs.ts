// Job schedules (each mirrors one Temporal Schedule) and job runs (written by the job workflow's activities).
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export interface JobRetryPolicy {
  maximumAttempts: number;
  initialIntervalSeconds: number;
}

export type JobRunStatus = 'running' | 'completed' | 'failed' | 'cancelled';

export interface LongRunAlert { afterSeconds: number; users: string[]; roles: string[] }

export class JobSchedule extends Model<InferAttributes<JobSchedule>, InferCreationAttributes<JobSchedule>> {
  declare id: string;
  declare tenantId: string;
  declare name: string;
  declare jobType: string;
  declare params: Record<string, unknown>;
  declare cron: string | null;
  declare runAt: Date | null;
  declare timezone: string;
  declare paused: boolean;
  declare overlapPolicy: 'skip' | 'buffer_one' | 'buffer_all' | 'cancel_other' | 'terminate_other' | 'allow_all';
  declare catchupWindowSeconds: number;
  declare retry: JobRetryPolicy;
  /** Told by email when a run fails. */
  declare notifyOnFailure: { users: string[]; roles: string[] };
  /** Told by email when a run succeeds (migration 0035). */
  declare notifyOnSuccess: CreationOptional<{ users: string[]; roles: string[] }>;
  /** Told by email, once a run, when a run is still going after `afterSeconds` (migration 0035). */
  declare longRunAlert: CreationOptional<LongRunAlert | null>;
  declare temporalScheduleId: string;
  declare createdBy: string | null;
  declare version: number;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class JobRun extends Model<InferAttributes<JobRun>, InferCreationAttributes<JobRun>> {
  declare id: string;
  declare tenantId: string;
  declare scheduleId: string | null;
  declare jobType: string;
  declare workflowId: string;
  declare status: JobRunStatus;
  declare startedAt: Date;
  declare finishedAt: Date | null;
  declare durationMs: number | null;
  declare error: string | null;
  declare result: Record<string, unknown> | null;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function initJobModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  JobSchedule.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, name: DataTypes.STRING, jobType: DataTypes.STRING,
    params: DataTypes.JSONB, cron: DataTypes.STRING, runAt: DataTypes.DATE, timezone: DataTypes.STRING, paused: DataTypes.BOOLEAN,
    overlapPolicy: DataTypes.STRING, catchupWindowSeconds: DataTypes.INTEGER, retry: DataTypes.JSONB, notifyOnFailure: DataTypes.JSONB, notifyOnSuccess: DataTypes.JSONB, longRunAlert: DataTypes.JSONB, temporalScheduleId: DataTypes.STRING,
    createdBy: DataTypes.STRING, version: DataTypes.INTEGER, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'job_schedules' });
  JobRun.init({
    id: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID, scheduleId: DataTypes.UUID, jobType: DataTypes.STRING,
    workflowId: DataTypes.STRING, status: DataTypes.STRING, startedAt: DataTypes.DATE, finishedAt: DataTypes.DATE,
    durationMs: DataTypes.INTEGER, error: DataTypes.TEXT, result: DataTypes.JSONB, createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE,
  }, { ...opts, tableName: 'job_runs' });
}
