// Job schedule commands: schedules kept in step with Temporal Schedules (created, changed and deleted inside
// the transaction that writes their row, so neither is left without the other), run now, cancel a run.
import { randomUUID } from 'node:crypto';
import { ScheduleNotFoundError, ScheduleOptions, ScheduleOverlapPolicy, ScheduleUpdateOptions, WorkflowNotFoundError } from '@temporalio/client';
import { CronExpressionParser } from 'cron-parser';
import { IANAZone } from 'luxon';
import { JobRun, JobSchedule, type LongRunAlert } from '../../db/models/jobs';
import { recordAudit } from '../../lib/audit';
import { ApiError, permissionDenied } from '../../lib/problems';
import { crashPointForTests, startBusinessWorkflow } from '../../lib/temporal';
import type { jobRunWorkflow } from '../../workflows/jobs';
import { findInTenant } from '../../lib/tenancy';
import { JOB_PATCHES, JOBS_DOMAIN, JOBS_TASK_QUEUE, JobRunInput } from '../../workflows/jobs.api';
import { businessWorkflowId, ENTITY_ID, ENTITY_TYPE, STATUS, TENANT_ID } from '../../workflows/search-attributes';
import { auditBy, Caller, CommandDeps } from '../command';
import { checkPeopleSet } from '../identity/people';
import type { Schemas } from '../schemas';
import { checkJobParams, JobParamsError, jobType } from './job-types';
import { presentJobSchedule } from './presenters';
import { redactJobParams, resealJobParams, sealJobParams } from './secret-params';

const OVERLAP: Record<JobSchedule['overlapPolicy'], ScheduleOverlapPolicy> = {
  skip: 'SKIP', buffer_one: 'BUFFER_ONE', buffer_all: 'BUFFER_ALL', cancel_other: 'CANCEL_OTHER', terminate_other: 'TERMINATE_OTHER', allow_all: 'ALLOW_ALL',
};

type Fields = Pick<JobSchedule, 'jobType' | 'params' | 'cron' | 'runAt' | 'timezone' | 'paused' | 'overlapPolicy' | 'catchupWindowSeconds' | 'retry' | 'notifyOnFailure'>
  & { notifyOnSuccess: People; longRunAlert: LongRunAlert | null };
type People = { users: string[]; roles: string[] };
const people = (p: { users?: string[]; roles?: string[] }): People => ({ users: p.users ?? [], roles: p.roles ?? [] });

/** The shorthands cron users write, as the five fields they mean (Temporal and cron-parser get the fields). */
export const CRON_SHORTHANDS: Record<string, string> = {
  '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *',
};

/** A schedule's cron as five fields: a shorthand expanded, anything else as given. */
export const cronFields = (cron: string): string => (Object.hasOwn(CRON_SHORTHANDS, cron.trim().toLowerCase()) ? CRON_SHORTHANDS[cron.trim().toLowerCase()] : cron);

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
    const fields = cronFields(f.cron);
    if (fields.trim().split(/\s+/).length !== 5) {
      throw new ApiError(422, 'INVALID_CRON', `cron: "${f.cron}" must have 5 fields (minute hour day-of-month month day-of-week) or be one of ${Object.keys(CRON_SHORTHANDS).join(', ')}`);
    }
    try {
      CronExpressionParser.parse(fields, { tz: f.timezone });
    } catch (err) {
      throw new ApiError(422, 'INVALID_CRON', `cron: ${(err as Error).message}`);
    }
  }
  if (f.runAt !== null && f.runAt.getTime() < Date.now() + MIN_RUN_AT_LEAD_MS) {
    throw new ApiError(422, 'TIME_IN_PAST', `runAt ${f.runAt.toISOString()} is in the past or less than ${MIN_RUN_AT_LEAD_MS / 1000} s ahead (POST /v1/job-schedules/{scheduleId}/run runs a schedule now)`);
  }
  // A single run is a Temporal calendar entry, whose year must lie in 2000–2100.
  if (f.runAt !== null && f.runAt.getUTCFullYear() > 2100) throw new ApiError(422, 'INVALID_JOB', `runAt ${f.runAt.toISOString()} is after 2100 (Temporal schedules end there)`);
}

/** Params as given, as they are stored: secrets sealed (secret-params.ts), a "***" without a stored value refused with 422. */
function sealedParams(key: Buffer, jobType: string, given: Record<string, unknown>, stored?: JobSchedule): Record<string, unknown> {
  try {
    return sealJobParams(jobType, given, key, stored);
  } catch (err) {
    if (err instanceof JobParamsError) throw new ApiError(422, 'INVALID_JOB', err.message);
    throw err;
  }
}

/**
 * Refuses a job type whose work needs a permission the caller lacks (JobTypeInfo.permission): `jobs.write` lets a
 * caller choose jobs, not do everything a job can (e.g. delete the audit log without `audit.purge`).
 */
function assertMayUseJobType(c: Caller, name: string): void {
  const needed = jobType(name)?.permission;
  if (needed && !c.permissions.has(needed)) {
    throw permissionDenied(`The job type ${name} also needs the permission '${needed}'`, needed);
  }
}

/**
 * How far ahead a single run must be: its Temporal Schedule has to exist before its second comes, since a
 * Schedule never takes an action for a time before it was created (a run 1 s ahead could silently never happen).
 */
export const MIN_RUN_AT_LEAD_MS = 2_000;

function spec(f: Fields): ScheduleOptions['spec'] {
  if (f.cron !== null) return { cronExpressions: [cronFields(f.cron)], timezone: f.timezone };
  // Rounded up to its whole second: a calendar entry has no milliseconds, and a run is never early.
  const t = new Date(Math.ceil(f.runAt!.getTime() / 1000) * 1000);
  const MONTHS = ['JANUARY', 'FEBRUARY', 'MARCH', 'APRIL', 'MAY', 'JUNE', 'JULY', 'AUGUST', 'SEPTEMBER', 'OCTOBER', 'NOVEMBER', 'DECEMBER'] as const;
  // A single instant, written as a UTC calendar entry that matches only that second.
  return { calendars: [{ year: t.getUTCFullYear(), month: MONTHS[t.getUTCMonth()], dayOfMonth: t.getUTCDate(), hour: t.getUTCHours(), minute: t.getUTCMinutes(), second: t.getUTCSeconds() }], timezone: 'UTC' };
}

function scheduleOptions(s: JobSchedule): ScheduleUpdateOptions {
  const input: JobRunInput = {
    tenantId: s.tenantId, scheduleId: s.id, jobType: s.jobType, params: s.params,
    retry: { maximumAttempts: s.retry.maximumAttempts, initialIntervalSeconds: s.retry.initialIntervalSeconds }, patches: JOB_PATCHES,
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
  notifyOnFailure: b.notifyOnFailure ? people(b.notifyOnFailure) : (base?.notifyOnFailure ?? people({})),
  notifyOnSuccess: b.notifyOnSuccess ? people(b.notifyOnSuccess) : (base?.notifyOnSuccess ?? people({})),
  // null turns the alert off; absent keeps it.
  longRunAlert: b.longRunAlert !== undefined
    ? (b.longRunAlert ? { afterSeconds: b.longRunAlert.afterSeconds, ...people(b.longRunAlert) } : null)
    : (base?.longRunAlert ?? null),
});

/** Who is told (of a failure, a success, a long run) must be the tenant's: an unknown user or role is refused (a role with no members yet is fine). */
async function checkNotices(tenantId: string, f: Fields): Promise<void> {
  const sets: [string, People][] = [['notifyOnFailure', f.notifyOnFailure], ['notifyOnSuccess', f.notifyOnSuccess]];
  if (f.longRunAlert) sets.push(['longRunAlert', f.longRunAlert]);
  const unknown = [];
  for (const [name, { users, roles }] of sets) {
    if (!users.length && !roles.length) continue;
    const path = `/requestBody/${name}`;
    const { issues } = await checkPeopleSet(tenantId, { users, roles }, path);
    unknown.push(...issues.filter((i) => i.path !== path));
  }
  if (unknown.length) throw new ApiError(422, 'INVALID_JOB', unknown.map((i) => `${i.path}: ${i.message}`).join('; '), { errors: unknown });
}

export async function createJobSchedule(deps: CommandDeps, c: Caller, input: Schemas['JobScheduleInput']): Promise<JobSchedule> {
  const fields = asFields(input);
  checkSchedule(fields);
  assertMayUseJobType(c, fields.jobType);
  await checkNotices(c.tenantId, fields);
  fields.params = sealedParams(deps.config.secretsKey, fields.jobType, fields.params);
  const id = randomUUID();
  const temporalScheduleId = businessWorkflowId({ domain: JOBS_DOMAIN, tenantId: c.tenantId, entityId: id });
  return deps.sequelize.transaction(async (transaction) => {
    const created = await JobSchedule.create({ id, tenantId: c.tenantId, name: input.name, ...fields, temporalScheduleId, createdBy: c.actor.id, version: 1 }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'jobs.schedule.created', entityType: 'job_schedule', entityId: id, after: presentJobSchedule(created) }, transaction);
    // Created inside the transaction: if Temporal refuses, no row is left without its schedule. If the
    // process dies before the commit, the schedule is left without its row: the start reconciler deletes it.
    await deps.temporal.client.schedule.create({
      scheduleId: temporalScheduleId, ...(scheduleOptions(created) as Omit<ScheduleOptions, 'scheduleId'>),
      // The schedule itself is findable by tenant in the Temporal UI, like every Docket workflow.
      typedSearchAttributes: [{ key: TENANT_ID, value: c.tenantId }, { key: ENTITY_TYPE, value: 'job_schedule' }, { key: ENTITY_ID, value: id }],
    });
    if (created.runAt && !created.paused) await runIfCreatedTooLate(deps, temporalScheduleId);
    crashPointForTests();
    return created;
  });
}

/**
 * A create or update slower than the lead (Temporal busy) may end after the single run's second: the Schedule then
 * has no time left and took no action, so the run would never happen. Run it now instead: late, not lost.
 */
async function runIfCreatedTooLate(deps: CommandDeps, scheduleId: string): Promise<void> {
  const handle = deps.temporal.client.schedule.getHandle(scheduleId);
  const { info } = await handle.describe();
  if (info.nextActionTimes.length === 0 && info.recentActions.length === 0 && info.runningActions.length === 0) await handle.trigger();
}

/** When the schedule runs next, as Temporal has it (none once its Temporal Schedule is gone). */
export async function nextRunTimes(deps: CommandDeps, s: JobSchedule): Promise<Date[]> {
  try {
    return (await deps.temporal.client.schedule.getHandle(s.temporalScheduleId).describe()).info.nextActionTimes;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return [];
    throw err;
  }
}

export async function updateJobSchedule(deps: CommandDeps, c: Caller, id: string, input: Schemas['JobScheduleUpdate']): Promise<JobSchedule> {
  return deps.sequelize.transaction(async (transaction) => {
    const found = await findInTenant(JobSchedule, c.tenantId, id, 'Job schedule', { transaction, lock: transaction.LOCK.UPDATE });
    const before = presentJobSchedule(found);
    const fields = asFields(input, found);
    checkSchedule(fields);
    // Pausing is always allowed: it only stops what the schedule does.
    const pausesOnly = Object.keys(input).every((k) => k === 'paused') && input.paused === true;
    if (!pausesOnly) assertMayUseJobType(c, fields.jobType);
    await checkNotices(c.tenantId, fields);
    // New params are sealed ("***" keeps a stored header value); kept ones have any value stored before sealing sealed.
    fields.params = input.params !== undefined
      ? sealedParams(deps.config.secretsKey, fields.jobType, fields.params, found)
      : resealJobParams(fields.jobType, fields.params, deps.config.secretsKey);
    Object.assign(found, fields, { name: input.name ?? found.name, version: found.version + 1 });
    await found.save({ transaction });
    await recordAudit({ ...auditBy(c), action: 'jobs.schedule.updated', entityType: 'job_schedule', entityId: found.id, before, after: presentJobSchedule(found) }, transaction);
    await deps.temporal.client.schedule.getHandle(found.temporalScheduleId).update(() => scheduleOptions(found));
    if (found.runAt && !found.paused) await runIfCreatedTooLate(deps, found.temporalScheduleId);
    return found;
  });
}

export async function deleteJobSchedule(deps: CommandDeps, c: Caller, id: string): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const s = await findInTenant(JobSchedule, c.tenantId, id, 'Job schedule', { transaction, lock: transaction.LOCK.UPDATE });
    await s.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'jobs.schedule.deleted', entityType: 'job_schedule', entityId: s.id, before: presentJobSchedule(s) }, transaction);
    try {
      await deps.temporal.client.schedule.getHandle(s.temporalScheduleId).delete();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  });
}

/** One run now, besides the schedule's own. */
export async function runJobScheduleNow(deps: CommandDeps, c: Caller, id: string): Promise<JobSchedule> {
  const s = await findInTenant(JobSchedule, c.tenantId, id, 'Job schedule');
  // Running it is doing what it does (a paused schedule too: Temporal runs a trigger regardless).
  assertMayUseJobType(c, s.jobType);
  // The change is Temporal's: its event is written in a transaction that commits only once Temporal took
  // the command (as a schedule's create, update and delete above), so a refused trigger leaves no event.
  await deps.sequelize.transaction(async (transaction) => {
    await recordAudit({ ...auditBy(c), action: 'jobs.schedule.triggered', entityType: 'job_schedule', entityId: s.id }, transaction);
    await deps.temporal.client.schedule.getHandle(s.temporalScheduleId).trigger();
  });
  return s;
}

/**
 * Runs a job once, now, without a schedule: `jobs.run` (the route) and `jobs.write` (here — choosing a job and its
 * parameters is what a schedule's author does). The run's row is written in the transaction that starts its
 * workflow, so the 202's Location answers at once; if Temporal refuses the start, nothing is left.
 */
export async function startJobRun(deps: CommandDeps, c: Caller, input: Schemas['JobRunInput']): Promise<JobRun> {
  if (!c.permissions.has('jobs.write')) {
    throw permissionDenied("Running a job without a schedule needs the permission 'jobs.write' too", 'jobs.write');
  }
  const params = (input.params ?? {}) as Record<string, unknown>;
  try {
    checkJobParams(input.jobType, params);
  } catch (err) {
    if (err instanceof JobParamsError) throw new ApiError(422, 'INVALID_JOB', err.message);
    throw err;
  }
  assertMayUseJobType(c, input.jobType);
  // Sealed in the run's Temporal input too: opened only by the activity that uses them.
  const sealed = sealedParams(deps.config.secretsKey, input.jobType, params);
  const runId = randomUUID();
  const workflowId = businessWorkflowId({ domain: JOBS_DOMAIN, tenantId: c.tenantId, entityId: runId });
  const args: JobRunInput = {
    tenantId: c.tenantId, scheduleId: null, runId, jobType: input.jobType, params: sealed,
    retry: { maximumAttempts: input.retry?.maximumAttempts ?? 1, initialIntervalSeconds: input.retry?.initialIntervalSeconds ?? 10 }, patches: JOB_PATCHES,
  };
  return deps.sequelize.transaction(async (transaction) => {
    const run = await JobRun.create({
      id: runId, tenantId: c.tenantId, scheduleId: null, jobType: input.jobType, workflowId, status: 'running', startedAt: new Date(),
      finishedAt: null, durationMs: null, error: null, result: null,
    }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'jobs.run.requested', entityType: 'job_run', entityId: runId, workflowId, after: { jobType: input.jobType, params: redactJobParams(input.jobType, params) } }, transaction);
    // Started before the commit: refused, it leaves nothing. Started with its reply lost, the row is rolled back but
    // the run writes it again itself (jobRunStarted finds or creates it by workflow id).
    await startBusinessWorkflow<typeof jobRunWorkflow>(deps.temporal.client, {
      domain: JOBS_DOMAIN, tenantId: c.tenantId, entityType: 'job_run', entityId: runId, workflowType: 'jobRunWorkflow', taskQueue: JOBS_TASK_QUEUE,
      args: [args], initialStatus: 'running',
    });
    return run;
  });
}

/** Asks a running run to stop (its job is cancelled between steps). */
export async function cancelJobRun(deps: CommandDeps, c: Caller, id: string): Promise<JobRun> {
  const run = await findInTenant(JobRun, c.tenantId, id, 'Job run');
  if (run.status !== 'running') throw new ApiError(409, 'JOB_RUN_FINISHED', `The run is ${run.status}`);
  await deps.sequelize.transaction(async (transaction) => {
    await recordAudit({ ...auditBy(c), action: 'jobs.run.cancel_requested', entityType: 'job_run', entityId: run.id, workflowId: run.workflowId }, transaction);
    try {
      await deps.temporal.client.workflow.getHandle(run.workflowId).cancel();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new ApiError(409, 'JOB_RUN_FINISHED', 'The run has ended');
      throw err;
    }
  });
  return run;
}
