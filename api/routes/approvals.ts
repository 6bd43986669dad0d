// Approvals: versioned templates, flows (started, read, signed, cancelled) and one-click email links; what
// they do is domains/approvals/commands.ts.
import { FindAttributeOptions, literal, Op, WhereOptions } from 'sequelize';
import { ApprovalEvent, ApprovalFlow, ApprovalTemplate, ApprovalTemplateVersion } from '../../db/models/approvals';
import {
  adminDecideFlow, cancelFlow, createApprovalTemplate, deleteApprovalTemplate, LinkRefusal, openLink, removeSignature, signByLink, signFlow, startApprovalFlow,
  updateApprovalTemplate,
} from '../../domains/approvals/commands';
import { presentApprovalEvent, presentApprovalFlow, presentApprovalFlowSummary, presentApprovalTemplate } from '../../domains/approvals/presenters';
import { ApiError } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { ifMatch, page, paginate, paginateRows, paginateVersions, respond, versionEtag } from '../conventions';
import { esc, htmlPage } from '../pages';
import { caller, commandCaller, linkUse, RouteDeps, RouteHandlers } from '../types';

/**
 * List columns: exactly what a summary shows (every column read is parsed on the API's one thread), and the
 * summary is computed in Postgres, so the state document never leaves it.
 */
const FLOW_SUMMARY_ATTRIBUTES: FindAttributeOptions = [
  'id', 'objectType', 'objectId', 'title', 'status', 'currentStage', 'templateId', 'templateVersion', 'requesterId', 'workflowId', 'createdAt', 'completedAt',
  [literal(`"ApprovalFlow"."state"->'stages'->"ApprovalFlow"."current_stage"->>'name'`), 'currentStageName'],
  [literal(`"ApprovalFlow"."state"->'stages'->"ApprovalFlow"."current_stage"->>'dueAt'`), 'stageDueAt'],
  [literal('cardinality("ApprovalFlow"."pending_approvers")'), 'pendingCount'],
  [literal(`"ApprovalFlow"."state"->>'expiresAt'`), 'expiresAt'],
];

/** The page a link that cannot be used answers with. */
const REFUSED_PAGES: Record<LinkRefusal, (flow?: ApprovalFlow) => [number, string, string]> = {
  invalid: () => [404, 'This link is not valid', '<p>Check that the whole link was copied.</p>'],
  expired: () => [410, 'This link has expired', '<p>Sign in to Docket to approve or reject.</p>'],
  used: () => [410, 'This link was used already', '<p>Each link works once.</p>'],
  gone: () => [404, 'This link is not valid', '<p>The flow or the user no longer exists.</p>'],
  ended: (flow) => [410, `This approval is ${flow?.status}`, '<p>Nothing is left to sign.</p>'],
  other_stage: () => [410, 'This link is for another stage', '<p>The approval has moved on; a newer email has the links for its current stage.</p>'],
  not_allowed: () => [403, 'You can no longer sign approvals', '<p>Your roles no longer allow signing (approvals.flow.sign).</p>'],
};

export function approvalRoutes(deps: RouteDeps) {
  return {
    async listApprovalTemplates({ query }, ctx) {
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (query.objectType) where.objectType = query.objectType;
      ctx.body = page(await paginate(ApprovalTemplate, { where, limit: query.limit, cursor: query.cursor }), presentApprovalTemplate);
    },

    async createApprovalTemplate({ body }, ctx) {
      const t = await createApprovalTemplate(deps, commandCaller(ctx), body);
      respond(ctx, presentApprovalTemplate(t), { status: 201, location: `/v1/approval-templates/${t.id}`, etag: versionEtag(t.version) });
    },

    async getApprovalTemplate({ params }, ctx) {
      const t = await findInTenant(ApprovalTemplate, caller(ctx).tenant.id, params.templateId, 'Approval template');
      respond(ctx, presentApprovalTemplate(t), { etag: versionEtag(t.version) });
    },

    async updateApprovalTemplate({ params, body }, ctx) {
      const t = await updateApprovalTemplate(deps, commandCaller(ctx), params.templateId, body, ifMatch(ctx));
      respond(ctx, presentApprovalTemplate(t), { etag: versionEtag(t.version) });
    },

    async deleteApprovalTemplate({ params }, ctx) {
      await deleteApprovalTemplate(deps, commandCaller(ctx), params.templateId);
      ctx.status = 204;
    },

    async listApprovalTemplateVersions({ params, query }, ctx) {
      const t = await findInTenant(ApprovalTemplate, caller(ctx).tenant.id, params.templateId, 'Approval template');
      const versions = await paginateVersions(ApprovalTemplateVersion, { templateId: t.id }, query);
      ctx.body = page(versions, (v) => presentApprovalTemplate({ ...v.get(), id: t.id, objectType: t.objectType, priority: t.priority }));
    },

    async listApprovalFlows({ query }, ctx) {
      const where: WhereOptions = { tenantId: caller(ctx).tenant.id };
      for (const k of ['status', 'objectType', 'objectId'] as const) if (query[k]) Object.assign(where, { [k]: query[k] });
      if (query.pendingFor) Object.assign(where, { status: 'pending', pendingApprovers: { [Op.contains]: [query.pendingFor] } });
      if (query.requesterId) Object.assign(where, { requesterId: query.requesterId });
      ctx.body = page(await paginateRows(ApprovalFlow, { where, limit: query.limit, cursor: query.cursor, attributes: FLOW_SUMMARY_ATTRIBUTES }), presentApprovalFlowSummary);
    },

    async listMyApprovals({ query }, ctx) {
      const a = caller(ctx);
      const where = { tenantId: a.tenant.id, status: 'pending', pendingApprovers: { [Op.contains]: [a.user.id] } };
      ctx.body = page(await paginateRows(ApprovalFlow, { where, limit: query.limit, cursor: query.cursor, attributes: FLOW_SUMMARY_ATTRIBUTES }), presentApprovalFlowSummary);
    },

    async listMyApprovalRequests({ query }, ctx) {
      const a = caller(ctx);
      const where = { tenantId: a.tenant.id, requesterId: a.user.id, ...(query.status ? { status: query.status } : {}) };
      ctx.body = page(await paginateRows(ApprovalFlow, { where, limit: query.limit, cursor: query.cursor, attributes: FLOW_SUMMARY_ATTRIBUTES }), presentApprovalFlowSummary);
    },

    async createApprovalFlow({ body }, ctx) {
      const { flow, started } = await startApprovalFlow(deps, commandCaller(ctx), body);
      respond(ctx, presentApprovalFlow(flow), started ? { status: 201, location: `/v1/approval-flows/${flow.id}` } : {});
    },

    async getApprovalFlowByObject({ params }, ctx) {
      const flow = await findInTenant(ApprovalFlow, caller(ctx).tenant.id, { objectType: params.objectType, objectId: params.objectId },
        `Approval flow of ${params.objectType} ${params.objectId}`, { order: [['createdAt', 'DESC']] });
      ctx.body = presentApprovalFlow(flow);
    },

    async getApprovalFlow({ params }, ctx) {
      ctx.body = presentApprovalFlow(await findInTenant(ApprovalFlow, caller(ctx).tenant.id, params.flowId, 'Approval flow'));
    },

    async getApprovalFlowHistory({ params }, ctx) {
      const flow = await findInTenant(ApprovalFlow, caller(ctx).tenant.id, params.flowId, 'Approval flow');
      const events = await ApprovalEvent.findAll({ where: { flowId: flow.id }, order: [['seq', 'ASC']] });
      ctx.body = { items: events.map(presentApprovalEvent) };
    },

    async signApprovalFlow({ params, body }, ctx) {
      ctx.body = presentApprovalFlow(await signFlow(deps, commandCaller(ctx), params.flowId, body));
    },

    async cancelApprovalFlow({ params, body }, ctx) {
      ctx.body = presentApprovalFlow(await cancelFlow(deps, commandCaller(ctx), params.flowId, body?.reason));
    },

    async decideApprovalFlow({ params, body }, ctx) {
      ctx.body = presentApprovalFlow(await adminDecideFlow(deps, commandCaller(ctx), params.flowId, body));
    },

    async removeApprovalSignature({ params, query }, ctx) {
      ctx.body = presentApprovalFlow(await removeSignature(deps, commandCaller(ctx), params.flowId, { userId: params.userId, stage: params.stage, reason: query.reason }));
    },

    async viewApprovalLink({ params }, ctx) {
      const opened = await openLink(deps, params.token, linkUse(ctx, params.token));
      if ('refused' in opened) return htmlPage(ctx, ...REFUSED_PAGES[opened.refused](opened.flow));
      const { claims, flow } = opened.link;
      const approve = claims.action === 'approve';
      htmlPage(ctx, 200, `${approve ? 'Approve' : 'Reject'}: ${flow.title}`,
        `<p>Stage: ${esc(flow.state.stages[flow.currentStage]?.name ?? '')}</p>`
        + `<form method="post"><label>${approve ? 'Comment (optional)' : 'Reason (required)'}<br><textarea name="comment" rows="4"${approve ? '' : ' required'}></textarea></label>`
        + `<p><button type="submit">${approve ? 'Approve' : 'Reject'}</button></p></form>`);
    },

    async confirmApprovalLink({ params, body }, ctx) {
      const opened = await openLink(deps, params.token, linkUse(ctx, params.token));
      if ('refused' in opened) return htmlPage(ctx, ...REFUSED_PAGES[opened.refused](opened.flow));
      let signed: ApprovalFlow | 'used';
      try {
        signed = await signByLink(deps, opened.link, body?.comment?.trim() || undefined);
      } catch (err) {
        // Refused (e.g. a reject without its reason) or not reached: the link stays usable.
        if (err instanceof ApiError && err.status < 500) {
          return htmlPage(ctx, err.code === 'FLOW_CLOSED' || err.code === 'STAGE_CHANGED' ? 410 : 409, 'Not signed', `<p>${esc(err.detail)}</p>`);
        }
        throw err;
      }
      if (signed === 'used') return htmlPage(ctx, ...REFUSED_PAGES.used());
      htmlPage(ctx, 200, opened.link.claims.action === 'reject' ? 'Rejected' : 'Approved', `<p>${esc(signed.title)} — recorded. The flow is now ${esc(signed.status)}.</p>`);
    },
  } satisfies RouteHandlers;
}
