// Approvals: versioned templates, flows (started, read, signed, cancelled) and one-click email links.
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import Koa from 'koa';
import { FindAttributeOptions, literal, Op, Transaction, UniqueConstraintError, WhereOptions } from 'sequelize';
import { ApprovalEvent, ApprovalFlow, ApprovalTemplate, ApprovalTemplateVersion, Role, UsedLink, User } from '../../db';
import { ApproverIssue, checkApproverSet, resolveApprovers } from '../../lib/approvers';
import { recordAudit } from '../../lib/audit';
import { compileCondition, ConditionBudget } from '../../lib/conditions';
import { LinkClaims, LinkError, verifyLink } from '../../lib/links';
import { recordStartIntent, StartBusinessWorkflow, startBusinessWorkflow, startOrUndo } from '../../lib/temporal';
import type { approvalFlowWorkflow } from '../../workflows/approvals';
import {
  APPROVAL_REFUSALS, APPROVALS_DOMAIN, APPROVALS_TASK_QUEUE, cancelUpdate, FlowState, removeSignatureUpdate, signUpdate, TemplateDef,
} from '../../workflows/approvals.api';
import { AUTO_APPROVE_REASON, autoApproves, fewestEligible } from '../../workflows/approvals.rules';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { checkIfMatch, page, paginate, paginateRows, queryOf, respond } from '../conventions';
import { ApiError, notFound } from '../errors';
import { PermissionSet } from '../permissions';
import { presentApprovalEvent, presentApprovalFlow, presentApprovalFlowSummary, presentApprovalTemplate } from '../presenters';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';

/**
 * Object types Docket owns, and the route that starts their approval. Their flows start only from the
 * object, with the context computed from it: a caller's `POST /v1/approval-flows` for one is refused,
 * since its `context` (what template conditions read) would be the caller's word.
 */
export const MANAGED_OBJECT_TYPES: Readonly<Record<string, string>> = { purchase_order: 'POST /v1/purchase-orders/{orderId}/submit' };

/**
 * List columns: exactly what a summary shows (every column read is parsed on the API's one thread), and the
 * summary is computed in Postgres, so the state document never leaves it.
 */
const FLOW_SUMMARY_ATTRIBUTES: FindAttributeOptions = [
  'id', 'objectType', 'objectId', 'title', 'status', 'currentStage', 'templateId', 'templateVersion', 'requesterId', 'workflowId', 'createdAt', 'completedAt',
  [literal(`"ApprovalFlow"."state"->'stages'->"ApprovalFlow"."current_stage"->>'name'`), 'currentStageName'],
  [literal(`"ApprovalFlow"."state"->'stages'->"ApprovalFlow"."current_stage"->>'dueAt'`), 'stageDueAt'],
  [literal('cardinality("ApprovalFlow"."pending_approvers")'), 'pendingCount'],
];

const templateEtag = (version: number) => `"v${version}"`;

const unresolved = (what: string, issues: ApproverIssue[]) =>
  new ApiError(422, 'UNRESOLVED_APPROVERS', `${what}: ${issues.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors: issues });

/** A condition compiles (filtrex: no globals, no prototype access) or the template is refused. */
function checkCondition(condition: string): void {
  try {
    compileCondition(condition);
  } catch (err) {
    throw new ApiError(422, 'INVALID_CONDITION', `condition: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
  }
}

function toDefinition(body: Schemas['ApprovalTemplateInput']): TemplateDef {
  if (body.condition) checkCondition(body.condition);
  const stages = body.stages.map((s, i) => {
    const where = `stages[${i}]`;
    if (!(s.approvers.users?.length || s.approvers.roles?.length)) throw new ApiError(422, 'INVALID_TEMPLATE', `${where}: name at least one approver user or role`);
    if (s.rule === 'quorum' && !s.quorum) throw new ApiError(422, 'INVALID_TEMPLATE', `${where}: rule quorum needs quorum`);
    if (s.remindBeforeHours !== undefined && (s.dueHours === undefined || s.remindBeforeHours >= s.dueHours)) {
      throw new ApiError(422, 'INVALID_TEMPLATE', `${where}: remindBeforeHours needs dueHours and must be smaller`);
    }
    if (s.onDue && s.dueHours === undefined) throw new ApiError(422, 'INVALID_TEMPLATE', `${where}: onDue needs dueHours`);
    if (s.onDue?.action === 'escalate' && !(s.onDue.escalateTo?.users?.length || s.onDue.escalateTo?.roles?.length)) {
      throw new ApiError(422, 'INVALID_TEMPLATE', `${where}: escalate needs escalateTo`);
    }
    return {
      name: s.name, approvers: { users: s.approvers.users ?? [], roles: s.approvers.roles ?? [] }, rule: s.rule, quorum: s.quorum,
      rejectPolicy: s.rejectPolicy ?? 'immediate', dueHours: s.dueHours, remindBeforeHours: s.remindBeforeHours,
      onDue: s.onDue ? { action: s.onDue.action, escalateTo: s.onDue.escalateTo ? { users: s.onDue.escalateTo.users ?? [], roles: s.onDue.escalateTo.roles ?? [] } : undefined } : undefined,
    };
  });
  return { stages, allowSelfApproval: body.allowSelfApproval ?? false, autoApproveRoles: body.autoApproveRoles ?? [], maxPendingDays: body.maxPendingDays };
}

/**
 * A template whose stage would have nobody to sign (an unknown role, a user not active in this tenant, roles
 * without members, a quorum larger than the approvers) is refused when it is saved, not by rejecting every
 * flow it starts.
 */
async function checkTemplateApprovers(tenantId: string, def: TemplateDef): Promise<void> {
  const issues: ApproverIssue[] = [];
  for (const [i, st] of def.stages.entries()) {
    const named = await checkApproverSet(tenantId, st.approvers, `/stages/${i}/approvers`);
    issues.push(...named.issues);
    if (!named.issues.length && named.resolved.length < fewestEligible(st)) {
      issues.push({ path: `/stages/${i}/quorum`, message: `a quorum of ${st.quorum} needs as many approvers; these are ${named.resolved.length}` });
    }
    if (st.onDue?.escalateTo) issues.push(...(await checkApproverSet(tenantId, st.onDue.escalateTo, `/stages/${i}/onDue/escalateTo`)).issues);
  }
  if (issues.length) throw unresolved('Some stages would have nobody to sign', issues);
}

export interface FlowRequest {
  tenantId: string;
  requester: { id: string; roles: string[] };
  objectType: string;
  objectId: string;
  title: string;
  /** What template conditions read: computed from the object for object types Docket owns, the caller's otherwise. */
  context: Record<string, unknown>;
}

export interface PreparedFlow extends FlowRequest {
  id: string;
  workflowId: string;
  template: ApprovalTemplate;
  /** Each stage's approvers, resolved now (a snapshot of role membership). */
  approvers: string[][];
  autoApproved: boolean;
}

/**
 * Decides a new flow before anything is written: its template — the server's choice, the highest-priority
 * template of the object type whose condition holds for the context — and every stage's approvers. A flow
 * with a stage that could never be decided (too few approvers besides the requester) is refused with 422.
 */
export async function prepareFlow(r: FlowRequest): Promise<PreparedFlow> {
  const template = await chooseTemplate(r.tenantId, r.objectType, r.context);
  const def = template.definition;
  const autoApproved = autoApproves(def, r.requester.roles);
  const approvers = await Promise.all(def.stages.map((st) => resolveApprovers(r.tenantId, st.approvers.users, st.approvers.roles)));
  if (!autoApproved) {
    const issues = def.stages.flatMap((st, i) => {
      const eligible = def.allowSelfApproval ? approvers[i] : approvers[i].filter((u) => u !== r.requester.id);
      const need = fewestEligible(st);
      return eligible.length >= need ? [] : [{
        path: `/stages/${i}/approvers`,
        message: `stage "${st.name}" needs ${need} approver(s)${def.allowSelfApproval ? '' : ' other than the requester'}; it has ${eligible.length}`,
      }];
    });
    if (issues.length) throw unresolved(`Template "${template.name}" cannot decide this flow`, issues);
  }
  const id = randomUUID();
  return { ...r, id, workflowId: businessWorkflowId({ domain: APPROVALS_DOMAIN, tenantId: r.tenantId, entityId: id }), template, approvers, autoApproved };
}

/** The start of a prepared flow's workflow (findable by the object's id: ObjectId). */
function flowStart(p: PreparedFlow): StartBusinessWorkflow<typeof approvalFlowWorkflow> {
  return {
    workflowType: 'approvalFlowWorkflow', taskQueue: APPROVALS_TASK_QUEUE, domain: APPROVALS_DOMAIN, tenantId: p.tenantId,
    entityType: p.objectType, entityId: p.id, objectId: p.objectId, initialStatus: 'pending',
    args: [{
      flowId: p.id, tenantId: p.tenantId, objectType: p.objectType, objectId: p.objectId, title: p.title, requester: p.requester,
      template: { id: p.template.id, version: p.template.version }, definition: p.template.definition, approvers: p.approvers,
    }],
  };
}

/**
 * Writes a prepared flow's row, with its workflow's start intent: pending, or already approved when the
 * requester holds an auto-approve role (the workflow decides the same at once), so the answer to the start
 * says what the flow is.
 */
export async function insertFlow(p: PreparedFlow, transaction?: Transaction): Promise<ApprovalFlow> {
  if (!transaction) return ApprovalFlow.sequelize!.transaction((t) => insertFlow(p, t));
  await recordStartIntent(flowStart(p), transaction);
  const now = new Date();
  const state: FlowState = {
    flowId: p.id, status: p.autoApproved ? 'approved' : 'pending', currentStage: 0, version: -1,
    stages: p.template.definition.stages.map((st) => ({ name: st.name, status: 'waiting', approvers: [], signatures: [] })),
    ...(p.autoApproved ? { outcome: { reason: AUTO_APPROVE_REASON, by: p.requester.id, at: now.toISOString() } } : {}),
  };
  return ApprovalFlow.create({
    id: p.id, tenantId: p.tenantId, objectType: p.objectType, objectId: p.objectId, title: p.title, templateId: p.template.id,
    templateVersion: p.template.version, requesterId: p.requester.id, status: state.status, currentStage: 0, state, stateVersion: -1,
    pendingApprovers: [], context: p.context, workflowId: p.workflowId, completedAt: p.autoApproved ? now : null,
  }, { transaction });
}

/**
 * Starts the flow's workflow. If Temporal cannot take it, `undo` takes the written rows back first — a
 * pending row without its workflow would hold the object's one-pending-flow slot for good — and the API
 * answers 503.
 */
export async function launchFlow(deps: RouteDeps, p: PreparedFlow, undo: () => Promise<unknown>): Promise<void> {
  await startOrUndo(() => startBusinessWorkflow(deps.temporal.client, flowStart(p)), undo);
  deps.metrics.workflowStarts.inc({ workflow_type: 'approvalFlowWorkflow' });
}

/** Every condition of the object type's templates is evaluated under one budget (lib/conditions.ts). */
async function chooseTemplate(tenantId: string, objectType: string, context: Record<string, unknown>): Promise<ApprovalTemplate> {
  const candidates = await ApprovalTemplate.findAll({ where: { tenantId, objectType }, order: [['priority', 'DESC'], ['createdAt', 'ASC']] });
  const budget = new ConditionBudget();
  for (const t of candidates) {
    if (!t.condition) return t;
    let holds: boolean;
    try {
      holds = compileCondition(t.condition)(context, budget);
    } catch (err) {
      // Not "does not hold": skipping it could pick a laxer template of lower priority.
      throw new ApiError(422, 'INVALID_CONDITION', `The condition of template "${t.name}" (${t.id}) cannot be evaluated: ${(err as Error).message}`);
    }
    if (holds) return t;
  }
  throw new ApiError(422, 'NO_MATCHING_TEMPLATE', `No approval template for ${objectType} matches this context`);
}

/** Runs an Update on the flow's workflow; validator refusals become their 4xx, nothing written. */
async function updateFlow(deps: RouteDeps, flow: ApprovalFlow, run: (h: ReturnType<RouteDeps['temporal']['client']['workflow']['getHandle']>) => Promise<FlowState>): Promise<void> {
  if (flow.status !== 'pending') throw new ApiError(409, 'FLOW_CLOSED', `The flow is ${flow.status}`);
  try {
    await run(deps.temporal.client.workflow.getHandle(flow.workflowId));
  } catch (err) {
    const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type && cause.type in APPROVAL_REFUSALS) {
      throw new ApiError(APPROVAL_REFUSALS[cause.type as keyof typeof APPROVAL_REFUSALS], cause.type, cause.message);
    }
    if (err instanceof WorkflowNotFoundError || /already completed/i.test((err as Error).message)) throw new ApiError(409, 'FLOW_CLOSED', 'The flow has ended');
    throw err;
  }
  await flow.reload();
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));

function htmlPage(ctx: Koa.Context, status: number, title: string, body: string): void {
  ctx.status = status;
  ctx.type = 'text/html';
  ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>`
    + '<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}textarea{width:100%}</style></head>'
    + `<body><h1>${esc(title)}</h1>${body}</body></html>`;
}

export function approvalRoutes(deps: RouteDeps): Handlers {
  async function findTemplate(tenantId: string, id: string): Promise<ApprovalTemplate> {
    const t = await ApprovalTemplate.findOne({ where: { id, tenantId } });
    if (!t) throw notFound(`Approval template ${id}`);
    return t;
  }
  async function findFlow(tenantId: string, id: string): Promise<ApprovalFlow> {
    const f = await ApprovalFlow.findOne({ where: { id, tenantId } });
    if (!f) throw notFound(`Approval flow ${id}`);
    return f;
  }

  const usedPage = (ctx: Koa.Context) => htmlPage(ctx, 410, 'This link was used already', '<p>Each link works once.</p>');

  /**
   * Checks an emailed link as it is used: genuine and unexpired, not used, its flow still pending and still
   * at the link's stage, its user active and still allowed to sign. Answers a page otherwise.
   */
  async function openLink(ctx: Koa.Context, token: string) {
    let claims;
    try {
      claims = verifyLink(token, deps.config.linkSecret);
    } catch (err) {
      if (err instanceof LinkError && err.code === 'LINK_EXPIRED') return htmlPage(ctx, 410, 'This link has expired', '<p>Sign in to Docket to approve or reject.</p>');
      return htmlPage(ctx, 404, 'This link is not valid', '<p>Check that the whole link was copied.</p>');
    }
    if (await UsedLink.findByPk(claims.nonce)) return usedPage(ctx);
    const flow = await ApprovalFlow.findOne({ where: { id: claims.subjectId, tenantId: claims.tenantId } });
    const user = await User.findOne({ where: { id: claims.userId, tenantId: claims.tenantId, active: true }, include: [{ model: Role, as: 'roles', through: { attributes: [] } }] });
    if (!flow || !user) return htmlPage(ctx, 404, 'This link is not valid', '<p>The flow or the user no longer exists.</p>');
    if (flow.status !== 'pending') return htmlPage(ctx, 410, `This approval is ${flow.status}`, '<p>Nothing is left to sign.</p>');
    // Each stage's email carries its own links: one for an earlier stage signs nothing now.
    if (claims.stage !== undefined && claims.stage !== flow.currentStage) {
      return htmlPage(ctx, 410, 'This link is for another stage', '<p>The approval has moved on; a newer email has the links for its current stage.</p>');
    }
    // The link stands in for the user's credentials, so it carries no more than they hold today.
    if (!new PermissionSet((user.roles ?? []).flatMap((r) => r.permissions), null).has('approvals.flow.sign')) {
      return htmlPage(ctx, 403, 'You can no longer sign approvals', '<p>Your roles no longer allow signing (approvals.flow.sign).</p>');
    }
    return { claims, flow, user };
  }

  /** Takes a link for this use: of concurrent uses of one link, exactly one gets true. */
  async function claimLink(claims: LinkClaims): Promise<boolean> {
    try {
      await UsedLink.create({ nonce: claims.nonce, tenantId: claims.tenantId, usedAt: new Date() });
      return true;
    } catch (err) {
      if (err instanceof UniqueConstraintError) return false;
      throw err;
    }
  }

  return {
    async listApprovalTemplates(c, ctx) {
      const q = queryOf(c);
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (q.str('objectType')) where.objectType = q.str('objectType');
      ctx.body = page(await paginate(ApprovalTemplate, { where, limit: q.int('limit'), cursor: q.str('cursor') }), presentApprovalTemplate);
    },

    async createApprovalTemplate(c, ctx) {
      const body = c.request.requestBody as Schemas['ApprovalTemplateInput'];
      const definition = toDefinition(body);
      const audit = auditContext(ctx);
      await checkTemplateApprovers(audit.tenantId, definition);
      const t = await deps.sequelize.transaction(async (transaction) => {
        const created = await ApprovalTemplate.create({ id: randomUUID(), tenantId: audit.tenantId, name: body.name, objectType: body.objectType, condition: body.condition ?? null, priority: body.priority ?? 0, definition, version: 1 }, { transaction });
        await ApprovalTemplateVersion.create({ templateId: created.id, version: 1, tenantId: audit.tenantId, name: body.name, condition: body.condition ?? null, definition, createdBy: audit.actor.id }, { transaction });
        await recordAudit({ ...audit, action: 'approvals.template.created', entityType: 'approval_template', entityId: created.id, after: presentApprovalTemplate(created) }, transaction);
        return created;
      });
      respond(ctx, presentApprovalTemplate(t), { status: 201, location: `/v1/approval-templates/${t.id}`, etag: templateEtag(t.version) });
    },

    async getApprovalTemplate(c, ctx) {
      const t = await findTemplate(caller(ctx).tenant.id, c.request.params.templateId as string);
      respond(ctx, presentApprovalTemplate(t), { etag: templateEtag(t.version) });
    },

    async updateApprovalTemplate(c, ctx) {
      const body = c.request.requestBody as Schemas['ApprovalTemplateInput'];
      const definition = toDefinition(body);
      const audit = auditContext(ctx);
      await checkTemplateApprovers(audit.tenantId, definition);
      const t = await deps.sequelize.transaction(async (transaction) => {
        const found = await ApprovalTemplate.findOne({ where: { id: c.request.params.templateId as string, tenantId: audit.tenantId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!found) throw notFound(`Approval template ${c.request.params.templateId}`);
        checkIfMatch(ctx, templateEtag(found.version));
        const before = presentApprovalTemplate(found);
        Object.assign(found, { name: body.name, objectType: body.objectType, condition: body.condition ?? null, priority: body.priority ?? 0, definition, version: found.version + 1 });
        await found.save({ transaction });
        await ApprovalTemplateVersion.create({ templateId: found.id, version: found.version, tenantId: audit.tenantId, name: body.name, condition: body.condition ?? null, definition, createdBy: audit.actor.id }, { transaction });
        await recordAudit({ ...audit, action: 'approvals.template.updated', entityType: 'approval_template', entityId: found.id, before, after: presentApprovalTemplate(found) }, transaction);
        return found;
      });
      respond(ctx, presentApprovalTemplate(t), { etag: templateEtag(t.version) });
    },

    async deleteApprovalTemplate(c, ctx) {
      const audit = auditContext(ctx);
      await deps.sequelize.transaction(async (transaction) => {
        const t = await ApprovalTemplate.findOne({ where: { id: c.request.params.templateId as string, tenantId: audit.tenantId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!t) throw notFound(`Approval template ${c.request.params.templateId}`);
        const running = await ApprovalFlow.count({ where: { templateId: t.id, status: 'pending' }, transaction });
        if (running) throw new ApiError(409, 'DEPENDENCY_EXISTS', `${running} running flow(s) use this template`, { count: running });
        await t.destroy({ transaction });
        await recordAudit({ ...audit, action: 'approvals.template.deleted', entityType: 'approval_template', entityId: t.id, before: presentApprovalTemplate(t) }, transaction);
      });
      ctx.status = 204;
    },

    async listApprovalTemplateVersions(c, ctx) {
      const t = await findTemplate(caller(ctx).tenant.id, c.request.params.templateId as string);
      const versions = await ApprovalTemplateVersion.findAll({ where: { templateId: t.id }, order: [['version', 'DESC']] });
      ctx.body = { items: versions.map((v) => presentApprovalTemplate({ ...v.get(), id: t.id, objectType: t.objectType, priority: t.priority })) };
    },

    async listApprovalFlows(c, ctx) {
      const q = queryOf(c);
      const where: WhereOptions = { tenantId: caller(ctx).tenant.id };
      for (const k of ['status', 'objectType', 'objectId'] as const) if (q.str(k)) Object.assign(where, { [k]: q.str(k) });
      if (q.str('pendingFor')) Object.assign(where, { status: 'pending', pendingApprovers: { [Op.contains]: [q.str('pendingFor')] } });
      ctx.body = page(await paginateRows(ApprovalFlow, { where, limit: q.int('limit'), cursor: q.str('cursor'), attributes: FLOW_SUMMARY_ATTRIBUTES }), presentApprovalFlowSummary);
    },

    async listMyApprovals(c, ctx) {
      const q = queryOf(c);
      const a = caller(ctx);
      const where = { tenantId: a.tenant.id, status: 'pending', pendingApprovers: { [Op.contains]: [a.user.id] } };
      ctx.body = page(await paginateRows(ApprovalFlow, { where, limit: q.int('limit'), cursor: q.str('cursor'), attributes: FLOW_SUMMARY_ATTRIBUTES }), presentApprovalFlowSummary);
    },

    async createApprovalFlow(c, ctx) {
      const body = c.request.requestBody as Schemas['ApprovalFlowCreate'];
      if (Object.hasOwn(MANAGED_OBJECT_TYPES, body.objectType)) {
        throw new ApiError(422, 'OBJECT_MANAGED', `Approval of a ${body.objectType} is started from the object itself, with what it says: ${MANAGED_OBJECT_TYPES[body.objectType]}`);
      }
      const a = caller(ctx);
      // One pending flow per object: starting again returns it.
      const pendingWhere = { tenantId: a.tenant.id, objectType: body.objectType, objectId: body.objectId, status: 'pending' };
      const existing = await ApprovalFlow.findOne({ where: pendingWhere });
      if (existing) return respond(ctx, presentApprovalFlow(existing), {});
      const prepared = await prepareFlow({
        tenantId: a.tenant.id, requester: { id: a.user.id, roles: a.roles }, objectType: body.objectType, objectId: body.objectId,
        title: body.title || `${body.objectType} ${body.objectId}`, context: body.context ?? {},
      });
      let flow: ApprovalFlow;
      try {
        flow = await insertFlow(prepared);
      } catch (err) {
        // Two starts raced: the partial unique index let one through; return that one.
        if (err instanceof UniqueConstraintError) return respond(ctx, presentApprovalFlow((await ApprovalFlow.findOne({ where: pendingWhere }))!), {});
        throw err;
      }
      await launchFlow(deps, prepared, () => flow.destroy());
      respond(ctx, presentApprovalFlow(flow), { status: 201, location: `/v1/approval-flows/${flow.id}` });
    },

    async getApprovalFlowByObject(c, ctx) {
      const flow = await ApprovalFlow.findOne({
        where: { tenantId: caller(ctx).tenant.id, objectType: c.request.params.objectType as string, objectId: c.request.params.objectId as string },
        order: [['createdAt', 'DESC']],
      });
      if (!flow) throw notFound(`Approval flow of ${c.request.params.objectType} ${c.request.params.objectId}`);
      ctx.body = presentApprovalFlow(flow);
    },

    async getApprovalFlow(c, ctx) {
      ctx.body = presentApprovalFlow(await findFlow(caller(ctx).tenant.id, c.request.params.flowId as string));
    },

    async getApprovalFlowHistory(c, ctx) {
      const flow = await findFlow(caller(ctx).tenant.id, c.request.params.flowId as string);
      const events = await ApprovalEvent.findAll({ where: { flowId: flow.id }, order: [['seq', 'ASC']] });
      ctx.body = { items: events.map(presentApprovalEvent) };
    },

    async signApprovalFlow(c, ctx) {
      const body = c.request.requestBody as Schemas['SignRequest'];
      const a = caller(ctx);
      const flow = await findFlow(a.tenant.id, c.request.params.flowId as string);
      await updateFlow(deps, flow, (h) => h.executeUpdate(signUpdate, { args: [{ userId: a.user.id, roles: a.roles, decision: body.decision, comment: body.comment, via: 'api' }] }));
      ctx.body = presentApprovalFlow(flow);
    },

    async cancelApprovalFlow(c, ctx) {
      const body = (c.request.requestBody ?? {}) as { reason?: string };
      const a = caller(ctx);
      const flow = await findFlow(a.tenant.id, c.request.params.flowId as string);
      await updateFlow(deps, flow, (h) => h.executeUpdate(cancelUpdate, { args: [{ userId: a.user.id, isAdmin: a.permissions.has('approvals.flow.admin'), reason: body.reason }] }));
      ctx.body = presentApprovalFlow(flow);
    },

    async removeApprovalSignature(c, ctx) {
      const a = caller(ctx);
      const flow = await findFlow(a.tenant.id, c.request.params.flowId as string);
      const stage = Number(c.request.params.stage);
      await updateFlow(deps, flow, (h) => h.executeUpdate(removeSignatureUpdate, { args: [{ adminId: a.user.id, userId: c.request.params.userId as string, stage, reason: queryOf(c).str('reason') }] }));
      ctx.body = presentApprovalFlow(flow);
    },

    async viewApprovalLink(c, ctx) {
      const opened = await openLink(ctx, c.request.params.token as string);
      if (!opened) return;
      const { claims, flow } = opened;
      const approve = claims.action === 'approve';
      htmlPage(ctx, 200, `${approve ? 'Approve' : 'Reject'}: ${flow.title}`,
        `<p>Stage: ${esc(flow.state.stages[flow.currentStage]?.name ?? '')}</p>`
        + `<form method="post"><label>${approve ? 'Comment (optional)' : 'Reason (required)'}<br><textarea name="comment" rows="4"${approve ? '' : ' required'}></textarea></label>`
        + `<p><button type="submit">${approve ? 'Approve' : 'Reject'}</button></p></form>`);
    },

    async confirmApprovalLink(c, ctx) {
      const opened = await openLink(ctx, c.request.params.token as string);
      if (!opened) return;
      const { claims, flow, user } = opened;
      const comment = ((c.request.requestBody ?? {}) as { comment?: string }).comment?.trim() || undefined;
      // Claimed before signing, so four simultaneous POSTs of one link sign once; given back if nothing was signed.
      if (!(await claimLink(claims))) return usedPage(ctx);
      try {
        await updateFlow(deps, flow, (h) => h.executeUpdate(signUpdate, {
          args: [{
            userId: user.id, roles: (user.roles ?? []).map((r) => r.key), decision: claims.action === 'reject' ? 'reject' : 'approve', comment, via: 'email',
            stage: claims.stage,
          }],
        }));
      } catch (err) {
        // Refused (e.g. a reject without its reason) or not reached: the link stays usable. If the sign was in
        // fact applied and only its answer lost, using the link again is refused by the flow (ALREADY_SIGNED).
        await UsedLink.destroy({ where: { nonce: claims.nonce } });
        if (err instanceof ApiError && err.status < 500) {
          return htmlPage(ctx, err.code === 'FLOW_CLOSED' || err.code === 'STAGE_CHANGED' ? 410 : 409, 'Not signed', `<p>${esc(err.detail)}</p>`);
        }
        throw err;
      }
      htmlPage(ctx, 200, claims.action === 'reject' ? 'Rejected' : 'Approved', `<p>${esc(flow.title)} — recorded. The flow is now ${esc(flow.status)}.</p>`);
    },
  };
}
