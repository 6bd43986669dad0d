// Job schedules and runs → API JSON. A schedule's secret params (an http job's header values) show as "***".
import type { JobRun, JobSchedule } from '../../db/models/jobs';
import type { Schemas } from '../schemas';
import { redactJobParams } from './secret-params';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const presentJobSchedule = (s: JobSchedule, nextRunTimes?: Date[]): Schemas['JobSchedule'] => ({
  id: s.id, name: s.name, jobType: s.jobType, params: redactJobParams(s.jobType, s.params), cron: s.cron, runAt: iso(s.runAt), timezone: s.timezone, paused: s.paused,
  overlapPolicy: s.overlapPolicy, catchupWindowSeconds: s.catchupWindowSeconds, retry: s.retry, notifyOnFailure: s.notifyOnFailure,
  notifyOnSuccess: s.notifyOnSuccess ?? { users: [], roles: [] }, longRunAlert: s.longRunAlert ?? null, temporalScheduleId: s.temporalScheduleId,
  ...(nextRunTimes ? { nextRunTimes: nextRunTimes.map((d) => d.toISOString()) } : {}),
  createdAt: s.createdAt.toISOString(), updatedAt: s.updatedAt.toISOString(),
});

export const presentJobRun = (r: JobRun): Schemas['JobRun'] => ({
  id: r.id, scheduleId: r.scheduleId, jobType: r.jobType, status: r.status, startedAt: r.startedAt.toISOString(), finishedAt: iso(r.finishedAt),
  durationMs: r.durationMs, error: r.error, result: r.result, workflowId: r.workflowId,
});
