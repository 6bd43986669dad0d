// Approval activities: resolve approvers, persist the flow's read model and history, notify by
// email with one-click links, hand the outcome to the object's domain (purchase orders) and tell the requester.
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { Model, ModelStatic, QueryTypes } from 'sequelize';
import { ApprovalEvent, ApprovalFlow } from '../db/models/approvals';
import { User } from '../db/models/identity';
import { Notification } from '../db/models/reminders';
import { ApprovalSettings } from '../db/models/settings';
import { resolvePeople } from '../domains/identity/people';
import { notificationRenderer } from '../domains/notifications/render';
import { followApprovalOutcome } from '../domains/purchasing/commands';
import { auditCtes, insertRowsSql } from '../lib/audit';
import { AuditAction } from '../lib/audit-actions';
import { LINK_TTL_HOURS, signLink } from '../domains/approvals/links';
import { type EmailSender } from '../lib/notify/email';
import { emailOnce } from '../lib/notify/email-once';
import { APPROVALS_DOMAIN, type FlowState, type FlowStatus, type HistoryEvent } from '../workflows/approvals.api';
import { businessWorkflowId } from '../workflows/search-attributes';

export interface ApprovalActivityDeps {
  email: EmailSender;
  linkSecret: string;
  /** Where links in emails point (the API's public address). */
  publicUrl: string;
  linkTtlHours?: number;
}

const AUDITED: Partial<Record<HistoryEvent['type'], AuditAction>> = {
  created: 'approvals.flow.created', signed: 'approvals.flow.signed', signature_removed: 'approvals.flow.signature_removed',
  decided_by_admin: 'approvals.flow.decided_by_admin',
  escalated: 'approvals.flow.escalated', approved: 'approvals.flow.approved', rejected: 'approvals.flow.rejected',
  cancelled: 'approvals.flow.cancelled', expired: 'approvals.flow.expired',
};

// Emails of one stage in flight at once. The SMTP transport pools 5 connections per worker, so a few
// more than that keep the pool busy while the next messages are built; a bound (rather than all of a
// 60-approver stage at once) keeps one flow from filling the pool's queue ahead of every other flow's mail.
const EMAILS_IN_FLIGHT = 8;

type AskKind = 'request' | 'reminder' | 'escalation' | 'reopened';

/** A tenant template that fails to render is logged; the built-in text goes out instead (domains/notifications/render.ts). */
const warn = (message: string, meta: Record<string, unknown>) => Context.current().log.warn(message, meta);

export function createApprovalActivities(deps: ApprovalActivityDeps) {
  const system = { type: 'system' as const, id: null };

  /**
   * The requester hears how their flow ended — by email and in the app, once each (keyed by flow and channel, so a
   * retry sends neither twice) — unless they ended it themselves (their own cancel, an auto-approval). An address
   * the server refuses for good is recorded as failed and does not hold the flow's end; other failures retry.
   */
  async function tellRequester(i: { tenantId: string; flowId: string; status: FlowStatus }): Promise<void> {
    if (i.status === 'pending') return;
    const flow = await ApprovalFlow.findOne({ where: { tenantId: i.tenantId, id: i.flowId }, attributes: ['id', 'title', 'requesterId', 'objectType', 'objectId', 'state'] });
    if (!flow || flow.state.outcome?.by === flow.requesterId) return;
    // Read when the flow ends: a tenant that turned the notices off meanwhile is obeyed.
    const settings = await ApprovalSettings.findByPk(i.tenantId, { attributes: ['notifyRequesterOnDecision'] });
    if (settings?.notifyRequesterOnDecision === false) return;
    const requester = await User.findOne({ where: { tenantId: i.tenantId, id: flow.requesterId, active: true } });
    if (!requester) return;
    // A rejection by an approver says why in the approver's words (the flow's own reason is just "a stage was rejected").
    const rejection = i.status === 'rejected' ? flow.state.stages.flatMap((st) => st.signatures).find((x) => x.decision === 'reject' && x.comment)?.comment : undefined;
    const reason = rejection ?? flow.state.outcome?.reason;
    const data = { status: i.status, title: flow.title, reason: reason ?? '', decidedAt: flow.state.outcome?.at ?? new Date().toISOString(), flowId: flow.id };
    const [email, inApp] = await Promise.all([
      notificationRenderer(i.tenantId, 'approval.outcome', 'email', warn).then((r) => r.render(requester, data)),
      notificationRenderer(i.tenantId, 'approval.outcome', 'in_app', warn).then((r) => r.render(requester, data)),
    ]);
    const key = (channel: string) => `approvals:${i.flowId}:outcome:${channel}:${requester.id}`;
    await Notification.bulkCreate([{
      id: randomUUID(), tenantId: i.tenantId, userId: requester.id, deliveryKey: key('in_app'), sourceType: 'approval_flow', sourceId: flow.id,
      subject: inApp.title ?? '', message: inApp.body ?? '', objectType: flow.objectType, objectId: flow.objectId, readAt: null,
    }], { ignoreDuplicates: true });
    await emailOnce(deps.email, i.tenantId, [{ key: key('email'), to: requester.email, subjectType: 'approval_flow', subjectId: flow.id, render: async () => email }]);
  }

  return {
    /** Escalation targets, resolved when the stage falls due (users + current role members). */
    async resolveApprovers(i: { tenantId: string; users: string[]; roles: string[] }): Promise<string[]> {
      return resolvePeople(i.tenantId, i.users, i.roles);
    },

    /** Writes the newest state (older versions never overwrite newer), the history and audit rows. */
    async persistFlow(i: { tenantId: string; flowId: string; state: FlowState; pendingApprovers: string[]; events: HistoryEvent[] }): Promise<void> {
      // One statement (a data-modifying CTE is atomic on its own) instead of BEGIN / UPDATE / INSERT … /
      // COMMIT: every sign waits for this write, and each round trip costs the worker and Postgres CPU.
      // The workflow id is the business id, so it is derived rather than read.
      const workflowId = businessWorkflowId({ domain: APPROVALS_DOMAIN, tenantId: i.tenantId, entityId: i.flowId });
      const bind: unknown[] = [];
      const $ = (v: unknown) => { bind.push(v); return `$${bind.length}`; };
      const parts = [`updated AS (UPDATE approval_flows SET status = ${$(i.state.status)}, current_stage = ${$(i.state.currentStage)},
        state = ${$(JSON.stringify(i.state))}::jsonb, state_version = ${$(i.state.version)}, pending_approvers = ${$(i.pendingApprovers)}::uuid[],
        completed_at = ${$(i.state.status === 'pending' ? null : new Date(i.state.outcome?.at ?? Date.now()))}, updated_at = now()
        WHERE id = ${$(i.flowId)} AND tenant_id = ${$(i.tenantId)} AND state_version <= ${$(i.state.version)} RETURNING 1)`];
      if (i.events.length) {
        parts.push(`events AS (INSERT INTO ${insertRowsSql(ApprovalEvent as unknown as ModelStatic<Model>, i.events.map((e) => ({
          flowId: i.flowId, seq: e.seq, tenantId: i.tenantId, type: e.type, stage: e.stage ?? null, actorId: e.actorId ?? null,
          decision: e.decision ?? null, comment: e.comment ?? null, at: new Date(e.at),
        })), bind)} ON CONFLICT DO NOTHING)`);
      }
      const audited = i.events.flatMap((e) => {
        const action = AUDITED[e.type];
        return action ? [{
          tenantId: i.tenantId, actor: e.actorId ? { type: 'user' as const, id: e.actorId } : system, action, entityType: 'approval_flow',
          entityId: i.flowId, after: { type: e.type, stage: e.stage, decision: e.decision, comment: e.comment, status: i.state.status },
          workflowId, eventKey: `approvals:${i.flowId}:${e.seq}`,
        }] : [];
      });
      // A stage opening is no audit event but is a domain event; every flow event carries the flow's object.
      const opened = i.events.filter((e) => e.type === 'stage_opened').map((e) => ({
        tenantId: i.tenantId, type: 'approval.stage.opened' as const, subjectType: 'approval_flow', subjectId: i.flowId,
        data: { flowId: i.flowId, stage: e.stage ?? 0 }, eventKey: `approvals:${i.flowId}:${e.seq}`,
      }));
      parts.push(...auditCtes(audited, bind, {
        also: opened, mergeData: () => `(SELECT jsonb_build_object('objectType', object_type, 'objectId', object_id) FROM approval_flows WHERE id = ${$(i.flowId)} AND tenant_id = ${$(i.tenantId)})`,
      }));
      // Nothing updated is normal when a newer version is already written; a missing row is an error (with
      // events to write, their foreign key already refuses it).
      const [row] = await ApprovalFlow.sequelize!.query<{ present: boolean }>(
        `WITH ${parts.join(',\n')} SELECT EXISTS (SELECT 1 FROM approval_flows WHERE id = ${$(i.flowId)} AND tenant_id = ${$(i.tenantId)}) AS present`,
        { bind, type: QueryTypes.SELECT },
      );
      if (!row.present) throw new Error(`approval flow ${i.flowId} has no row`);
    },

    /**
     * The tenant's watchers of new requests (the members of its notifyOnRequest roles, domains/settings) hear of this
     * flow, once each — except its requester and its first stage's approvers, who know of it already.
     */
    async notifyRequestWatchers(i: { tenantId: string; flowId: string; title: string; requesterId: string; approverIds: string[]; autoApproved: boolean }): Promise<number> {
      const settings = await ApprovalSettings.findByPk(i.tenantId);
      const roles = settings?.notifyOnRequestRoles ?? [];
      if (!roles.length) return 0;
      const skip = new Set([i.requesterId, ...i.approverIds]);
      const ids = (await resolvePeople(i.tenantId, [], roles)).filter((id) => !skip.has(id));
      const users = ids.length ? await User.findAll({ where: { tenantId: i.tenantId, id: ids, active: true } }) : [];
      const requester = await User.findOne({ where: { tenantId: i.tenantId, id: i.requesterId }, attributes: ['name'] });
      const renderer = await notificationRenderer(i.tenantId, 'approval.new_request', 'email', warn);
      const data = { title: i.title, requesterName: requester?.name ?? 'Someone', autoApproved: i.autoApproved, flowId: i.flowId };
      // A refused address is recorded and given up on; anything else is retried (and sends only what is not sent).
      return emailOnce(deps.email, i.tenantId, users.map((user) => ({
        key: `approvals:${i.flowId}:new-request:${user.id}`, to: user.email, subjectType: 'approval_flow', subjectId: i.flowId, render: () => renderer.render(user, data),
      })), { inFlight: EMAILS_IN_FLIGHT });
    },

    /**
     * One email per (flow, stage, kind, user), with signed approve/reject links, sent a few at a time; a retry sends
     * only the ones not yet sent. `round` tells apart emails of the same kind for the same stage (a stage reopened
     * twice mails twice).
     */
    async notifyApprovers(i: { tenantId: string; flowId: string; title: string; stage: number; userIds: string[]; kind: AskKind; round?: number }): Promise<number> {
      if (!i.userIds.length) return 0;
      // A heartbeat at the start and after every email: the workflow gives this activity a heartbeat
      // timeout, so an attempt that never really ran (a task lost on an overloaded worker) is retried
      // within a minute instead of after the 5-minute start-to-close timeout.
      const heartbeat = () => Context.current().heartbeat();
      heartbeat();
      const users = await User.findAll({ where: { tenantId: i.tenantId, id: i.userIds, active: true } });
      const ttlSeconds = (deps.linkTtlHours ?? LINK_TTL_HOURS) * 3600;
      const renderer = await notificationRenderer(i.tenantId, 'approval.action_needed', 'email', warn);
      // A retryable failure wins over a permanent rejection: the retry resends the transient ones (a refused address
      // is refused again, and once it is the only failure left, it is thrown and the flow gives up on it).
      return emailOnce(deps.email, i.tenantId, users.map((user) => ({
        key: `approvals:${i.flowId}:${i.stage}:${i.kind}${i.round === undefined ? '' : `:${i.round}`}:${user.id}`, to: user.email,
        subjectType: 'approval_flow', subjectId: i.flowId,
        render: () => {
          const link = (action: 'approve' | 'reject') => `${deps.publicUrl}/v1/approval-links/${signLink({
            tenantId: i.tenantId, subjectType: 'approval_flow', subjectId: i.flowId, userId: user.id, action, stage: i.stage, ttlSeconds,
          }, deps.linkSecret).token}`;
          return renderer.render(user, { kind: i.kind, title: i.title, flowId: i.flowId, stage: i.stage, approveUrl: link('approve'), rejectUrl: link('reject') });
        },
      })), { inFlight: EMAILS_IN_FLIGHT, afterEach: heartbeat, throwRefusals: true });
    },

    /** The object follows the flow's outcome: its domain decides what that means (purchasing: state, and the PDF once approved). */
    async flowFinished(i: { tenantId: string; flowId: string; objectType: string; objectId: string; status: FlowStatus }): Promise<void> {
      if (i.objectType === 'purchase_order') await followApprovalOutcome(Context.current().client, i);
      await tellRequester(i);
    },
  };
}

export type ApprovalActivities = ReturnType<typeof createApprovalActivities>;
