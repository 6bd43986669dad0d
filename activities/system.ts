// The start reconciler: starts the workflows whose start was lost — the API died between committing a row
// (with its start intent) and starting the row's workflow — and removes the job schedules Temporal holds
// without a row (the API died between creating one and committing its row), for every tenant; each is audited.
// It also seals the http job header values stored before they were sealed (domains/jobs/seal-stored-headers.ts).
import { Context } from '@temporalio/activity';
import { ScheduleNotFoundError } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import { Op, QueryTypes } from 'sequelize';
import { Tenant } from '../db/models/identity';
import { JobSchedule } from '../db/models/jobs';
import { WorkflowStartIntent } from '../db/models/system';
import { ScheduleUnansweredError, sealStoredJobHeaders as sealStoredHeaders } from '../domains/jobs/seal-stored-headers';
import type { StartIntentRow } from '../domains/module';
import { recordAudit } from '../lib/audit';
import { isInfrastructureError } from '../lib/dependency-errors';
import { settleWithLimit } from '../lib/batch';
import { flushStartIntents, StartBusinessWorkflow, startBusinessWorkflow, workflowRunState } from '../lib/temporal';
import { JOBS_DOMAIN } from '../workflows/jobs.api';
import type { ReconcileStartsResult } from '../workflows/system.api';

export interface SystemActivityDeps {
  /** Intents younger than this are left alone: the API that wrote them is about to start their workflow. */
  reconcileStartsGraceMs?: number;
  /** Per workflow type, the row it owns (what the domains declare: domains/module.ts StartIntentRow). */
  startIntents?: Readonly<Record<string, StartIntentRow>>;
  /** Seals the job header values stored before they were sealed (lib/secrets.ts). */
  secretsKey: Buffer;
}

const PAGE = 500;

export function createSystemActivities(deps: SystemActivityDeps) {
  const graceMs = deps.reconcileStartsGraceMs ?? 60_000;
  const intentRows = deps.startIntents ?? {};
  const system = { type: 'system' as const, id: null };

  /** 'start', or 'drop' when there is nothing to start: the workflow exists, or its row was taken back or has moved on. */
  async function decide(intent: WorkflowStartIntent, request: StartBusinessWorkflow<Workflow>): Promise<'start' | 'drop'> {
    const rows = intentRows[intent.workflowType];
    const [row] = await WorkflowStartIntent.sequelize!.query<{ waiting: boolean }>(
      `SELECT (${rows.waiting}) AS waiting FROM "${rows.table}" WHERE id = $1 AND tenant_id = $2`,
      { bind: [request.entityId, intent.tenantId], type: QueryTypes.SELECT },
    );
    // The row and its intent are written together, so no row means the command took it back (its start failed).
    if (!row) return 'drop';
    const state = await workflowRunState(Context.current().client, intent.workflowId);
    const exists = state === 'running' || (state === 'closed' && !rows.runs);
    return exists || !row.waiting ? 'drop' : 'start';
  }

  return {
    /** Every start intent older than the grace period, oldest first, a page at a time. */
    async reconcileWorkflowStarts(): Promise<Omit<ReconcileStartsResult, 'schedulesRemoved' | 'jobHeadersSealed'>> {
      const ctx = Context.current();
      const result = { started: 0, dropped: 0 };
      for (;;) {
        const intents = await WorkflowStartIntent.findAll({
          where: { createdAt: { [Op.lt]: new Date(Date.now() - graceMs) }, workflowType: Object.keys(intentRows) },
          order: [['createdAt', 'ASC']], limit: PAGE,
        });
        const settled = await settleWithLimit(intents, 4, async (intent) => {
          const request = intent.request as unknown as StartBusinessWorkflow<Workflow>;
          // This intent, not a newer one a later run of the same workflow id wrote meanwhile (an import's revert asked
          // again, a campaign's retry): that one is its own request's, and the next page's.
          const same = { workflowId: intent.workflowId, createdAt: intent.createdAt };
          if (await decide(intent, request) === 'drop') {
            await WorkflowStartIntent.destroy({ where: same });
            result.dropped++;
          } else {
            // The event commits only once Temporal took the start (the one audit rule, lib/audit.ts).
            await WorkflowStartIntent.sequelize!.transaction(async (transaction) => {
              if (!(await WorkflowStartIntent.findOne({ where: same, lock: transaction.LOCK.UPDATE, transaction }))) return;
              await recordAudit({
                tenantId: intent.tenantId, actor: system, action: 'system.workflow.start_recovered', entityType: intentRows[intent.workflowType].entityType,
                entityId: request.entityId, after: { workflowType: intent.workflowType, intendedAt: intent.createdAt.toISOString() },
                workflowId: intent.workflowId, eventKey: `start-recovered:${intent.workflowId}:${intent.createdAt.toISOString()}`,
              }, transaction);
              // USE_EXISTING: should the API's own start land at the same moment, there is still one workflow. It removes the intent.
              await startBusinessWorkflow(ctx.client, request);
            });
            result.started++;
          }
          ctx.heartbeat(result);
        });
        // The intents of what this page started are removed before the next page is read (not found again).
        await flushStartIntents();
        const failed = settled.find((r) => r.status === 'rejected');
        // Every intent was tried; the run fails (and is retried) if one could not be settled.
        if (failed) throw (failed as PromiseRejectedResult).reason;
        if (intents.length < PAGE) return result;
      }
    },

    /**
     * Job schedules (jobs:<tenant>:<id>) older than the grace period whose job_schedules row does not exist:
     * a create whose transaction never committed (the schedule is made inside it), or a tenant's removed
     * rows. They would keep starting runs nobody can see or stop; they are deleted.
     */
    async removeOrphanJobSchedules(): Promise<number> {
      const ctx = Context.current();
      const ids: string[] = [];
      for await (const s of ctx.client.schedule.list()) if (s.scheduleId.startsWith(`${JOBS_DOMAIN}:`)) ids.push(s.scheduleId);
      let removed = 0;
      for (let i = 0; i < ids.length; i += PAGE) {
        const page = ids.slice(i, i + PAGE);
        const known = new Set((await JobSchedule.findAll({ attributes: ['temporalScheduleId'], where: { temporalScheduleId: page } })).map((s) => s.temporalScheduleId));
        for (const id of page.filter((x) => !known.has(x))) {
          const handle = ctx.client.schedule.getHandle(id);
          const described = await handle.describe().catch((err: unknown) => { if (err instanceof ScheduleNotFoundError) return null; throw err; });
          // A younger one may belong to a create whose transaction is about to commit.
          if (!described || Date.now() - described.info.createdAt.getTime() < graceMs) continue;
          const remove = () => handle.delete().catch((err: unknown) => { if (!(err instanceof ScheduleNotFoundError)) throw err; });
          const [, tenantId, entityId] = id.split(':');
          // Audited in its tenant if the tenant is still there, committed once Temporal took the delete.
          if (await Tenant.count({ where: { id: tenantId } })) {
            await JobSchedule.sequelize!.transaction(async (transaction) => {
              await recordAudit({ tenantId, actor: system, action: 'system.job_schedule.orphan_removed', entityType: 'job_schedule', entityId, eventKey: `orphan-removed:${id}` }, transaction);
              await remove();
            });
          } else {
            await remove();
          }
          removed++;
          ctx.heartbeat({ removed });
        }
      }
      return removed;
    },

    /**
     * Seals the header values of http job schedules stored plain (before they were sealed), in their rows and their
     * Temporal Schedules: how many schedules it sealed (0, after one read of an empty index, once none is left). An
     * outage fails it (retried for as long as it lasts); a schedule that failed otherwise stays plain, is logged and is
     * tried again by the next run: failing the run over it would fail every reconcile run for as long as it fails.
     */
    async sealStoredJobHeaders(): Promise<number> {
      const ctx = Context.current();
      const { sealed, errors } = await sealStoredHeaders({ client: ctx.client, key: deps.secretsKey, onProgress: (r) => ctx.heartbeat(r) });
      const outage = errors.find(isInfrastructureError);
      if (outage) throw outage;
      // Named, not quoted: another error's message could hold what the statement or the Schedule held.
      if (errors.length) ctx.log.warn('job schedules left with plain header values until the next run', {
        failed: errors.length, errors: errors.slice(0, 10).map((e) => (e instanceof ScheduleUnansweredError ? e.message : (e as Error)?.name ?? String(e))),
      });
      return sealed;
    },
  };
}

export type SystemActivities = ReturnType<typeof createSystemActivities>;
