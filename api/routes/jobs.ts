// Scheduled jobs: the job-type registry, job schedules kept in step with Temporal Schedules, run now, run
// history (from job_runs) and cancelling a running run; what they do is domains/jobs/commands.ts.
import { JobRun, JobSchedule } from '../../db/models/jobs';
import {
  cancelJobRun, createJobSchedule, deleteJobSchedule, nextRunTimes, runJobScheduleNow, updateJobSchedule,
} from '../../domains/jobs/commands';
import { JOB_TYPES } from '../../domains/jobs/job-types';
import { presentJobRun, presentJobSchedule } from '../../domains/jobs/presenters';
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

    async getJobRun({ params }, ctx) {
      respond(ctx, presentJobRun(await findInTenant(JobRun, caller(ctx).tenant.id, params.runId, 'Job run')));
    },

    async cancelJobRun({ params }, ctx) {
      respond(ctx, presentJobRun(await cancelJobRun(deps, commandCaller(ctx), params.runId)), { status: 202 });
    },
  } satisfies RouteHandlers;
}
