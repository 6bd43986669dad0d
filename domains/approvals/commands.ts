// Approval commands: save templates (versioned), start a flow (its template and approvers decided by the
// server), sign, cancel and correct it (Updates its workflow validates), and use an emailed one-click link.
import { randomUUID } from 'node:crypto';
import { Transaction, UniqueConstraintError } from 'sequelize';
import { ApprovalFlow, ApprovalTemplate, ApprovalTemplateVersion } from '../../db/models/approvals';
import { UsedLink } from '../../db/models/links';
import { ApprovalSettings } from '../../db/models/settings';
import { Role, User } from '../../db/models/identity';
import { recordAudit } from '../../lib/audit';
import { ApiError } from '../../lib/problems';
import { recordStartIntent, StartBusinessWorkflow, startBusinessWorkflow, startOrUndo } from '../../lib/temporal';
import { findInTenant } from '../../lib/tenancy';
import { executeCommand } from '../../lib/updates';
import type { approvalFlowWorkflow } from '../../workflows/approvals';
import {
  adminDecideUpdate, APPROVAL_PATCHES, APPROVAL_REFUSALS, APPROVALS_DOMAIN, APPROVALS_TASK_QUEUE, cancelUpdate, FlowState, removeSignatureUpdate, signUpdate, type TemplateDef,
} from '../../workflows/approvals.api';
import { AUTO_APPROVE_REASON, autoApproves, fewestEligible, NOT_REQUIRED_REASON } from '../../workflows/approvals.rules';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { auditBy, Caller, CommandDeps, Precondition } from '../command';
import { lockTenantIdentity } from '../identity/lock';
import { PermissionSet } from '../identity/permissions';
import type { Schemas } from '../schemas';
import { resolvePeople } from '../identity/people';
import { compileCondition, ConditionBudget } from './conditions';
import { checkTemplateApprovers, toDefinition, unresolved } from './definitions';
import { LinkClaims, LinkError, verifyLink } from './links';
import { presentApprovalTemplate } from './presenters';

/**
 * Object types Docket owns, and the route that starts their approval. Their flows start only from the
 * object, with the context computed from it: a caller's `POST /v1/approval-flows` for one is refused,
 * since its `context` (what template conditions read) would be the caller's word.
 */
export const MANAGED_OBJECT_TYPES: Readonly<Record<string, string>> = { purchase_order: 'POST /v1/purchase-orders/{orderId}/submit' };

// Templates
//
// A save that can name a role takes the tenant's identity lock first (domains/identity/lock.ts, which says the order):
// a role a template names carries approval authority (./authority.ts), and role grants read which roles do under that
// lock. So a grant in flight finishes before the save is written, and one after it is judged with the save.

export async function createApprovalTemplate(deps: CommandDeps, c: Caller, input: Schemas['ApprovalTemplateInput']): Promise<ApprovalTemplate> {
  const definition = toDefinition(input);
  await checkTemplateApprovers(c.tenantId, definition);
  return deps.sequelize.transaction(async (transaction) => {
    await lockTenantIdentity(deps.sequelize, c.tenantId, transaction);
    const created = await ApprovalTemplate.create({ id: randomUUID(), tenantId: c.tenantId, name: input.name, objectType: input.objectType, condition: input.condition ?? null, priority: input.priority ?? 0, definition, version: 1 }, { transaction });
    await ApprovalTemplateVersion.create({ templateId: created.id, version: 1, tenantId: c.tenantId, name: input.name, condition: input.condition ?? null, definition, createdBy: c.actor.id }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'approvals.template.created', entityType: 'approval_template', entityId: created.id, after: presentApprovalTemplate(created) }, transaction);
    return created;
  });
}

/** A new version of the template; running flows keep the version they started with. */
export async function updateApprovalTemplate(deps: CommandDeps, c: Caller, id: string, input: Schemas['ApprovalTemplateInput'], precondition?: Precondition): Promise<ApprovalTemplate> {
  const definition = toDefinition(input);
  await checkTemplateApprovers(c.tenantId, definition);
  return deps.sequelize.transaction(async (transaction) => {
    await lockTenantIdentity(deps.sequelize, c.tenantId, transaction);
    const found = await findInTenant(ApprovalTemplate, c.tenantId, id, 'Approval template', { transaction, lock: transaction.LOCK.UPDATE });
    precondition?.(found.version);
    const before = presentApprovalTemplate(found);
    Object.assign(found, { name: input.name, objectType: input.objectType, condition: input.condition ?? null, priority: input.priority ?? 0, definition, version: found.version + 1 });
    await found.save({ transaction });
    await ApprovalTemplateVersion.create({ templateId: found.id, version: found.version, tenantId: c.tenantId, name: input.name, condition: input.condition ?? null, definition, createdBy: c.actor.id }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'approvals.template.updated', entityType: 'approval_template', entityId: found.id, before, after: presentApprovalTemplate(found) }, transaction);
    return found;
  });
}

export async function deleteApprovalTemplate(deps: CommandDeps, c: Caller, id: string): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const t = await findInTenant(ApprovalTemplate, c.tenantId, id, 'Approval template', { transaction, lock: transaction.LOCK.UPDATE });
    const running = await ApprovalFlow.count({ where: { templateId: t.id, status: 'pending' }, transaction });
    if (running) throw new ApiError(409, 'DEPENDENCY_EXISTS', `${running} running flow(s) use this template`, { count: running });
    await t.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'approvals.template.deleted', entityType: 'approval_template', entityId: t.id, before: presentApprovalTemplate(t) }, transaction);
  });
}

// Starting a flow

export interface FlowRequest {
  tenantId: string;
  requester: { id: string; roles: string[] };
  objectType: string;
  objectId: string;
  title: string;
  /** What template conditions read: computed from the object for object types Docket owns, the caller's otherwise. */
  context: Record<string, unknown>;
  /** Who wrote the object besides the requester (e.g. a purchase order's editors): like the requester, not its approvers. */
  contributors?: string[];
}

export interface PreparedFlow extends FlowRequest {
  id: string;
  workflowId: string;
  /** Null when the tenant does not require approval of the object type (then `notRequired`). */
  template: { id: string; version: number } | null;
  definition: TemplateDef;
  /** Each stage's approvers, resolved now (a snapshot of role membership). */
  approvers: string[][];
  autoApproved: boolean;
  notRequired: boolean;
}

/** A flow that needs no approval has no stages. */
const NO_STAGES: TemplateDef = { stages: [], allowSelfApproval: false, autoApproveRoles: [] };

/** Every condition of the object type's templates is evaluated under one budget (domains/approvals/conditions.ts). */
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

/**
 * Decides a new flow before anything is written: its template — the server's choice, the highest-priority
 * template of the object type whose condition holds for the context — and every stage's approvers. A flow
 * with a stage that could never be decided (too few approvers besides the requester) is refused with 422.
 */
export async function prepareFlow(r: FlowRequest): Promise<PreparedFlow> {
  const id = randomUUID();
  const workflowId = businessWorkflowId({ domain: APPROVALS_DOMAIN, tenantId: r.tenantId, entityId: id });
  // The tenant's own data decides whether approval is needed at all: no template is chosen, nothing is asked of anyone.
  const settings = await ApprovalSettings.findByPk(r.tenantId, { attributes: ['notRequiredObjectTypes'] });
  if (settings?.notRequiredObjectTypes.includes(r.objectType)) {
    return { ...r, id, workflowId, template: null, definition: NO_STAGES, approvers: [], autoApproved: false, notRequired: true };
  }
  const template = await chooseTemplate(r.tenantId, r.objectType, r.context);
  const def = template.definition;
  const autoApproved = autoApproves(def, r.requester.roles);
  const approvers = await Promise.all(def.stages.map((st) => resolvePeople(r.tenantId, st.approvers.users, st.approvers.roles)));
  if (!autoApproved) {
    const issues = def.stages.flatMap((st, i) => {
      const eligible = def.allowSelfApproval ? approvers[i] : approvers[i].filter((u) => u !== r.requester.id && !r.contributors?.includes(u));
      const need = fewestEligible(st);
      return eligible.length >= need ? [] : [{
        path: `/stages/${i}/approvers`,
        message: `stage "${st.name}" needs ${need} approver(s)${def.allowSelfApproval ? '' : r.contributors?.length ? ' other than the requester and who wrote it' : ' other than the requester'}; it has ${eligible.length}`,
      }];
    });
    if (issues.length) throw unresolved(`Template "${template.name}" cannot decide this flow`, issues);
  }
  return { ...r, id, workflowId, template: { id: template.id, version: template.version }, definition: def, approvers, autoApproved, notRequired: false };
}

/** The start of a prepared flow's workflow (findable by the object's id: ObjectId). */
function flowStart(p: PreparedFlow): StartBusinessWorkflow<typeof approvalFlowWorkflow> {
  return {
    workflowType: 'approvalFlowWorkflow', taskQueue: APPROVALS_TASK_QUEUE, domain: APPROVALS_DOMAIN, tenantId: p.tenantId,
    entityType: p.objectType, entityId: p.id, objectId: p.objectId, initialStatus: 'pending',
    args: [{
      flowId: p.id, tenantId: p.tenantId, objectType: p.objectType, objectId: p.objectId, title: p.title, requester: p.requester,
      template: p.template, definition: p.definition, approvers: p.approvers, ...(p.notRequired ? { notRequired: true } : {}),
      ...(p.contributors?.length ? { contributors: p.contributors } : {}),
      patches: APPROVAL_PATCHES,
    }],
  };
}

/** insertFlow's refusal of a flow prepared from a template version that is no longer current (prepareAndInsertFlow prepares it again). */
export class TemplateChanged extends ApiError {
  constructor() {
    super(409, 'INVALID_STATE', 'The approval template changed while this flow was being started; start it again');
  }
}

/**
 * Writes a prepared flow's row, with its workflow's start intent: pending, or already approved when the
 * requester holds an auto-approve role (the workflow decides the same at once), so the answer to the start
 * says what the flow is. TemplateChanged when its template version is no longer current.
 */
export async function insertFlow(p: PreparedFlow, transaction?: Transaction): Promise<ApprovalFlow> {
  if (!transaction) return ApprovalFlow.sequelize!.transaction((t) => insertFlow(p, t));
  if (p.template) {
    // A pending flow's version adds its escalation targets to the roles carrying approval authority (./authority.ts):
    // a version a template save has just replaced must not come back that way after a grant was judged without it.
    // The row is locked (KEY SHARE: flow starts do not wait for each other) so a save waits for this flow and sees it.
    const current = await ApprovalTemplate.findOne({ where: { id: p.template.id, tenantId: p.tenantId }, attributes: ['version'], transaction, lock: transaction.LOCK.KEY_SHARE });
    if (current?.version !== p.template.version) throw new TemplateChanged();
  }
  await recordStartIntent(flowStart(p), transaction);
  const now = new Date();
  const atOnce = p.notRequired ? NOT_REQUIRED_REASON : p.autoApproved ? AUTO_APPROVE_REASON : null;
  const state: FlowState = {
    flowId: p.id, status: atOnce ? 'approved' : 'pending', currentStage: 0, version: -1,
    stages: p.definition.stages.map((st) => ({ name: st.name, status: 'waiting', approvers: [], signatures: [] })),
    ...(atOnce ? { outcome: { reason: atOnce, by: p.requester.id, at: now.toISOString() } } : {}),
  };
  return ApprovalFlow.create({
    id: p.id, tenantId: p.tenantId, objectType: p.objectType, objectId: p.objectId, title: p.title, templateId: p.template?.id ?? null,
    templateVersion: p.template?.version ?? null, requesterId: p.requester.id, status: state.status, currentStage: 0, state, stateVersion: -1,
    pendingApprovers: [], context: p.context, workflowId: p.workflowId, completedAt: atOnce ? now : null,
  }, { transaction });
}

/**
 * prepareFlow, then insertFlow (in `transaction`, or one of its own): prepared again, up to 3 times, when a template
 * save lands in between, so the flow runs on its template as it is when the flow is written.
 */
export async function prepareAndInsertFlow(r: FlowRequest, transaction?: Transaction): Promise<{ prepared: PreparedFlow; flow: ApprovalFlow }> {
  for (let attempt = 1; ; attempt++) {
    const prepared = await prepareFlow(r);
    try {
      return { prepared, flow: await insertFlow(prepared, transaction) };
    } catch (err) {
      if (!(err instanceof TemplateChanged) || attempt >= 3) throw err;
    }
  }
}

/**
 * Starts the flow's workflow. If Temporal cannot take it, `undo` takes the written rows back first — a
 * pending row without its workflow would hold the object's one-pending-flow slot for good — and the API
 * answers 503.
 */
export async function launchFlow(deps: CommandDeps, p: PreparedFlow, undo: () => Promise<unknown>): Promise<void> {
  await startOrUndo(() => startBusinessWorkflow(deps.temporal.client, flowStart(p)), undo);
  deps.metrics.workflowStarts.inc({ workflow_type: 'approvalFlowWorkflow' });
}

/**
 * Starts the approval of an object Docket does not own, with the caller's context. One pending flow per
 * object: starting again answers the pending one (`started: false`).
 */
export async function startApprovalFlow(deps: CommandDeps, c: Caller, input: Schemas['ApprovalFlowCreate']): Promise<{ flow: ApprovalFlow; started: boolean }> {
  if (Object.hasOwn(MANAGED_OBJECT_TYPES, input.objectType)) {
    throw new ApiError(422, 'OBJECT_MANAGED', `Approval of a ${input.objectType} is started from the object itself, with what it says: ${MANAGED_OBJECT_TYPES[input.objectType]}`);
  }
  const pendingWhere = { tenantId: c.tenantId, objectType: input.objectType, objectId: input.objectId, status: 'pending' };
  const existing = await ApprovalFlow.findOne({ where: pendingWhere });
  if (existing) return { flow: existing, started: false };
  let prepared: PreparedFlow;
  let flow: ApprovalFlow;
  try {
    ({ prepared, flow } = await prepareAndInsertFlow({
      tenantId: c.tenantId, requester: { id: c.userId, roles: c.roles }, objectType: input.objectType, objectId: input.objectId,
      title: input.title || `${input.objectType} ${input.objectId}`, context: input.context ?? {},
    }));
  } catch (err) {
    // Two starts raced: the partial unique index let one through; answer that one.
    if (err instanceof UniqueConstraintError) return { flow: (await ApprovalFlow.findOne({ where: pendingWhere }))!, started: false };
    throw err;
  }
  await launchFlow(deps, prepared, () => flow.destroy());
  return { flow, started: true };
}

// Commands to a running flow (Updates: the workflow's validator refuses a bad one, nothing written)

const FLOW_REFUSALS = { statuses: APPROVAL_REFUSALS, closed: () => new ApiError(409, 'FLOW_CLOSED', 'The flow has ended') };

/** The flow's workflow, to send an Update to; a flow that has ended takes none. */
function pendingFlowHandle(deps: CommandDeps, flow: ApprovalFlow) {
  if (flow.status !== 'pending') throw new ApiError(409, 'FLOW_CLOSED', `The flow is ${flow.status}`);
  return deps.temporal.client.workflow.getHandle(flow.workflowId);
}

/** Signs as the caller (approve, or reject with a reason); answers the flow as its activity wrote it. */
export async function signFlow(deps: CommandDeps, c: Caller, flowId: string, input: Schemas['SignRequest']): Promise<ApprovalFlow> {
  const flow = await findInTenant(ApprovalFlow, c.tenantId, flowId, 'Approval flow');
  await executeCommand(pendingFlowHandle(deps, flow), signUpdate, [{ userId: c.userId, roles: c.roles, decision: input.decision, comment: input.comment, via: 'api' }], FLOW_REFUSALS);
  return flow.reload();
}

/** Cancels the flow: its requester, or anyone holding approvals.flow.admin. */
export async function cancelFlow(deps: CommandDeps, c: Caller, flowId: string, reason?: string): Promise<ApprovalFlow> {
  const flow = await findInTenant(ApprovalFlow, c.tenantId, flowId, 'Approval flow');
  await executeCommand(pendingFlowHandle(deps, flow), cancelUpdate, [{ userId: c.userId, isAdmin: c.permissions.has('approvals.flow.admin'), reason }], FLOW_REFUSALS);
  return flow.reload();
}

/**
 * An admin decides a pending flow for everyone (approvals.flow.decide, checked by the route): approved or rejected
 * with a reason, in the flow's history and the audit log as the admin's; the object follows as after any decision.
 */
export async function adminDecideFlow(deps: CommandDeps, c: Caller, flowId: string, input: { decision: 'approve' | 'reject'; reason: string }): Promise<ApprovalFlow> {
  const flow = await findInTenant(ApprovalFlow, c.tenantId, flowId, 'Approval flow');
  await executeCommand(pendingFlowHandle(deps, flow), adminDecideUpdate, [{ adminId: c.userId, decision: input.decision, reason: input.reason }], FLOW_REFUSALS);
  return flow.reload();
}

/** An admin takes a user's signature off a stage (the flow validates who may). */
export async function removeSignature(deps: CommandDeps, c: Caller, flowId: string, s: { userId: string; stage: number; reason?: string }): Promise<ApprovalFlow> {
  const flow = await findInTenant(ApprovalFlow, c.tenantId, flowId, 'Approval flow');
  await executeCommand(pendingFlowHandle(deps, flow), removeSignatureUpdate, [{ adminId: c.userId, userId: s.userId, stage: s.stage, reason: s.reason }], FLOW_REFUSALS);
  return flow.reload();
}

// One-click links (emailed by activities/approvals.ts)

/** Why a link cannot be used now (the page shown says so). */
export type LinkRefusal = 'invalid' | 'expired' | 'used' | 'gone' | 'ended' | 'other_stage' | 'not_allowed';

export interface OpenedLink { claims: LinkClaims; flow: ApprovalFlow; user: User }

/**
 * Checks an emailed link as it is used: genuine and unexpired, not used, its flow still pending and still
 * at the link's stage, its user active and still allowed to sign (the link stands in for their credentials,
 * so it carries no more than they hold today).
 */
export async function openLink(deps: CommandDeps, token: string, beforeLookup?: () => void): Promise<{ link: OpenedLink } | { refused: LinkRefusal; flow?: ApprovalFlow }> {
  let claims: LinkClaims;
  try {
    claims = verifyLink(token, deps.config.linkSecret);
  } catch (err) {
    return { refused: err instanceof LinkError && err.code === 'LINK_EXPIRED' ? 'expired' : 'invalid' };
  }
  beforeLookup?.();
  if (await UsedLink.findByPk(claims.nonce)) return { refused: 'used' };
  const flow = await ApprovalFlow.findOne({ where: { id: claims.subjectId, tenantId: claims.tenantId } });
  const user = await User.findOne({ where: { id: claims.userId, tenantId: claims.tenantId, active: true }, include: [{ model: Role, as: 'roles', through: { attributes: [] } }] });
  if (!flow || !user) return { refused: 'gone' };
  if (flow.status !== 'pending') return { refused: 'ended', flow };
  // Each stage's email carries its own links: one for an earlier stage signs nothing now.
  if (claims.stage !== undefined && claims.stage !== flow.currentStage) return { refused: 'other_stage', flow };
  if (!new PermissionSet((user.roles ?? []).flatMap((r) => r.permissions), null).has('approvals.flow.sign')) return { refused: 'not_allowed', flow };
  return { link: { claims, flow, user } };
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

/**
 * Signs as the link's user, once: the link is claimed before signing, so four simultaneous uses sign once
 * ('used' for the others). A refusal of the flow (thrown, e.g. a reject without its reason) gives the link
 * back: it stays usable. If the sign was in fact applied and only its answer lost, using the link again is
 * refused by the flow (ALREADY_SIGNED).
 */
export async function signByLink(deps: CommandDeps, { claims, flow, user }: OpenedLink, comment: string | undefined): Promise<ApprovalFlow | 'used'> {
  if (!(await claimLink(claims))) return 'used';
  try {
    await executeCommand(pendingFlowHandle(deps, flow), signUpdate, [{
      userId: user.id, roles: (user.roles ?? []).map((r) => r.key), decision: claims.action === 'reject' ? 'reject' : 'approve', comment, via: 'email', stage: claims.stage,
    }], FLOW_REFUSALS);
  } catch (err) {
    await UsedLink.destroy({ where: { nonce: claims.nonce } });
    throw err;
  }
  return flow.reload();
}
