// Scheduled jobs: the job-type registry, job schedules kept in step with Temporal Schedules, run now, run
// history (from job_runs, per schedule and tenant-wide), a run without a schedule, and cancelling a running run; what they do is domains/jobs/commands.ts.
import { Op, type WhereOptions } from 'sequelize';
import { JobRun, JobSchedule } from '../../db/models/jobs';
import {
  cancelJobRun, createJobSchedule, deleteJobSchedule, nextRunTimes, runJobScheduleNow, startJobRun, updateJobSchedule,
} from '../../domains/jobs/commands';
import { JOB_TYPES } from '../../domains/jobs/job-types';
import { presentJobRun, presentJobSchedule } from '../../domains/jobs/presenters';
import { ApiError } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { page, paginate, respond } from '../conventions';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function jobRoutes(deps: RouteDeps) {
  return {
    async listJobTypes(_input, ctx) {
      ctx.body = { items: JOB_TYPES };
    },

    async listJobSchedules({ query }, ctx) {
      ctx.body = page(await paginate(JobSchedule, { where: { tenantId: caller(ctx).tenant.id }, limit: query.limit, cursor: query.cursor }), (s) => presentJobSchedule(s));
    },

    async createJobSchedule({ body }, ctx) {
      const s = await createJobSchedule(deps, commandCaller(ctx), body);
      respond(ctx, presentJobSchedule(s), { status: 201, location: `/v1/job-schedules/${s.id}` });
    },

    async getJobSchedule({ params }, ctx) {
      const s = await findInTenant(JobSchedule, caller(ctx).tenant.id, params.scheduleId, 'Job schedule');
      respond(ctx, presentJobSchedule(s, await nextRunTimes(deps, s)));
    },

    async updateJobSchedule({ params, body }, ctx) {
      respond(ctx, presentJobSchedule(await updateJobSchedule(deps, commandCaller(ctx), params.scheduleId, body)));
    },

    async deleteJobSchedule({ params }, ctx) {
      await deleteJobSchedule(deps, commandCaller(ctx), params.scheduleId);
      ctx.status = 204;
    },

    async runJobScheduleNow({ params }, ctx) {
      respond(ctx, presentJobSchedule(await runJobScheduleNow(deps, commandCaller(ctx), params.scheduleId)), { status: 202 });
    },

    async listJobRuns({ params, query }, ctx) {
      const s = await findInTenant(JobSchedule, caller(ctx).tenant.id, params.scheduleId, 'Job schedule');
      ctx.body = page(await paginate(JobRun, { where: { tenantId: s.tenantId, scheduleId: s.id }, limit: query.limit, cursor: query.cursor, order: [['startedAt', 'DESC'], ['id', 'DESC']] }), presentJobRun);
    },

    async listTenantJobRuns({ query }, ctx) {
      const tenantId = caller(ctx).tenant.id;
      if (query.since && query.until && Date.parse(query.since) >= Date.parse(query.until)) throw new ApiError(422, 'INVALID_RANGE', '`since` must be before `until`');
      const started = { ...(query.since ? { [Op.gte]: new Date(query.since) } : {}), ...(query.until ? { [Op.lt]: new Date(query.until) } : {}) };
      const where: WhereOptions = {
        tenantId, ...(query.status ? { status: query.status } : {}), ...(query.jobType ? { jobType: query.jobType } : {}),
        ...(query.scheduleId ? { scheduleId: query.scheduleId } : {}), ...(query.since || query.until ? { startedAt: started } : {}),
      };
      ctx.body = page(await paginate(JobRun, { where, limit: query.limit, cursor: query.cursor, order: [['startedAt', 'DESC'], ['id', 'DESC']] }), presentJobRun);
    },

    async startJobRun({ body }, ctx) {
      const run = await startJobRun(deps, commandCaller(ctx), body);
      respond(ctx, presentJobRun(run), { status: 202, location: `/v1/job-runs/${run.id}` });
    },

    async getJobRun({ params }, ctx) {
      respond(ctx, presentJobRun(await findInTenant(JobRun, caller(ctx).tenant.id, params.runId, 'Job run')));
    },

    async cancelJobRun({ params }, ctx) {
      respond(ctx, presentJobRun(await cancelJobRun(deps, commandCaller(ctx), params.runId)), { status: 202 });
    },
  } satisfies RouteHandlers;
}
