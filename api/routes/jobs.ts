// Scheduled jobs: the job-type registry, job schedules kept in step with Temporal Schedules, run now,
// run history (from job_runs) and cancelling a running run.
import { randomUUID } from 'node:crypto';
import { ScheduleNotFoundError, ScheduleOptions, ScheduleOverlapPolicy, ScheduleUpdateOptions, WorkflowNotFoundError } from '@temporalio/client';
import { CronExpressionParser } from 'cron-parser';
import { IANAZone } from 'luxon';
import { JobRun, JobSchedule } from '../../db';
import { recordAudit } from '../../lib/audit';
import { checkJobParams, JOB_TYPES, JobParamsError } from '../../lib/job-types';
import { JOBS_DOMAIN, JOBS_TASK_QUEUE, JobRunInput } from '../../workflows/jobs.api';
import { businessWorkflowId, ENTITY_ID, ENTITY_TYPE, STATUS, TENANT_ID } from '../../workflows/search-attributes';
import { page, paginate, queryOf, respond } from '../conventions';
import { ApiError, notFound } from '../errors';
import { presentJobRun, presentJobSchedule } from '../presenters/reminders';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';

const OVERLAP: Record<JobSchedule['overlapPolicy'], ScheduleOverlapPolicy> = {
  skip: 'SKIP', buffer_one: 'BUFFER_ONE', buffer_all: 'BUFFER_ALL', cancel_other: 'CANCEL_OTHER', terminate_other: 'TERMINATE_OTHER', allow_all: 'ALLOW_ALL',
};

type Fields = Pick<JobSchedule, 'jobType' | 'params' | 'cron' | 'runAt' | 'timezone' | 'paused' | 'overlapPolicy' | 'catchupWindowSeconds' | 'retry'>;

/** Refuses a schedule Temporal would misread or the job would fail on: the reason is in the 422. */
function checkSchedule(f: Fields): void {
  try {
    checkJobParams(f.jobType, f.params);
  } catch (err) {
    if (err instanceof JobParamsError) throw new ApiError(422, 'INVALID_JOB', err.message);
    throw err;
  }
  if (!IANAZone.isValidZone(f.timezone)) throw new ApiError(422, 'INVALID_JOB', `timezone: "${f.timezone}" is not an IANA time zone`);
  if ((f.cron === null) === (f.runAt === null)) throw new ApiError(422, 'INVALID_JOB', 'Give exactly one of cron and runAt');
  if (f.cron !== null) {
    // Five fields exactly: Temporal reads six or seven as seconds/years, which would silently change the meaning.
    if (f.cron.trim().split(/\s+/).length !== 5) throw new ApiError(422, 'INVALID_CRON', `cron: "${f.cron}" must have 5 fields (minute hour day-of-month month day-of-week)`);
    try {
      CronExpressionParser.parse(f.cron, { tz: f.timezone });
    } catch (err) {
      throw new ApiError(422, 'INVALID_CRON', `cron: ${(err as Error).message}`);
    }
  }
  if (f.runAt !== null && f.runAt.getTime() <= Date.now()) throw new ApiError(422, 'TIME_IN_PAST', `runAt ${f.runAt.toISOString()} is in the past`);
  // A single run is a Temporal calendar entry, whose year must lie in 2000–2100.
  if (f.runAt !== null && f.runAt.getUTCFullYear() > 2100) throw new ApiError(422, 'INVALID_JOB', `runAt ${f.runAt.toISOString()} is after 2100 (Temporal schedules end there)`);
}

function spec(f: Fields): ScheduleOptions['spec'] {
  if (f.cron !== null) return { cronExpressions: [f.cron], timezone: f.timezone };
  const t = f.runAt!;
  const MONTHS = ['JANUARY', 'FEBRUARY', 'MARCH', 'APRIL', 'MAY', 'JUNE', 'JULY', 'AUGUST', 'SEPTEMBER', 'OCTOBER', 'NOVEMBER', 'DECEMBER'] as const;
  // A single instant, written as a UTC calendar entry that matches only that second.
  return { calendars: [{ year: t.getUTCFullYear(), month: MONTHS[t.getUTCMonth()], dayOfMonth: t.getUTCDate(), hour: t.getUTCHours(), minute: t.getUTCMinutes(), second: t.getUTCSeconds() }], timezone: 'UTC' };
}

function scheduleOptions(s: JobSchedule): ScheduleUpdateOptions {
  const input: JobRunInput = {
    tenantId: s.tenantId, scheduleId: s.id, jobType: s.jobType, params: s.params,
    retry: { maximumAttempts: s.retry.maximumAttempts, initialIntervalSeconds: s.retry.initialIntervalSeconds },
  };
  return {
    spec: spec(s),
    action: {
      type: 'startWorkflow', workflowType: 'jobRunWorkflow', taskQueue: JOBS_TASK_QUEUE, args: [input],
      // Temporal appends the scheduled time, so each run has its own id: jobs:<tenant>:<schedule>-<time>.
      workflowId: businessWorkflowId({ domain: JOBS_DOMAIN, tenantId: s.tenantId, entityId: s.id }),
      typedSearchAttributes: [
        { key: TENANT_ID, value: s.tenantId }, { key: ENTITY_TYPE, value: 'job_run' }, { key: ENTITY_ID, value: s.id }, { key: STATUS, value: 'running' },
      ],
    } as ScheduleUpdateOptions['action'],
    policies: { overlap: OVERLAP[s.overlapPolicy], catchupWindow: `${s.catchupWindowSeconds} seconds` },
    state: { paused: s.paused, ...(s.runAt ? { remainingActions: 1 } : {}) },
  } as ScheduleUpdateOptions;
}

const asFields = (b: Partial<Schemas['JobScheduleInput']>, base?: JobSchedule): Fields => ({
  jobType: b.jobType ?? base!.jobType,
  params: (b.params ?? base?.params ?? {}) as Record<string, unknown>,
  // A new cron replaces a run time and the other way round.
  cron: b.cron !== undefined ? b.cron : b.runAt !== undefined ? null : (base?.cron ?? null),
  runAt: b.runAt !== undefined ? new Date(b.runAt) : b.cron !== undefined ? null : (base?.runAt ?? null),
  timezone: b.timezone ?? base?.timezone ?? 'UTC',
  paused: b.paused ?? base?.paused ?? false,
  overlapPolicy: b.overlapPolicy ?? base?.overlapPolicy ?? 'skip',
  catchupWindowSeconds: b.catchupWindowSeconds ?? base?.catchupWindowSeconds ?? 60,
  retry: b.retry ? { maximumAttempts: b.retry.maximumAttempts, initialIntervalSeconds: b.retry.initialIntervalSeconds ?? 10 } : (base?.retry ?? { maximumAttempts: 3, initialIntervalSeconds: 10 }),
});

export function jobRoutes(deps: RouteDeps): Handlers {
  const schedules = () => deps.temporal.client.schedule;

  async function findSchedule(tenantId: string, id: string): Promise<JobSchedule> {
    const s = await JobSchedule.findOne({ where: { id, tenantId } });
    if (!s) throw notFound(`Job schedule ${id}`);
    return s;
  }
  async function findRun(tenantId: string, id: string): Promise<JobRun> {
    const r = await JobRun.findOne({ where: { id, tenantId } });
    if (!r) throw notFound(`Job run ${id}`);
    return r;
  }

  return {
    async listJobTypes(_c, ctx) {
      ctx.body = { items: JOB_TYPES };
    },

    async listJobSchedules(c, ctx) {
      const q = queryOf(c);
      ctx.body = page(await paginate(JobSchedule, { where: { tenantId: caller(ctx).tenant.id }, limit: q.int('limit'), cursor: q.str('cursor') }), (s) => presentJobSchedule(s));
    },

    async createJobSchedule(c, ctx) {
      const body = c.request.requestBody as Schemas['JobScheduleInput'];
      const fields = asFields(body);
      checkSchedule(fields);
      const audit = auditContext(ctx);
      const id = randomUUID();
      const temporalScheduleId = businessWorkflowId({ domain: JOBS_DOMAIN, tenantId: audit.tenantId, entityId: id });
      const s = await deps.sequelize.transaction(async (transaction) => {
        const created = await JobSchedule.create({ id, tenantId: audit.tenantId, name: body.name, ...fields, temporalScheduleId, createdBy: audit.actor.id, version: 1 }, { transaction });
        await recordAudit({ ...audit, action: 'jobs.schedule.created', entityType: 'job_schedule', entityId: id, after: presentJobSchedule(created) }, transaction);
        // Created inside the transaction: if Temporal refuses, no row is left without its schedule.
        await schedules().create({
          scheduleId: temporalScheduleId, ...(scheduleOptions(created) as Omit<ScheduleOptions, 'scheduleId'>),
          // The schedule itself is findable by tenant in the Temporal UI, like every Docket workflow.
          typedSearchAttributes: [{ key: TENANT_ID, value: audit.tenantId }, { key: ENTITY_TYPE, value: 'job_schedule' }, { key: ENTITY_ID, value: id }],
        });
        return created;
      });
      respond(ctx, presentJobSchedule(s), { status: 201, location: `/v1/job-schedules/${id}` });
    },

    async getJobSchedule(c, ctx) {
      const s = await findSchedule(caller(ctx).tenant.id, c.request.params.scheduleId as string);
      let next: Date[] = [];
      try {
        next = (await schedules().getHandle(s.temporalScheduleId).describe()).info.nextActionTimes;
      } catch (err) {
        if (!(err instanceof ScheduleNotFoundError)) throw err;
      }
      respond(ctx, presentJobSchedule(s, next));
    },

    async updateJobSchedule(c, ctx) {
      const body = c.request.requestBody as Schemas['JobScheduleUpdate'];
      const audit = auditContext(ctx);
      const s = await deps.sequelize.transaction(async (transaction) => {
        const found = await JobSchedule.findOne({ where: { id: c.request.params.scheduleId as string, tenantId: audit.tenantId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!found) throw notFound(`Job schedule ${c.request.params.scheduleId}`);
        const before = presentJobSchedule(found);
        const fields = asFields(body, found);
        checkSchedule(fields);
        Object.assign(found, fields, { name: body.name ?? found.name, version: found.version + 1 });
        await found.save({ transaction });
        await recordAudit({ ...audit, action: 'jobs.schedule.updated', entityType: 'job_schedule', entityId: found.id, before, after: presentJobSchedule(found) }, transaction);
        await schedules().getHandle(found.temporalScheduleId).update(() => scheduleOptions(found));
        return found;
      });
      respond(ctx, presentJobSchedule(s));
    },

    async deleteJobSchedule(c, ctx) {
      const audit = auditContext(ctx);
      await deps.sequelize.transaction(async (transaction) => {
        const s = await JobSchedule.findOne({ where: { id: c.request.params.scheduleId as string, tenantId: audit.tenantId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!s) throw notFound(`Job schedule ${c.request.params.scheduleId}`);
        await s.destroy({ transaction });
        await recordAudit({ ...audit, action: 'jobs.schedule.deleted', entityType: 'job_schedule', entityId: s.id, before: presentJobSchedule(s) }, transaction);
        try {
          await schedules().getHandle(s.temporalScheduleId).delete();
        } catch (err) {
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        }
      });
      ctx.status = 204;
    },

    async runJobScheduleNow(c, ctx) {
      const audit = auditContext(ctx);
      const s = await findSchedule(audit.tenantId, c.request.params.scheduleId as string);
      // The change is Temporal's: its event is written in a transaction that commits only once Temporal took
      // the command (as a schedule's create, update and delete above), so a refused trigger leaves no event.
      await deps.sequelize.transaction(async (transaction) => {
        await recordAudit({ ...audit, action: 'jobs.schedule.triggered', entityType: 'job_schedule', entityId: s.id }, transaction);
        await schedules().getHandle(s.temporalScheduleId).trigger();
      });
      respond(ctx, presentJobSchedule(s), { status: 202 });
    },

    async listJobRuns(c, ctx) {
      const q = queryOf(c);
      const s = await findSchedule(caller(ctx).tenant.id, c.request.params.scheduleId as string);
      ctx.body = page(await paginate(JobRun, { where: { tenantId: s.tenantId, scheduleId: s.id }, limit: q.int('limit'), cursor: q.str('cursor'), order: [['startedAt', 'DESC'], ['id', 'DESC']] }), presentJobRun);
    },

    async getJobRun(c, ctx) {
      respond(ctx, presentJobRun(await findRun(caller(ctx).tenant.id, c.request.params.runId as string)));
    },

    async cancelJobRun(c, ctx) {
      const audit = auditContext(ctx);
      const run = await findRun(audit.tenantId, c.request.params.runId as string);
      if (run.status !== 'running') throw new ApiError(409, 'JOB_RUN_FINISHED', `The run is ${run.status}`);
      await deps.sequelize.transaction(async (transaction) => {
        await recordAudit({ ...audit, action: 'jobs.run.cancel_requested', entityType: 'job_run', entityId: run.id, workflowId: run.workflowId }, transaction);
        try {
          await deps.temporal.client.workflow.getHandle(run.workflowId).cancel();
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) throw new ApiError(409, 'JOB_RUN_FINISHED', 'The run has ended');
          throw err;
        }
      });
      respond(ctx, presentJobRun(run), { status: 202 });
    },
  };
}
