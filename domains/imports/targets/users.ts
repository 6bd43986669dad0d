// Import target `users`: keyed by email; name and roles by key. Nobody gets a role through an import that the
// importing credential could not grant, and no user who holds more than that credential is changed by it. A role an
// approval template names (approval authority, domains/approvals/authority.ts) is given only by a credential holding
// approvals.template.manage besides the role's permissions, as through the API.
import type { ClientBase } from 'pg';
import { ApiError } from '../../../lib/problems';
import { APPROVAL_AUTHORITY_PERMISSION, APPROVAL_ROLE_KEYS_SQL } from '../../approvals/authority';
import { COUNT_ADMINS_SQL, refuseLastAdmin } from '../../identity/commands';
import { lockTenantIdentity } from '../../identity/lock';
import { ImportError } from '../errors';
import { ALL_KEYS, ChunkRaceError, inKeyRange, type ImportTarget, type KeyRange, type MergeContext, type MergeCounts } from './types';

/** The tenant's role ids the caller could grant: roles whose every permission the caller holds. */
async function grantableRoles(db: ClientBase, ctx: MergeContext): Promise<string[]> {
  if (!ctx.caller) throw new ImportError('PERMISSIONS_REQUIRED', 'Importing users needs the permissions of the credential that asked for it');
  const { rows } = await db.query<{ id: string; permissions: string[] }>('SELECT id, permissions FROM roles WHERE tenant_id = $1', [ctx.tenantId]);
  return rows.filter((r) => ctx.caller!.missing(r.permissions).length === 0).map((r) => r.id);
}

/**
 * The keys of the tenant's roles carrying approval authority, when the caller lacks approvals.template.manage (so may
 * not give them to anyone); none when it holds it.
 */
async function authorityRoles(db: ClientBase, ctx: MergeContext): Promise<string[]> {
  if (!ctx.caller!.missing([APPROVAL_AUTHORITY_PERMISSION]).length) return [];
  const { rows } = await db.query<{ key: string }>(APPROVAL_ROLE_KEYS_SQL, [ctx.tenantId]);
  return rows.map((r) => r.key);
}

/**
 * Rejects (and drops from staging) the rows in `range` that name an unknown role (REFERENCE_NOT_FOUND), a role the
 * caller could not grant, a role carrying approval authority the row's user would gain while the caller lacks
 * approvals.template.manage, or — unless they would be skipped — an existing user holding a role the caller could not
 * grant (NOT_PERMITTED).
 */
async function rejectRows(db: ClientBase, ctx: MergeContext, range: KeyRange): Promise<number> {
  const grantable = await grantableRoles(db, ctx);
  const authority = await authorityRoles(db, ctx);
  const roleColumn = ctx.headers?.roles ?? 'roles';
  const emailColumn = ctx.headers?.email ?? 'email';
  const checkExisting = ctx.strategy !== 'skip';
  const res = await db.query(`WITH c AS (SELECT * FROM ${ctx.stage} WHERE ${inKeyRange('key', 4, 5)}),
    roles_of AS (SELECT id, key FROM roles WHERE tenant_id = $1),
    unknown AS (
      SELECT c.row_no, min(k) AS k FROM c CROSS JOIN LATERAL unnest(c.f_roles) AS k
      WHERE c.f_roles IS NOT NULL AND NOT EXISTS (SELECT 1 FROM roles_of r WHERE r.key = k) GROUP BY c.row_no
    ),
    beyond AS (
      SELECT c.row_no, min(r.key) AS k FROM c CROSS JOIN LATERAL unnest(c.f_roles) AS k JOIN roles_of r ON r.key = k
      WHERE c.f_roles IS NOT NULL AND r.id <> ALL($3::uuid[]) AND c.row_no NOT IN (SELECT row_no FROM unknown) GROUP BY c.row_no
    ),
    authority AS (
      SELECT c.row_no, min(r.key) AS k FROM c CROSS JOIN LATERAL unnest(c.f_roles) AS k JOIN roles_of r ON r.key = k
      LEFT JOIN users u ON u.tenant_id = $1 AND u.email = c.key
      WHERE c.f_roles IS NOT NULL AND r.key = ANY($9::text[])
        AND (u.id IS NULL OR ($6 AND NOT EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_id = r.id)))
        AND c.row_no NOT IN (SELECT row_no FROM unknown UNION ALL SELECT row_no FROM beyond) GROUP BY c.row_no
    ),
    holds AS (
      SELECT DISTINCT c.row_no FROM c JOIN users u ON u.tenant_id = $1 AND u.email = c.key
      JOIN user_roles ur ON ur.user_id = u.id
      WHERE $6 AND ur.role_id <> ALL($3::uuid[])
        AND c.row_no NOT IN (SELECT row_no FROM unknown UNION ALL SELECT row_no FROM beyond UNION ALL SELECT row_no FROM authority)
    ),
    bad AS (
      SELECT row_no, $7::text AS col, 'REFERENCE_NOT_FOUND' AS code, 'There is no role "' || k || '"' AS message FROM unknown
      UNION ALL SELECT row_no, $7, 'NOT_PERMITTED', 'You cannot grant the role "' || k || '": it carries permissions you do not hold' FROM beyond
      UNION ALL SELECT row_no, $7, 'NOT_PERMITTED', 'You cannot grant the role "' || k || '": an approval template names it (approval authority), which needs the permission ' || $10::text FROM authority
      UNION ALL SELECT row_no, $8, 'NOT_PERMITTED', 'This user holds permissions you do not hold: only someone who holds all of them may change it' FROM holds
    ),
    rej AS (
      INSERT INTO import_rejections (tenant_id, import_id, row_no, column_name, code, message)
      SELECT $1, $2, row_no, col, code, message FROM bad ON CONFLICT DO NOTHING
    )
    DELETE FROM ${ctx.stage} s USING bad WHERE s.row_no = bad.row_no`,
  [ctx.tenantId, ctx.importId, grantable, range.from, range.to, checkExisting, roleColumn, emailColumn, authority, APPROVAL_AUTHORITY_PERMISSION]);
  return res.rowCount ?? 0;
}

export const usersTarget: ImportTarget = {
  name: 'users',
  description: 'Users of the tenant, matched by email; roles by key, only ever added, and only roles the importing credential could grant itself (a role an approval template names also needs approvals.template.manage).',
  permission: 'identity.users.manage',
  key: 'email',
  fields: [
    { name: 'email', type: 'email', required: true, description: 'The login address (trimmed and lower-cased); the key.' },
    { name: 'name', type: 'string', required: true, maxLength: 200, description: 'Display name.' },
    { name: 'roles', type: 'list', maxItems: 20, maxLength: 100, description: 'Role keys to grant (use a split transform for several); they must exist.' },
  ],

  rejectStaged: (db, ctx) => rejectRows(db, ctx, ALL_KEYS),

  async mergeChunk(db, ctx, range): Promise<MergeCounts> {
    // Under the API's identity lock, the checks are made again: roles and grants may have changed since staging.
    await lockTenantIdentity(db, ctx.tenantId);
    // The importer's own permissions too: a demotion committed before the lock is seen; one after it waits for this chunk.
    const caller = ctx.standing ? await ctx.standing(db) : ctx.caller;
    const rejected = await rejectRows(db, { ...ctx, caller }, range);
    const params = [ctx.tenantId, ctx.importId, range.from, range.to];
    const chunk = `c AS (SELECT * FROM ${ctx.stage} WHERE ${inKeyRange('key', 3, 4)}),
      roles_of AS (SELECT id, key FROM roles WHERE tenant_id = $1)`;
    const insert = `ins AS (
        INSERT INTO users (id, tenant_id, email, name, active, version, import_id, created_at, updated_at)
        SELECT c.id, $1, c.key, c.f_name, true, 0, $2, now(), now() FROM c WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.row_no = c.row_no)
        ON CONFLICT (tenant_id, email) DO NOTHING RETURNING id
      ),
      ins_roles AS (
        INSERT INTO user_roles (user_id, role_id, tenant_id)
        SELECT DISTINCT c.id, r.id, $1::uuid FROM c JOIN ins ON ins.id = c.id CROSS JOIN LATERAL unnest(c.f_roles) AS k JOIN roles_of r ON r.key = k
      )`;
    if (ctx.strategy === 'skip') {
      const { rows: [r] } = await db.query(`WITH ${chunk},
        old AS (SELECT c.row_no FROM c JOIN users u ON u.tenant_id = $1 AND u.email = c.key), ${insert}
        SELECT (SELECT count(*) FROM c)::int AS rows, (SELECT count(*) FROM ins)::int AS created`, params);
      return { created: r.created, updated: 0, unchanged: 0, skipped: r.rows - r.created, rejected };
    }
    const { rows: [r] } = await db.query(`WITH ${chunk},
      old AS (
        SELECT u.id, u.name, u.import_id, c.row_no, ${ctx.strategy === 'replace' ? 'c.f_name' : 'COALESCE(c.f_name, u.name)'} AS n_name,
          ARRAY(SELECT ur.role_id FROM user_roles ur WHERE ur.user_id = u.id ORDER BY ur.role_id) AS role_ids,
          ARRAY(SELECT r.id FROM roles_of r WHERE r.key = ANY(c.f_roles)
                AND NOT EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_id = r.id)) AS add_roles
        FROM c JOIN users u ON u.tenant_id = $1 AND u.email = c.key
        FOR UPDATE OF u
      ),
      changed AS (SELECT * FROM old WHERE n_name IS DISTINCT FROM name OR cardinality(add_roles) > 0),
      bi AS (
        INSERT INTO import_before_images (tenant_id, import_id, row_id, before)
        SELECT $1, $2, id, jsonb_build_object('name', name, 'roles', role_ids, 'import_id', import_id) FROM changed
      ),
      up AS (
        UPDATE users u SET name = ch.n_name, version = u.version + 1, import_id = $2, updated_at = now()
        FROM changed ch WHERE u.id = ch.id RETURNING 1
      ),
      up_roles AS (
        INSERT INTO user_roles (user_id, role_id, tenant_id) SELECT ch.id, unnest(ch.add_roles), $1::uuid FROM changed ch ON CONFLICT DO NOTHING
      ),
      ${insert}
      SELECT (SELECT count(*) FROM c)::int AS rows, (SELECT count(*) FROM old)::int AS existing,
             (SELECT count(*) FROM up)::int AS updated, (SELECT count(*) FROM ins)::int AS created`, params);
    if (r.created + r.existing < r.rows) throw new ChunkRaceError(`${r.rows - r.created - r.existing} users were created by someone else meanwhile`);
    return { created: r.created, updated: r.updated, unchanged: r.existing - r.updated, skipped: 0, rejected };
  },

  async dryRun(db, ctx) {
    const nameExpr = ctx.strategy === 'replace' ? 'c.f_name' : 'COALESCE(c.f_name, u.name)';
    const { rows: [r] } = await db.query(`SELECT count(*)::int AS rows, count(u.id)::int AS existing,
        count(*) FILTER (WHERE u.id IS NOT NULL AND (${nameExpr} IS DISTINCT FROM u.name OR EXISTS (
          SELECT 1 FROM unnest(c.f_roles) AS k JOIN roles r ON r.tenant_id = $1 AND r.key = k
          WHERE NOT EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_id = r.id))))::int AS changed
      FROM ${ctx.stage} c LEFT JOIN users u ON u.tenant_id = $1 AND u.email = c.key`, [ctx.tenantId]);
    if (ctx.strategy === 'skip') return { created: r.rows - r.existing, updated: 0, unchanged: 0, skipped: r.existing, rejected: 0 };
    return { created: r.rows - r.existing, updated: r.changed, unchanged: r.existing - r.changed, skipped: 0, rejected: 0 };
  },

  async revert(db, { tenantId, importId, created, caller: asked, standing }) {
    const params = [tenantId, importId];
    await lockTenantIdentity(db, tenantId);
    // Judged under the lock every role and user edit takes: a demotion that committed while this waited counts.
    const caller = standing ? await standing(db) : asked;
    // A revert deletes users and takes roles away as an edit through the API would, so it is held to the same rules:
    // only someone who holds every permission of each user it changes may (users still carrying the import's id are
    // the ones it would delete or restore), and never the tenant's last active admin.
    const { rows: held } = await db.query<{ permissions: string[] }>(`SELECT DISTINCT r.permissions FROM users u
      JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id WHERE u.tenant_id = $1 AND u.import_id = $2`, params);
    const beyond = caller.missing(held.flatMap((r) => r.permissions));
    if (beyond.length) {
      throw new ApiError(403, 'PERMISSION_ESCALATION', `Users this import wrote hold ${beyond.join(', ')}, which you do not hold: only someone who holds all of it may revert it`,
        { permission: beyond[0] });
    }
    const admins = async () => (await db.query<{ n: number }>(COUNT_ADMINS_SQL, [tenantId, null])).rows[0].n;
    const adminsBefore = await admins();
    const { rows: [{ expected }] } = await db.query('SELECT count(*)::int AS expected FROM import_before_images WHERE tenant_id = $1 AND import_id = $2', params);
    // A created user who has API keys since is in use: deleting it would take the keys along.
    const del = await db.query(`DELETE FROM users u WHERE u.tenant_id = $1 AND u.import_id = $2
      AND NOT EXISTS (SELECT 1 FROM import_before_images b WHERE b.tenant_id = $1 AND b.import_id = $2 AND b.row_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.user_id = u.id)`, params);
    const up = await db.query(`UPDATE users u SET name = b.before->>'name', import_id = (b.before->>'import_id')::uuid, version = u.version + 1, updated_at = now()
      FROM import_before_images b WHERE b.tenant_id = $1 AND b.import_id = $2 AND u.tenant_id = $1 AND u.id = b.row_id AND u.import_id = $2`, params);
    const [deleted, restored] = [del.rowCount ?? 0, up.rowCount ?? 0];
    if (deleted !== created || restored !== expected) {
      throw new ImportError('IMPORT_CHANGED_SINCE', `${created - deleted + expected - restored} of the users this import wrote have changed since; nothing was reverted`, {
        created: { expected: created, unchanged: deleted }, updated: { expected, unchanged: restored },
      });
    }
    // The roles the import added (it never removes any) go again.
    await db.query(`DELETE FROM user_roles ur USING import_before_images b
      WHERE b.tenant_id = $1 AND b.import_id = $2 AND ur.user_id = b.row_id
      AND NOT (to_jsonb(ur.role_id::text) <@ (b.before->'roles'))`, params);
    refuseLastAdmin(adminsBefore, await admins());
    return { deleted, restored };
  },
};
