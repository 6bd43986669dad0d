// Job activities: the job_runs rows of a run, the failure notice of a schedule's failed run, and the job types
// themselves (see domains/jobs/job-types.ts).
import { CancelledFailure, Context } from '@temporalio/activity';
import { Op, QueryTypes } from 'sequelize';
import { AuditEvent } from '../db/models/audit';
import { StoredFile } from '../db/models/files';
import { IdempotencyKey } from '../db/models/idempotency';
import { User } from '../db/models/identity';
import { JobRun, JobSchedule } from '../db/models/jobs';
import { resolvePeople } from '../domains/identity/people';
import { notificationRenderer } from '../domains/notifications/render';
import { type EmailSender } from '../lib/notify/email';
import { emailOnce } from '../lib/notify/email-once';
import type { Schemas } from '../domains/schemas';
import { recordEvents } from '../lib/events';
import { UsedLink } from '../db/models/links';
import { LINK_TTL_HOURS } from '../domains/approvals/links';
import { heartbeating } from '../lib/batch';
import type { BlobStore } from '../lib/blob-store';
import { collectBlob, deleteFile, IMPORT_READING, unusedBlobs } from '../lib/files';
import { checkJobParams, JobParamsError } from '../domains/jobs/job-types';
import { openJobParams, scrubSecrets, secretValues } from '../domains/jobs/secret-params';
import { outboundFetch, readBodyCapped } from '../lib/notify/outbound';
import { Headers } from 'undici';
import type { JobRunStatus } from '../db/models/jobs';
import { deleteSubscriberExport } from '../domains/audience/exports';
import type { Caller } from '../domains/command';
import { deleteStoredFile } from '../domains/files/commands';
import { PermissionSet } from '../domains/identity/permissions';
import { FINAL_PHASES } from '../domains/imports/commands';
import { ApiError } from '../lib/problems';

export interface JobActivityDeps {
  blobs: BlobStore;
  email: EmailSender;
  idempotencyTtlHours?: number;
  allowPrivateNetworks: boolean;
  /** Opens the secret params stored sealed (an http job's header values). */
  secretsKey: Buffer;
}

const HOUR = 3_600_000;
const BATCH = 1000;

/**
 * A job asked to stop (its run cancelled, or its worker shutting down) stops here: the activity ends cancelled, its
 * failure's details saying what the job did until now (the run records it, workflows/jobs.ts). Called between steps.
 */
function stopIfCancelled(signal: AbortSignal, done: () => Record<string, unknown>): void {
  if (signal.aborted) throw new CancelledFailure('job cancelled', [done()]);
}

/**
 * Deletes matching rows in batches (each batch its own statement), heartbeating between batches; stops between
 * batches once cancelled (`done`: what the job has done, given the rows deleted so far).
 */
async function deleteInBatches(
  model: { sequelize?: { query: (sql: string, o: object) => Promise<unknown> } }, table: string, key: string, where: string, replacements: Record<string, unknown>,
  signal: AbortSignal, done: (deleted: number) => Record<string, unknown>,
): Promise<number> {
  let total = 0;
  for (;;) {
    stopIfCancelled(signal, () => done(total));
    const rows = await model.sequelize!.query(
      `DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table} WHERE ${where} LIMIT ${BATCH}) RETURNING 1 AS x`,
      { replacements, type: QueryTypes.SELECT },
    ) as unknown[];
    total += rows.length;
    Context.current().heartbeat({ deleted: total });
    if (rows.length < BATCH) return total;
  }
}

/**
 * Runs `work` on each id `page` answers after the last one (keyset pages of BATCH, so an id `work` leaves in place is not
 * read again), heartbeating after each; stops between ids once cancelled (`done`: what the job has done so far).
 */
async function eachInPages(page: (after: string) => Promise<string[]>, signal: AbortSignal, done: () => Record<string, unknown>, work: (id: string) => Promise<void>): Promise<void> {
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const ids = await page(after);
    for (const id of ids) {
      stopIfCancelled(signal, done);
      await work(id);
      Context.current().heartbeat(done());
    }
    if (ids.length < BATCH) return;
    after = ids[ids.length - 1];
  }
}

/**
 * Whom audience.files_purge deletes as: the system (its audit events say so, as for other workflow-made changes), holding
 * only what DELETE /v1/subscriber-exports/{id} and DELETE /v1/files/{id} need. No user: nothing it calls reads one.
 */
const purgeCaller = (tenantId: string): Caller => ({
  tenantId, userId: '', roles: [], permissions: new PermissionSet(['audience.write', 'files.delete'], null), actor: { type: 'system', id: null }, requestId: null,
});

/** Attempts of the run's bookkeeping (jobRunStarted, jobRunFinished) for errors that are not outages (domains/jobs). */
export const JOB_BOOKKEEPING_ATTEMPTS = 20;

export function createJobActivities(deps: JobActivityDeps) {
  // Per kind of notice: its template, the run's status it is sent in, and whom the schedule names for it.
  const NOTICES = {
    failed: { type: 'job.run_failed', status: 'failed', people: (s: JobSchedule) => s.notifyOnFailure },
    succeeded: { type: 'job.run_succeeded', status: 'completed', people: (s: JobSchedule) => s.notifyOnSuccess },
    long: { type: 'job.run_long', status: 'running', people: (s: JobSchedule) => s.longRunAlert ?? { users: [], roles: [] } },
  } as const;

  /**
   * Emails the people a run's schedule names for `kind` (its users and its roles' members now), once each by the
   * ledger key: that the run failed, succeeded, or is still running (only while it is). An address the server refuses
   * for good is recorded as failed and does not fail the run's bookkeeping; other errors retry.
   */
  async function tell(kind: keyof typeof NOTICES, tenantId: string, workflowId: string): Promise<void> {
    const run = await JobRun.findOne({ where: { tenantId, workflowId } });
    if (!run?.scheduleId || run.status !== NOTICES[kind].status) return;
    const schedule = await JobSchedule.findOne({ where: { tenantId, id: run.scheduleId } });
    if (!schedule) return;
    const { users: named, roles } = NOTICES[kind].people(schedule);
    const ids = await resolvePeople(tenantId, named, roles);
    if (!ids.length) return;
    const users = await User.findAll({ where: { tenantId, id: ids, active: true } });
    const renderer = await notificationRenderer(tenantId, NOTICES[kind].type, 'email', (message, meta) => Context.current().log.warn(message, meta));
    const data = {
      scheduleName: schedule.name, jobType: schedule.jobType, startedAt: run.startedAt.toISOString(), runId: run.id, workflowId: run.workflowId,
      ...(kind === 'failed' ? { failedAt: (run.finishedAt ?? new Date()).toISOString(), error: run.error ?? 'no error message' } : {}),
      ...(kind === 'succeeded' ? { finishedAt: (run.finishedAt ?? new Date()).toISOString(), durationSeconds: Math.round((run.durationMs ?? 0) / 1000) } : {}),
      ...(kind === 'long' ? { runningSeconds: Math.round((Date.now() - run.startedAt.getTime()) / 1000) } : {}),
    };
    await emailOnce(deps.email, tenantId, users.map((user) => ({
      key: `jobs:${run.id}:${kind}:${user.id}`, to: user.email, subjectType: 'job_run', subjectId: run.id, render: () => renderer.render(user, data),
    })));
  }

  const jobs: Record<string, (tenantId: string, params: Record<string, unknown>, signal: AbortSignal) => Promise<Record<string, unknown>>> = {
    async 'audit.retention_purge'(tenantId, p, signal) {
      const before = new Date(Date.now() - (p.olderThanDays as number) * 24 * HOUR);
      return { deleted: await deleteInBatches(AuditEvent, 'audit_events', 'id', 'tenant_id = :tenantId AND created_at < :before', { tenantId, before }, signal, (deleted) => ({ deleted })) };
    },
    async 'housekeeping.expired_keys'(tenantId, p, signal) {
      const keysBefore = new Date(Date.now() - ((p.idempotencyHours as number | undefined) ?? deps.idempotencyTtlHours ?? 24) * HOUR);
      // A used link's nonce is what refuses it a second time: kept until the link itself has expired, however short
      // usedLinkDays is (a link used at U was issued before U, so it expires before U + LINK_TTL_HOURS).
      const linksBefore = new Date(Date.now() - Math.max(((p.usedLinkDays as number | undefined) ?? 30) * 24, LINK_TTL_HOURS) * HOUR);
      const idempotencyKeys = await IdempotencyKey.destroy({ where: { tenantId, createdAt: { [Op.lt]: keysBefore } } });
      const usedLinks = await deleteInBatches(UsedLink, 'used_links', 'nonce', 'tenant_id = :tenantId AND used_at < :before', { tenantId, before: linksBefore }, signal, (n) => ({ idempotencyKeys, usedLinks: n }));
      return { idempotencyKeys, usedLinks };
    },
    async 'files.orphan_purge'(tenantId, p, signal) {
      const before = new Date(Date.now() - ((p.olderThanHours as number | undefined) ?? 24) * HOUR);
      // Files stored by an export (of the audit log, of subscribers) or a document job that no export or document row
      // points at: a retried export stored a second one, the export failed after storing it, a render finished after
      // its document was failed (its batch cancelled in Temporal), or the owner is gone. Not one an import still reads.
      const orphans = await StoredFile.sequelize!.query<{ id: string }>(
        `SELECT f.id FROM files f WHERE f.tenant_id = :tenantId AND f.created_at < :before AND (
           (f.origin_key LIKE 'audit-export:%' AND NOT EXISTS (SELECT 1 FROM audit_exports e WHERE e.file_id = f.id))
           OR (f.origin_key LIKE 'subscriber-export:%' AND NOT EXISTS (SELECT 1 FROM subscriber_exports e WHERE e.file_id = f.id))
           OR (f.origin_key LIKE 'document:%' AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.tenant_id = f.tenant_id AND d.file_id = f.id)))
         AND NOT EXISTS (SELECT 1 FROM imports WHERE imports.tenant_id = f.tenant_id AND imports.file_id = f.id AND imports.${IMPORT_READING})`,
        { replacements: { tenantId, before }, type: QueryTypes.SELECT },
      );
      let blobs = 0;
      let files = 0;
      // Cancelled, it stops between files (or blobs), saying how many it has done.
      for (const { id } of orphans) {
        stopIfCancelled(signal, () => ({ files, blobs }));
        const file = await StoredFile.findOne({ where: { id, tenantId } });
        if (file && (await (await deleteFile(deps.blobs, file)).bytesRemoved)) blobs++;
        files++;
        Context.current().heartbeat();
      }
      // Bytes no file of any tenant uses and no upload has claimed since `before`: uploads that died
      // before their file row was written, files removed with their tenant. Shared storage, so not
      // tenant data once unused; removing them is checked again under each blob's lock.
      for (const sha256 of await unusedBlobs(before)) {
        stopIfCancelled(signal, () => ({ files, blobs }));
        if (await collectBlob(deps.blobs, sha256, before)) blobs++;
        Context.current().heartbeat();
      }
      return { files: orphans.length, blobs };
    },
    async 'audience.files_purge'(tenantId, p, signal) {
      const sequelize = StoredFile.sequelize!;
      const store = { blobs: deps.blobs, sequelize };
      const c = purgeCaller(tenantId);
      const counts = { exports: 0, importFiles: 0, skipped: 0 };
      const done = () => ({ ...counts });
      const daysAgo = (days: number) => new Date(Date.now() - days * 24 * HOUR);
      const ids = async (sql: string, replacements: Record<string, unknown>) =>
        (await sequelize.query<{ id: string }>(sql, { replacements: { tenantId, limit: BATCH, ...replacements }, type: QueryTypes.SELECT })).map((r) => r.id);
      // Each by the command the API runs, in its own transaction with its audit event: a rerun (or a retry after a crash)
      // finds only what is left. One deleted meanwhile (404) is not counted; one in use now (409: an import reads it) is
      // skipped, for the next run. Unlike the API, the job waits for the bytes' removal (no one times it): when it says
      // it is done, the personal data is gone from the store too, not queued in this process.
      const remove = async (del: () => Promise<{ bytesRemoved: Promise<boolean> }>, counted: 'exports' | 'importFiles') => {
        try {
          await (await del()).bytesRemoved;
          counts[counted]++;
        } catch (err) {
          if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 409)) throw err;
          if (err.status === 409) counts.skipped++;
        }
      };
      if (p.exportsOlderThanDays !== undefined) {
        const before = daysAgo(p.exportsOlderThanDays as number);
        await eachInPages((after) => ids(
          `SELECT id FROM subscriber_exports WHERE tenant_id = :tenantId AND status IN ('ready', 'failed') AND completed_at < :before AND id > :after ORDER BY id LIMIT :limit`,
          { before, after },
        ), signal, done, (id) => remove(() => deleteSubscriberExport(store, c, id), 'exports'));
      }
      if (p.importFilesOlderThanDays !== undefined) {
        const before = daysAgo(p.importFilesOlderThanDays as number);
        // Uploads (no origin key: an export's CSV or a document's PDF goes with its owner) read by a subscribers import,
        // once every import that read them (of any target) ended before the cutoff. The import rows stay: nothing reads
        // the file after an import ends (its revert works from the rows it wrote and their before-images).
        await eachInPages((after) => ids(
          `SELECT DISTINCT i.file_id AS id FROM imports i JOIN files f ON f.tenant_id = i.tenant_id AND f.id = i.file_id AND f.origin_key IS NULL
           WHERE i.tenant_id = :tenantId AND i.target = 'subscribers' AND i.phase IN (:ended) AND i.finished_at < :before AND i.file_id > :after
             AND NOT EXISTS (SELECT 1 FROM imports o WHERE o.tenant_id = i.tenant_id AND o.file_id = i.file_id
                               AND (o.phase NOT IN (:ended) OR o.finished_at IS NULL OR o.finished_at >= :before))
           ORDER BY 1 LIMIT :limit`,
          { before, after, ended: [...FINAL_PHASES] },
        ), signal, done, (id) => remove(() => deleteStoredFile(store, c, id), 'importFiles'));
      }
      return done();
    },
    async http(_tenantId, p, signal) {
      const method = (p.method as string | undefined) ?? 'POST';
      // The header values are opened here only (runJob), and never written into the run's result or error: a header
      // fetch() would refuse is named without its value (its error message quotes it), and an answer that echoes one
      // (an echo service, a verbose error page) has it replaced by "***".
      const headers = new Headers({ 'user-agent': 'Docket-Job/1', ...(p.body !== undefined ? { 'content-type': 'application/json' } : {}) });
      for (const [name, value] of Object.entries((p.headers as Record<string, string> | undefined) ?? {})) {
        try {
          headers.set(name, value);
        } catch {
          throw new JobParamsError(`params.headers.${name}: is not a valid HTTP header ${/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) ? 'value' : 'name'}`);
        }
      }
      const scrub = (text: string) => scrubSecrets(text, secretValues('http', p));
      const res = await outboundFetch(p.url as string, {
        method,
        headers,
        body: p.body !== undefined && method !== 'GET' ? JSON.stringify(p.body) : undefined,
        signal: AbortSignal.any([signal, AbortSignal.timeout(((p.timeoutSeconds as number | undefined) ?? 30) * 1000)]),
      }, deps.allowPrivateNetworks);
      // Only what is kept is read (a tenant's server may answer a decompression bomb: readBodyCapped): 500 characters
      // of UTF-8 are at most 1500 bytes, so 2000 decode to the same first 500 as the whole body would. Scrubbed before
      // it is cut, so no part of a secret is left at the cut.
      const text = scrub(new TextDecoder().decode(await readBodyCapped(res, 2000))).slice(0, 500);
      if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status} from ${p.url}: ${text}`);
      return { status: res.status, body: text };
    },
  };

  return {
    /** The run's row, once; answers when the run is to be called long (its schedule's alert, read now). */
    async jobRunStarted(i: { tenantId: string; runId: string; workflowId: string; scheduleId: string | null; jobType: string; startedAt: string }): Promise<{ longRunAlertMs: number | null }> {
      await JobRun.findOrCreate({
        where: { workflowId: i.workflowId },
        defaults: {
          id: i.runId, tenantId: i.tenantId, scheduleId: i.scheduleId, jobType: i.jobType, workflowId: i.workflowId, status: 'running',
          startedAt: new Date(i.startedAt), finishedAt: null, durationMs: null, error: null, result: null,
        },
      });
      const schedule = i.scheduleId ? await JobSchedule.findOne({ where: { tenantId: i.tenantId, id: i.scheduleId } }) : null;
      return { longRunAlertMs: schedule?.longRunAlert ? schedule.longRunAlert.afterSeconds * 1000 : null };
    },

    /**
     * The run is still going at its schedule's alert (`afterSeconds`, read when the run started): its
     * job.run.long_running event (once, and only while the run is running: the row is locked as jobRunFinished locks
     * it, so no run that has ended gets one), then the people the schedule names now are told, once.
     */
    async tellOfLongRun(i: { tenantId: string; workflowId: string; afterSeconds?: number }): Promise<void> {
      await JobRun.sequelize!.transaction(async (transaction) => {
        const run = await JobRun.findOne({ where: { tenantId: i.tenantId, workflowId: i.workflowId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!run || run.status !== 'running') return;
        const at = new Date();
        await recordEvents([{
          tenantId: run.tenantId, type: 'job.run.long_running', subjectType: 'job_run', subjectId: run.id,
          data: {
            runId: run.id, jobType: run.jobType, scheduleId: run.scheduleId, startedAt: run.startedAt.toISOString(),
            runningForMs: at.getTime() - run.startedAt.getTime(), alertAfterSeconds: i.afterSeconds ?? null,
          } satisfies Schemas['JobRunLongRunningEventData'],
          eventKey: `jobs:${run.id}:long`, occurredAt: at,
        }], transaction);
      });
      await tell('long', i.tenantId, i.workflowId);
    },

    /**
     * The run's end, once (a retry finds it ended), with its domain event (job.run.succeeded / failed) in the same
     * transaction; then the people its schedule names for a failure, or for a success, are told.
     */
    async jobRunFinished(i: { tenantId: string; runId: string; workflowId: string; status: Exclude<JobRunStatus, 'running'>; result?: Record<string, unknown>; error?: string }): Promise<void> {
      await JobRun.sequelize!.transaction(async (transaction) => {
        const run = await JobRun.findOne({ where: { workflowId: i.workflowId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!run || run.status !== 'running') return;
        const finishedAt = new Date();
        const error = i.error?.slice(0, 2000) ?? null;
        await run.update({ status: i.status, finishedAt, durationMs: finishedAt.getTime() - run.startedAt.getTime(), error, result: i.result ?? null }, { transaction });
        // A cancelled run was stopped by someone, not failed: no event.
        if (i.status === 'cancelled') return;
        await recordEvents([{
          tenantId: run.tenantId, type: i.status === 'completed' ? 'job.run.succeeded' : 'job.run.failed', subjectType: 'job_run', subjectId: run.id,
          data: {
            runId: run.id, jobType: run.jobType, scheduleId: run.scheduleId, startedAt: run.startedAt.toISOString(), finishedAt: finishedAt.toISOString(),
            durationMs: run.durationMs!, error: i.status === 'completed' ? null : error,
          } satisfies Schemas['JobRunEventData'],
          eventKey: `jobs:${run.id}:end`, occurredAt: finishedAt,
        }], transaction);
      });
      // After the commit, and again on a retry (which finds the run ended): each email is sent once, by its ledger key.
      // A notice still failing on the last attempt is given up (logged): a mail outage never turns a run Docket has
      // recorded as completed into a failed workflow.
      const kind = i.status === 'failed' ? 'failed' : i.status === 'completed' ? 'succeeded' : undefined;
      if (kind) {
        await tell(kind, i.tenantId, i.workflowId).catch((err: unknown) => {
          if (Context.current().info.attempt < JOB_BOOKKEEPING_ATTEMPTS) throw err;
          Context.current().log.warn('A job run notice could not be sent', { kind, error: String(err) });
        });
      }
    },

    /** `attempts`: the schedule's maximumAttempts for errors that are not outages (activities/index.ts). */
    async runJob(i: { tenantId: string; jobType: string; params: Record<string, unknown>; attempts?: number }): Promise<Record<string, unknown>> {
      checkJobParams(i.jobType, i.params);
      // Sealed secrets (header values) opened for the job only; a value stored before sealing is used as it is.
      const params = openJobParams(i.jobType, i.params, deps.secretsKey);
      return heartbeating((signal) => jobs[i.jobType](i.tenantId, params, signal));
    },
  };
}

export type JobActivities = ReturnType<typeof createJobActivities>;
