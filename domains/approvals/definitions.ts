// What an approval template may say, checked when it is saved: stages that can be decided, conditions that
// compile, approvers who exist (so a template is refused, not every flow it would start).
import { ApiError } from '../../lib/problems';
import type { TemplateDef } from '../../workflows/approvals.api';
import { fewestEligible } from '../../workflows/approvals.rules';
import type { Schemas } from '../schemas';
import { checkPeopleSet, type PeopleSetIssue } from '../identity/people';
import { compileCondition } from './conditions';

export const unresolved = (what: string, issues: PeopleSetIssue[]) =>
  new ApiError(422, 'UNRESOLVED_APPROVERS', `${what}: ${issues.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors: issues });

/** A condition compiles (filtrex: no globals, no prototype access) or the template is refused. */
function checkCondition(condition: string): void {
  try {
    compileCondition(condition);
  } catch (err) {
    throw new ApiError(422, 'INVALID_CONDITION', `condition: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
  }
}

export function toDefinition(body: Schemas['ApprovalTemplateInput']): TemplateDef {
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
export async function checkTemplateApprovers(tenantId: string, def: TemplateDef): Promise<void> {
  const issues: PeopleSetIssue[] = [];
  for (const [i, st] of def.stages.entries()) {
    const named = await checkPeopleSet(tenantId, st.approvers, `/stages/${i}/approvers`);
    issues.push(...named.issues);
    if (!named.issues.length && named.resolved.length < fewestEligible(st)) {
      issues.push({ path: `/stages/${i}/quorum`, message: `a quorum of ${st.quorum} needs as many approvers; these are ${named.resolved.length}` });
    }
    if (st.onDue?.escalateTo) issues.push(...(await checkPeopleSet(tenantId, st.onDue.escalateTo, `/stages/${i}/onDue/escalateTo`)).issues);
  }
  if (issues.length) throw unresolved('Some stages would have nobody to sign', issues);
}
