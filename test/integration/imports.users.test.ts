// The users import target: roles by key, granted only where the importing credential could grant them itself,
// and no user who holds more than that credential is changed — a matrix of caller permissions.
import { randomUUID } from 'node:crypto';
import { PermissionSet } from '../../domains/identity/permissions';
import { ApprovalTemplate, createSequelize, ImportRejection, Role, User, UserRole } from '../../db';
import { IDENTITY_LOCK_CLASS } from '../../domains/identity/commands';
import { ImportError, mergeImport, revertImport, stageImport } from '../../domains/imports/pipeline';
import { buildTenant } from '../helpers/factories';
import { createRun, fileSource, runImport } from '../helpers/imports';

const sequelize = createSequelize(process.env.DATABASE_URL!);
afterAll(() => sequelize.close());

const COLUMNS = [
  { source: 'email', field: 'email' },
  { source: 'name', field: 'name' },
  { source: 'roles', field: 'roles', transforms: [{ op: 'split' as const, separator: ' ' }] },
];

async function tenantWithRoles() {
  const tenant = await buildTenant();
  const role = (key: string, permissions: string[]) => Role.create({ id: randomUUID(), tenantId: tenant.id, key, title: key, permissions });
  const roles = { admin: await role('admin', ['*']), editor: await role('editor', ['files.read', 'files.write']), viewer: await role('viewer', ['files.read']) };
  const boss = await User.create({ id: randomUUID(), tenantId: tenant.id, email: 'boss@x.com', name: 'Boss' });
  await UserRole.create({ userId: boss.id, roleId: roles.admin.id, tenantId: tenant.id });
  const ed = await User.create({ id: randomUUID(), tenantId: tenant.id, email: 'ed@x.com', name: 'Ed' });
  await UserRole.create({ userId: ed.id, roleId: roles.viewer.id, tenantId: tenant.id });
  return { tenant, roles };
}

const FILE = 'email,name,roles\nnew@x.com,New,viewer\nup@x.com,Up,editor\nboss@x.com,Boss Renamed,viewer\ned@x.com,Edward,editor\nghost@x.com,Ghost,nope\n';

async function rolesOf(tenantId: string, email: string): Promise<string[]> {
  const user = await User.findOne({ where: { tenantId, email }, include: [{ model: Role, as: 'roles' }] });
  return (user?.roles ?? []).map((r) => r.key).sort();
}

describe('users import, by caller permissions', () => {
  it.each([
    ['an admin (*)', ['*'], { created: 2, updated: 2, rejected: 1 }, { 'up@x.com': ['editor'], 'boss@x.com': ['admin', 'viewer'], 'ed@x.com': ['editor', 'viewer'] }],
    ['a user manager holding files.*', ['identity.users.manage', 'files.*'], { created: 2, updated: 1, rejected: 2 }, { 'up@x.com': ['editor'], 'boss@x.com': ['admin'], 'ed@x.com': ['editor', 'viewer'] }],
    ['a user manager holding files.read only', ['identity.users.manage', 'files.read'], { created: 1, updated: 0, rejected: 4 }, { 'up@x.com': [], 'boss@x.com': ['admin'], 'ed@x.com': ['viewer'] }],
  ])('%s', async (_who, perms, counts, roles) => {
    const { tenant } = await tenantWithRoles();
    const { run, counts: got } = await runImport(sequelize, tenant, FILE, { target: 'users', columns: COLUMNS, strategy: 'merge' }, { caller: new PermissionSet(perms, null) });
    expect(got).toMatchObject(counts);
    for (const [email, keys] of Object.entries(roles)) expect(await rolesOf(tenant.id, email)).toEqual(keys);
    const rej = await ImportRejection.findAll({ where: { importId: run.id }, order: [['rowNo', 'ASC']] });
    expect(rej.find((r) => r.rowNo === 6)).toMatchObject({ code: 'REFERENCE_NOT_FOUND', columnName: 'roles' });
    if (!perms.includes('*')) {
      // Boss holds '*': nobody without it changes Boss, not even the name.
      expect(rej.find((r) => r.rowNo === 4)).toMatchObject({ code: 'NOT_PERMITTED', columnName: 'email' });
      expect((await User.findOne({ where: { tenantId: tenant.id, email: 'boss@x.com' } }))?.name).toBe('Boss');
    }
  });

  it('judges the importer\'s permissions under the identity lock: a demotion committed while a chunk waits for it counts', async () => {
    const { tenant } = await tenantWithRoles();
    const run = await createRun(tenant, { target: 'users', columns: COLUMNS, strategy: 'merge' });
    const ids = { tenantId: tenant.id, importId: run.id };
    const admin = new PermissionSet(['*'], null);
    await stageImport(sequelize, ids, { source: fileSource(FILE), caller: admin });
    // An edit of the importer's roles holds the lock (as updateUser does) while the merge starts …
    const edit = await sequelize.transaction();
    await sequelize.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', { bind: [IDENTITY_LOCK_CLASS, tenant.id], transaction: edit });
    let demoted = false;
    const merging = mergeImport(sequelize, ids, { caller: admin, standing: async () => new PermissionSet(demoted ? ['identity.users.manage', 'files.*'] : ['*'], null), concurrency: 1, chunkRows: 100 });
    await new Promise((r) => setTimeout(r, 300));
    // … and commits the demotion: the chunk, waiting on the lock, reads the importer's standing only now.
    demoted = true;
    await edit.commit();
    // What the user manager of the first case gets, not the admin's.
    expect(await merging).toMatchObject({ created: 2, updated: 1, rejected: 2 });
    expect(await rolesOf(tenant.id, 'boss@x.com')).toEqual(['admin']);
  });

  it('a scoped key narrows what its user may grant', async () => {
    const { tenant } = await tenantWithRoles();
    const { counts } = await runImport(sequelize, tenant, 'email,name,roles\nk@x.com,K,editor\n', { target: 'users', columns: COLUMNS }, { caller: new PermissionSet(['*'], ['identity.users.manage', 'files.read']) });
    expect(counts).toMatchObject({ created: 0, rejected: 1 });
    expect(await User.count({ where: { tenantId: tenant.id, email: 'k@x.com' } })).toBe(0);
  });

  it.each([
    ['a user manager holding the roles\' permissions', new PermissionSet(['identity.users.manage', 'files.*'], null), { created: 1, updated: 1, rejected: 1 }],
    ['a key scoped to them (its user holds *)', new PermissionSet(['*'], ['identity.users.manage', 'files.*']), { created: 1, updated: 1, rejected: 1 }],
    ['the same with approvals.template.manage', new PermissionSet(['identity.users.manage', 'files.*', 'approvals.template.manage'], null), { created: 2, updated: 1, rejected: 0 }],
  ])('a role an approval template names (approval authority) is given only with approvals.template.manage: %s', async (_who, caller, counts) => {
    const { tenant } = await tenantWithRoles();
    const boss = (await User.findOne({ where: { tenantId: tenant.id, email: 'boss@x.com' } }))!;
    // `viewer` approves purchases at once; ed@ holds it already.
    await ApprovalTemplate.create({
      id: randomUUID(), tenantId: tenant.id, name: 'Purchases', objectType: 'purchase_order', condition: null, priority: 0, version: 1,
      definition: { stages: [{ name: 'S', approvers: { users: [boss.id], roles: [] }, rule: 'any', rejectPolicy: 'immediate' }], allowSelfApproval: false, autoApproveRoles: ['viewer'] },
    });
    const file = 'email,name,roles\nnew@x.com,New,viewer\ned@x.com,Edward,viewer\nup@x.com,Up,editor\n';
    const { run, counts: got } = await runImport(sequelize, tenant, file, { target: 'users', columns: COLUMNS, strategy: 'merge' }, { caller });
    expect(got).toMatchObject(counts);
    // Ed keeps the role he held (renamed: no grant); the ordinary role is given either way.
    expect([await rolesOf(tenant.id, 'ed@x.com'), (await User.findOne({ where: { tenantId: tenant.id, email: 'ed@x.com' } }))?.name]).toEqual([['viewer'], 'Edward']);
    expect(await rolesOf(tenant.id, 'up@x.com')).toEqual(['editor']);
    const rejections = (await ImportRejection.findAll({ where: { importId: run.id } })).map((r) => [r.rowNo, r.code, r.columnName, r.message]);
    if (counts.rejected) {
      expect(rejections).toEqual([[2, 'NOT_PERMITTED', 'roles', expect.stringContaining('approvals.template.manage')]]);
      expect(await User.count({ where: { tenantId: tenant.id, email: 'new@x.com' } })).toBe(0);
    } else {
      expect(rejections).toEqual([]);
      expect(await rolesOf(tenant.id, 'new@x.com')).toEqual(['viewer']);
    }
  });

  it('without the caller\'s permissions nothing is imported (PERMISSIONS_REQUIRED)', async () => {
    const { tenant } = await tenantWithRoles();
    await expect(runImport(sequelize, tenant, FILE, { target: 'users', columns: COLUMNS })).rejects.toBeInstanceOf(ImportError);
    expect(await User.count({ where: { tenantId: tenant.id } })).toBe(2);
  });

  it('updates bump the user version (ETag), and a revert restores names and takes the added roles back', async () => {
    const { tenant } = await tenantWithRoles();
    const ed = (await User.findOne({ where: { tenantId: tenant.id, email: 'ed@x.com' } }))!;
    const { run } = await runImport(sequelize, tenant, 'email,name,roles\ned@x.com,Edward,editor\nnew@x.com,New,viewer\n', { target: 'users', columns: COLUMNS }, { caller: new PermissionSet(['*'], null) });
    const after = (await User.findOne({ where: { tenantId: tenant.id, email: 'ed@x.com' } }))!;
    expect([after.name, after.version]).toEqual(['Edward', ed.version + 1]);
    await revertImport(sequelize, { tenantId: tenant.id, importId: run.id }, { revertedBy: 'test', caller: new PermissionSet(['*'], null) });
    expect((await User.findOne({ where: { tenantId: tenant.id, email: 'ed@x.com' } }))?.name).toBe('Ed');
    expect(await rolesOf(tenant.id, 'ed@x.com')).toEqual(['viewer']);
    expect(await User.count({ where: { tenantId: tenant.id, email: 'new@x.com' } })).toBe(0);
  });

  describe('a revert is held to the rules an edit of those users is', () => {
    /** An admin imports ops@ as a second admin and gives ed@ the editor role; then `perms` reverts it. */
    async function imported() {
      const { tenant, roles } = await tenantWithRoles();
      const { run } = await runImport(sequelize, tenant, 'email,name,roles\nops@x.com,Ops,admin\ned@x.com,Ed,editor\n', { target: 'users', columns: COLUMNS }, { caller: new PermissionSet(['*'], null) });
      expect(await rolesOf(tenant.id, 'ops@x.com')).toEqual(['admin']);
      return { tenant, roles, run };
    }
    const revert = (tenantId: string, importId: string, perms: string[]) =>
      revertImport(sequelize, { tenantId, importId }, { revertedBy: 'test', caller: new PermissionSet(perms, null) });

    it.each([
      ['a user manager holding files.*', ['identity.users.manage', 'imports.revert', 'files.*']],
      ['a user manager holding everything but one permission', ['identity.*', 'imports.*', 'files.*', 'audit.*']],
    ])('%s cannot revert an import that made an admin: 403 PERMISSION_ESCALATION, nothing changed', async (_who, perms) => {
      const { tenant, run } = await imported();
      await expect(revert(tenant.id, run.id, perms)).rejects.toMatchObject({ status: 403, code: 'PERMISSION_ESCALATION', extra: expect.objectContaining({ permission: '*' }) });
      expect(await rolesOf(tenant.id, 'ops@x.com')).toEqual(['admin']);
      expect(await rolesOf(tenant.id, 'ed@x.com')).toEqual(['editor', 'viewer']);
    });

    it('judges the reverter under the identity lock: a demotion committed while the revert waits for it counts (403, nothing changed)', async () => {
      const { tenant, run } = await imported();
      const edit = await sequelize.transaction();
      await sequelize.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', { bind: [IDENTITY_LOCK_CLASS, tenant.id], transaction: edit });
      let demoted = false;
      const reverting = revertImport(sequelize, { tenantId: tenant.id, importId: run.id }, {
        revertedBy: 'test', caller: new PermissionSet(['*'], null),
        standing: async () => new PermissionSet(demoted ? ['identity.users.manage', 'imports.revert', 'files.*'] : ['*'], null),
      });
      await new Promise((r) => setTimeout(r, 300));
      demoted = true;
      await edit.commit();
      await expect(reverting).rejects.toMatchObject({ status: 403, code: 'PERMISSION_ESCALATION' });
      expect(await rolesOf(tenant.id, 'ops@x.com')).toEqual(['admin']);
    });

    it('an admin can, and the users go back to what they were', async () => {
      const { tenant, run } = await imported();
      await revert(tenant.id, run.id, ['*']);
      expect(await User.count({ where: { tenantId: tenant.id, email: 'ops@x.com' } })).toBe(0);
      expect(await rolesOf(tenant.id, 'ed@x.com')).toEqual(['viewer']);
    });

    it('a user manager can revert an import that only touched users with no more than it holds', async () => {
      const { tenant } = await tenantWithRoles();
      const { run } = await runImport(sequelize, tenant, 'email,name,roles\nv@x.com,V,viewer\n', { target: 'users', columns: COLUMNS }, { caller: new PermissionSet(['*'], null) });
      await revert(tenant.id, run.id, ['identity.users.manage', 'imports.revert', 'files.read']);
      expect(await User.count({ where: { tenantId: tenant.id, email: 'v@x.com' } })).toBe(0);
    });

    it('never leaves the tenant without an active admin: 409 LAST_ADMIN, nothing changed', async () => {
      const { tenant, run } = await imported();
      // The admin who was there before leaves; the imported one is now the only one.
      await User.update({ active: false }, { where: { tenantId: tenant.id, email: 'boss@x.com' } });
      await expect(revert(tenant.id, run.id, ['*'])).rejects.toMatchObject({ status: 409, code: 'LAST_ADMIN' });
      expect(await rolesOf(tenant.id, 'ops@x.com')).toEqual(['admin']);
      expect(await rolesOf(tenant.id, 'ed@x.com')).toEqual(['editor', 'viewer']);
    });
  });
});
