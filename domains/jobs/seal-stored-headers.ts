// The backfill of the http job header values stored before they were sealed (secret-params.ts): plain in their
// schedule's row and in its Temporal Schedule's action (the runs' input, readable in the Temporal UI). Run by the start
// reconciler (activities/system.ts) every time, so no one has to start it and a row an API of an older release writes
// plain during a rolling deploy is sealed too; a run that finds nothing plain costs one read of an empty index (PLAIN_ROWS).
//
// Each schedule, in its own transaction, under the row lock a PATCH or DELETE takes (so neither runs meanwhile; a row
// another backfill holds is left to it): the Temporal Schedule's args first, then the row, with an audit event naming
// the headers, never their values. If Temporal is down the transaction rolls back and the row stays plain, to be
// found again by the next run; a row is never sealed while its Schedule keeps a plain value. A commit that fails after
// the Schedule was sealed leaves the row plain, which the next run seals (the Schedule's args, already sealed, are left).
// Nothing else changes: in Temporal only the header values in the action's args (spec, state — paused, note, remaining
// actions —, policies, the rest of the action as they are); in the row only `params` (not `version`, the ETag, nor
// `updatedAt`: what the API shows is the same "***").
import type { Client, ScheduleDescription, ScheduleUpdateOptions } from '@temporalio/client';
import { ScheduleNotFoundError } from '@temporalio/client';
import { QueryTypes } from 'sequelize';
import { JobSchedule } from '../../db/models/jobs';
import { recordAudit } from '../../lib/audit';
import { settleWithLimit } from '../../lib/batch';
import { isInfrastructureError } from '../../lib/dependency-errors';
import { SEALED_PREFIX } from '../../lib/secrets';
import type { JobRunInput } from '../../workflows/jobs.api';
import { plainHeaderNames, resealJobParams } from './secret-params';

const PAGE = 200;
/** Schedules sealed at once (each holds a database connection while Temporal answers). */
const CONCURRENCY = 4;
/** How long one schedule's Temporal calls may take before the attempt gives up (its row lock is then released). */
const TEMPORAL_DEADLINE_MS = 30_000;
const FIRST_ID = '00000000-0000-0000-0000-000000000000';

/** Matches params with a header value that is a string not starting with SEALED_PREFIX (not isSealed). */
export const PLAIN_HEADERS_PATH = `$.headers.* ? (@.type() == "string" && !(@ starts with "${SEALED_PREFIX}"))`;

/**
 * The ids after `after` of http schedules with a header value not sealed (a string not starting with SEALED_PREFIX, as
 * isSealed tests it), in id order. The condition is the partial index job_schedules_plain_headers's (migration 0043),
 * word for word: the index holds only these rows, so a run that finds none reads an empty index.
 */
export const PLAIN_ROWS = `SELECT id FROM job_schedules
  WHERE job_type = 'http' AND params @? '${PLAIN_HEADERS_PATH}'
    AND id > $1 ORDER BY id LIMIT $2`;

export interface SealStoredResult {
  /** Schedules whose plain header values were sealed (row and Temporal Schedule). */
  sealed: number;
  /** Why the schedules that could not be sealed this time were not (their rows stay plain, found again next run). */
  errors: unknown[];
}

/** The Temporal Schedule's first action argument, if it is a job run's input. */
function jobInputOf(args: readonly unknown[] | undefined): JobRunInput | undefined {
  const a = args?.[0] as Partial<JobRunInput> | undefined;
  return a && typeof a === 'object' && typeof a.jobType === 'string' && a.params && typeof a.params === 'object' ? (a as JobRunInput) : undefined;
}

/** Temporal did not answer about one Schedule within the deadline: that Schedule's failure, not an outage. */
export class ScheduleUnansweredError extends Error {
  override readonly name = 'ScheduleUnansweredError';
}

/**
 * Seals the header values of the schedule's action args that are plain, changing nothing else (the description the
 * Schedule has, with only its args replaced, as a PATCH updates it: ScheduleHandle.update). A Schedule that is gone
 * or holds nothing plain is left as it is.
 */
async function sealScheduleArgs(client: Client, scheduleId: string, key: Buffer, deadlineMs: number): Promise<void> {
  const handle = client.schedule.getHandle(scheduleId);
  const plainIn = (d: ScheduleDescription) => {
    const input = jobInputOf(d.action.args);
    return !!input && plainHeaderNames(input.jobType, input.params).length > 0;
  };
  const deadline = Date.now() + deadlineMs;
  try {
    await client.withDeadline(deadline, async () => {
      if (!plainIn(await handle.describe())) return;
      await handle.update((d) => {
        const input = jobInputOf(d.action.args);
        if (!input) return d as unknown as ScheduleUpdateOptions;
        const args = [{ ...input, params: resealJobParams(input.jobType, input.params, key) }, ...(d.action.args ?? []).slice(1)];
        return { ...d, action: { ...d.action, args } } as unknown as ScheduleUpdateOptions;
      });
    });
  } catch (err) {
    // A row whose Schedule is gone (removed from Temporal by hand): only the row holds the values.
    if (err instanceof ScheduleNotFoundError) return;
    // Past the deadline the call fails as DEADLINE_EXCEEDED, which reads as an outage (retried for as long as it lasts,
    // the same Schedule first every time, and the reconcile run never ends): it is this Schedule's, and the rest go on.
    if (Date.now() >= deadline) throw new ScheduleUnansweredError(`Temporal did not answer about schedule ${scheduleId} within ${deadlineMs} ms`);
    throw err;
  }
}

/** One schedule: true if it was sealed now, false if there was nothing to do (sealed meanwhile, gone, or locked). */
async function sealOne(client: Client, key: Buffer, id: string, deadlineMs: number): Promise<boolean> {
  return JobSchedule.sequelize!.transaction(async (transaction) => {
    const s = await JobSchedule.findOne({ where: { id }, lock: transaction.LOCK.UPDATE, skipLocked: true, transaction });
    const names = s ? plainHeaderNames(s.jobType, s.params).sort() : [];
    if (!s || names.length === 0) return false;
    // Temporal first, inside the row's transaction: refused, it leaves the row plain and the transaction rolled back.
    await sealScheduleArgs(client, s.temporalScheduleId, key, deadlineMs);
    await JobSchedule.update({ params: resealJobParams(s.jobType, s.params, key) }, { where: { id }, silent: true, transaction });
    await recordAudit({
      tenantId: s.tenantId, actor: { type: 'system', id: null }, action: 'system.job_schedule.headers_sealed',
      entityType: 'job_schedule', entityId: s.id, after: { headers: names },
    }, transaction);
    return true;
  });
}

/**
 * Seals every stored plain header value of http job schedules, in their rows and their Temporal Schedules; a schedule
 * that fails is left plain and the others are still done — unless Postgres or Temporal is down, when the run stops
 * taking new ones (each would wait for its deadline to fail the same way). Running it again when nothing is plain
 * changes nothing. `onProgress` is called after every schedule (the activity's heartbeat).
 */
export async function sealStoredJobHeaders(o: {
  client: Client; key: Buffer; onProgress?: (r: { sealed: number; failed: number }) => void;
  /** How long one schedule's Temporal calls may take (TEMPORAL_DEADLINE_MS). */
  deadlineMs?: number;
}): Promise<SealStoredResult> {
  const result: SealStoredResult = { sealed: 0, errors: [] };
  let down = false;
  for (let after = FIRST_ID; !down;) {
    const ids = (await JobSchedule.sequelize!.query<{ id: string }>(PLAIN_ROWS, { bind: [after, PAGE], type: QueryTypes.SELECT })).map((r) => r.id);
    await settleWithLimit(ids, CONCURRENCY, async (id) => {
      if (down) return;
      try {
        if (await sealOne(o.client, o.key, id, o.deadlineMs ?? TEMPORAL_DEADLINE_MS)) result.sealed++;
      } catch (err) {
        result.errors.push(err);
        down ||= isInfrastructureError(err);
      }
      o.onProgress?.({ sealed: result.sealed, failed: result.errors.length });
    });
    if (ids.length < PAGE) break;
    after = ids[ids.length - 1];
  }
  return result;
}
