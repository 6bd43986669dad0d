// Which of a tenant's roles carry approval authority: the roles its approval templates name. Such a role decides
// approvals whatever permissions it grants — its holders' flows are approved at once (autoApproveRoles), they are a
// stage's approvers (approvers.roles), or they become approvers when a stage falls due (onDue.escalateTo.roles) — so
// who holds it is approval policy, not only a matter of permissions. Granting one (domains/identity/commands.ts, the
// users import in domains/imports/targets/users.ts) therefore needs, besides the role's permissions, what deciding
// who approves needs: APPROVAL_AUTHORITY_PERMISSION. Taking one away needs nothing more.
import type { Sequelize, Transaction } from 'sequelize';
import { QueryTypes } from 'sequelize';

/**
 * Whoever holds approvals.template.manage decides who approves already (a template may name any role or user), so
 * giving someone a role that a template names adds nothing to what they could do.
 */
export const APPROVAL_AUTHORITY_PERMISSION = 'approvals.template.manage';

/**
 * The keys (`key`) of the roles carrying approval authority in tenant $1 — the server's own data decides, never the
 * caller. From each template's current version, all three: a flow started from now on decides its auto-approval and
 * snapshots its stages' approvers from it, by role membership at the start. From an older version a pending flow still
 * runs on, its escalation targets only: those are resolved when a stage falls due (workflows/approvals.ts), from the
 * version the flow started with, while its auto-approval and approvers were decided at its start. Role keys named
 * here need not exist (a role deleted since, or made again later under the same key, is judged by its key).
 */
export const APPROVAL_ROLE_KEYS_SQL = `WITH defs AS (
    SELECT t.definition, true AS current FROM approval_templates t WHERE t.tenant_id = $1
    UNION ALL
    SELECT v.definition, false FROM approval_template_versions v WHERE v.tenant_id = $1
      AND EXISTS (SELECT 1 FROM approval_flows f WHERE f.template_id = v.template_id AND f.status = 'pending' AND f.template_version = v.version)
  )
  SELECT DISTINCT k.key FROM defs CROSS JOIN LATERAL (
    SELECT jsonb_array_elements_text(defs.definition->'autoApproveRoles') WHERE defs.current
    UNION ALL SELECT jsonb_array_elements_text(s->'approvers'->'roles') FROM jsonb_array_elements(defs.definition->'stages') s WHERE defs.current
    UNION ALL SELECT jsonb_array_elements_text(s->'onDue'->'escalateTo'->'roles') FROM jsonb_array_elements(defs.definition->'stages') s
  ) AS k(key)`;

/** The role keys carrying approval authority in the tenant (APPROVAL_ROLE_KEYS_SQL). */
export async function approvalRoleKeys(sequelize: Sequelize, tenantId: string, transaction?: Transaction): Promise<Set<string>> {
  const rows = await sequelize.query<{ key: string }>(APPROVAL_ROLE_KEYS_SQL, { bind: [tenantId], type: QueryTypes.SELECT, transaction });
  return new Set(rows.map((r) => r.key));
}
