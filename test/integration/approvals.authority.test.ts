// Approval authority hangs on role keys (a template's autoApproveRoles, its stages' approvers.roles and escalation
// targets), so who holds such a role is approval policy: granting one needs approvals.template.manage besides the
// role's permissions. Every grant path tried by every kind of caller, each in a fresh tenant, against the expected
// allow/deny — a refusal is 403 PERMISSION_DENIED naming the permission and writes nothing — and the reported exploit
// end to end: a user manager with purchasing permissions cannot make herself an auto-approver.
import { randomUUID } from 'node:crypto';
import { ApprovalFlow, AuditEvent, PurchaseOrder, Role, Tenant, User, UserRole } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { createOrder } from '../helpers/approvals';
import { buildApiKey, buildTenant } from '../helpers/factories';
import { runPermissionMatrix } from '../helpers/matrix';
import { waitFor } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  await app.startWorker();
});
afterAll(() => app.close());

/** What every role below grants: the caller of every level holds it all, so only approval authority can refuse it. */
const MALLORY = ['identity.users.manage', 'purchasing.order.*', 'approvals.flow.create', 'approvals.flow.read', 'approvals.flow.sign'];

const LEVELS = [
  'users.manage + the roles\' permissions',
  'the same + approvals.template.manage',
  'the same + approvals.*',
  'admin (*)',
  'key scoped to the roles\' permissions (owner: the same + approvals.template.manage)',
] as const;
type Level = (typeof LEVELS)[number];
const CALLERS: Record<Level, { permissions: string[]; keyScopes?: string[] }> = {
  'users.manage + the roles\' permissions': { permissions: MALLORY },
  'the same + approvals.template.manage': { permissions: [...MALLORY, 'approvals.template.manage'] },
  'the same + approvals.*': { permissions: [...MALLORY, 'approvals.*'] },
  'admin (*)': { permissions: ['*'] },
  'key scoped to the roles\' permissions (owner: the same + approvals.template.manage)': { permissions: [...MALLORY, 'approvals.template.manage'], keyScopes: MALLORY },
};
const SCOPED_KEY: Level = 'key scoped to the roles\' permissions (owner: the same + approvals.template.manage)';
const WITH_AUTHORITY: Level[] = ['the same + approvals.template.manage', 'the same + approvals.*', 'admin (*)'];

/**
 * One tenant: an admin with a key; roles `cfo` (in the template's autoApproveRoles; purchasing.order.read only),
 * `board` (its stage's approvers), `escalation` (the stage's escalation target), `clerk` (named by no template);
 * `boardmember` (board + escalation), `chief` (cfo), `retired` (board, deactivated), `other` (no roles); the caller
 * (role `caller` with the level's permissions) and its credential; the purchase-order template.
 */
async function buildWorld(level: Level) {
  const tenant = await buildTenant();
  const role = (key: string, permissions: string[]) => Role.create({ id: randomUUID(), tenantId: tenant.id, key, title: key, permissions });
  const user = async (name: string, roles: Role[], active = true) => {
    const u = await User.create({ id: randomUUID(), tenantId: tenant.id, email: `${name}-${randomUUID().slice(0, 8)}@example.com`, name, active });
    for (const r of roles) await UserRole.create({ userId: u.id, roleId: r.id, tenantId: tenant.id });
    return u;
  };
  const roles = {
    admin: await role('admin', ['*']),
    cfo: await role('cfo', ['purchasing.order.read']),
    board: await role('board', ['approvals.flow.sign']),
    escalation: await role('escalation', ['approvals.flow.sign']),
    clerk: await role('clerk', ['purchasing.order.read']),
  };
  const adminKey = await buildApiKey(await user('admin', [roles.admin]));
  const boardmember = await user('boardmember', [roles.board, roles.escalation]);
  const chief = await user('chief', [roles.cfo]);
  const retired = await user('retired', [roles.board], false);
  const other = await user('other', []);
  const spec = CALLERS[level];
  const caller = await user('caller', [await role('caller', spec.permissions)]);
  const callerKey = await buildApiKey(caller, { scopes: spec.keyScopes });
  const template = (await app.call('post', '/v1/approval-templates', adminKey).send({
    name: 'Purchases', objectType: 'purchase_order', autoApproveRoles: ['cfo'],
    stages: [{ name: 'Board', approvers: { roles: ['board'] }, rule: 'any', dueHours: 48, onDue: { action: 'escalate', escalateTo: { roles: ['escalation'] } } }],
  }).expect(201)).body;
  return { tenant, roles, adminKey, boardmember, chief, retired, other, caller, callerKey, template };
}
type World = Awaited<ReturnType<typeof buildWorld>>;

/** Everything a refused identity change could have written. */
async function snapshot(tenant: Tenant) {
  const tenantId = tenant.id;
  return {
    audit: await AuditEvent.count({ where: { tenantId } }),
    users: (await User.findAll({ where: { tenantId }, order: [['id', 'ASC']] })).map((u) => [u.id, u.name, u.active, u.version]),
    userRoles: (await UserRole.findAll({ where: { tenantId }, order: [['userId', 'ASC'], ['roleId', 'ASC']] })).map((ur) => [ur.userId, ur.roleId]),
  };
}

const as = (w: World, method: Parameters<TestApp['call']>[0], url: string) => app.call(method, url, w.callerKey);

/**
 * `self`: the caller changes its own user — which a key scoped below its user never may, whatever the change (its user
 * holds more than the key: 403 PERMISSION_ESCALATION, the rule of identity-matrix.test.ts).
 */
const OPERATIONS: { name: string; call: (w: World) => ReturnType<TestApp['call']>; allowed: readonly Level[]; self?: true }[] = [
  { name: 'updateUser: give myself the auto-approve role', allowed: WITH_AUTHORITY, self: true,
    call: (w) => as(w, 'patch', `/v1/users/${w.caller.id}`).send({ roles: ['caller', 'cfo'] }) },
  { name: 'updateUser: give another user the auto-approve role', allowed: WITH_AUTHORITY,
    call: (w) => as(w, 'patch', `/v1/users/${w.other.id}`).send({ roles: ['cfo'] }) },
  { name: 'updateUser: give myself the stage-approver role', allowed: WITH_AUTHORITY, self: true,
    call: (w) => as(w, 'patch', `/v1/users/${w.caller.id}`).send({ roles: ['caller', 'board'] }) },
  { name: 'updateUser: give another user the stage-approver role', allowed: WITH_AUTHORITY,
    call: (w) => as(w, 'patch', `/v1/users/${w.other.id}`).send({ roles: ['board'] }) },
  { name: 'updateUser: give another user the escalation role', allowed: WITH_AUTHORITY,
    call: (w) => as(w, 'patch', `/v1/users/${w.other.id}`).send({ roles: ['escalation'] }) },
  { name: 'createUser with the auto-approve role', allowed: WITH_AUTHORITY,
    call: (w) => as(w, 'post', '/v1/users').send({ email: 'new@example.com', name: 'New', roles: ['cfo'] }) },
  { name: 'createUser with the stage-approver role', allowed: WITH_AUTHORITY,
    call: (w) => as(w, 'post', '/v1/users').send({ email: 'new@example.com', name: 'New', roles: ['clerk', 'board'] }) },
  { name: 'updateUser: make active again a deactivated holder of the stage-approver role', allowed: WITH_AUTHORITY,
    call: (w) => as(w, 'patch', `/v1/users/${w.retired.id}`).send({ active: true }) },
  { name: 'updateUser: give myself an ordinary role', allowed: LEVELS, self: true,
    call: (w) => as(w, 'patch', `/v1/users/${w.caller.id}`).send({ roles: ['caller', 'clerk'] }) },
  { name: 'createUser with an ordinary role', allowed: LEVELS,
    call: (w) => as(w, 'post', '/v1/users').send({ email: 'new@example.com', name: 'New', roles: ['clerk'] }) },
  { name: 'updateUser: take the auto-approve role away', allowed: LEVELS,
    call: (w) => as(w, 'patch', `/v1/users/${w.chief.id}`).send({ roles: [] }) },
  { name: 'updateUser: an ordinary role for a holder of the auto-approve role, who keeps it', allowed: LEVELS,
    call: (w) => as(w, 'patch', `/v1/users/${w.chief.id}`).send({ roles: ['cfo', 'clerk'], name: 'Chief' }) },
  { name: 'updateUser: deactivate a holder of the stage-approver role', allowed: LEVELS,
    call: (w) => as(w, 'patch', `/v1/users/${w.boardmember.id}`).send({ active: false }) },
];

describe.each(OPERATIONS)('$name', ({ call, allowed, self }) => {
  it('is allowed exactly for the callers holding approvals.template.manage where the role carries approval authority; a refusal names it and changes nothing', async () => {
    await runPermissionMatrix({
      levels: LEVELS, build: buildWorld, call, snapshot,
      expected: (level) => (self && level === SCOPED_KEY ? 'refused 403 PERMISSION_ESCALATION'
        : allowed.includes(level) ? 'allowed' : 'refused 403 PERMISSION_DENIED approvals.template.manage'),
      refusal: (res) => [`refused ${res.status}`, res.body.code, ...(res.body.code === 'PERMISSION_DENIED' ? [res.body.permission] : [])].join(' '),
    });
  });
});

describe('which roles carry approval authority: the server reads its templates', () => {
  const MALLORY_LEVEL: Level = 'users.manage + the roles\' permissions';

  it('an older template version counts while a pending flow still runs on it (its escalation targets are resolved when a stage falls due), and not after', async () => {
    const w = await buildWorld(MALLORY_LEVEL);
    // A flow started on version 1 (escalating to `escalation`) is pending; version 2 escalates to `board` instead.
    const flow = await ApprovalFlow.create({
      id: randomUUID(), tenantId: w.tenant.id, objectType: 'contract', objectId: 'c-1', title: 'c-1', templateId: w.template.id, templateVersion: 1,
      requesterId: w.other.id, status: 'pending', currentStage: 0, state: { flowId: 'x', status: 'pending', currentStage: 0, version: -1, stages: [] },
      stateVersion: -1, pendingApprovers: [w.boardmember.id], context: {}, workflowId: `approvals:${w.tenant.id}:${randomUUID()}`, completedAt: null,
    });
    await app.call('put', `/v1/approval-templates/${w.template.id}`, w.adminKey).send({
      name: 'Purchases', objectType: 'purchase_order', autoApproveRoles: ['cfo'],
      stages: [{ name: 'Board', approvers: { roles: ['board'] }, rule: 'any', dueHours: 48, onDue: { action: 'escalate', escalateTo: { roles: ['board'] } } }],
    }).expect(200);
    const before = await snapshot(w.tenant);
    const refused = await as(w, 'patch', `/v1/users/${w.other.id}`).send({ roles: ['escalation'] }).expect(403);
    expect(refused.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'approvals.template.manage', detail: expect.stringContaining('"escalation"') });
    expect(await snapshot(w.tenant)).toEqual(before);
    // Once that flow has ended, no template names the role any more: an ordinary role.
    await flow.update({ status: 'approved', completedAt: new Date() });
    const granted = await as(w, 'patch', `/v1/users/${w.other.id}`).send({ roles: ['escalation'] }).expect(200);
    expect(granted.body.roles).toEqual(['escalation']);
  });

  it('a role a template names is judged by its key: deleted and made again, it still carries the authority', async () => {
    const w = await buildWorld(MALLORY_LEVEL);
    await UserRole.destroy({ where: { roleId: w.roles.cfo.id } });
    await app.call('delete', '/v1/roles/cfo', w.adminKey).expect(204);
    await app.call('post', '/v1/roles', w.adminKey).send({ key: 'cfo', title: 'CFO again', permissions: ['purchasing.order.read'] }).expect(201);
    const refused = await as(w, 'patch', `/v1/users/${w.caller.id}`).send({ roles: ['caller', 'cfo'] }).expect(403);
    expect(refused.body.permission).toBe('approvals.template.manage');
  });
});

describe('the reported exploit, end to end', () => {
  it('a user manager with purchasing permissions cannot make herself an auto-approver: 403, her roles unchanged, her order waits for the board', async () => {
    const w = await buildWorld('users.manage + the roles\' permissions');
    const refused = await as(w, 'patch', `/v1/users/${w.caller.id}`).send({ roles: ['caller', 'cfo'] }).expect(403);
    expect(refused.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'approvals.template.manage' });
    expect((await app.call('get', '/v1/me', w.callerKey).expect(200)).body.roles).toEqual(['caller']);

    const po = await createOrder(app, w.callerKey, 50_000);
    const submitted = await as(w, 'post', `/v1/purchase-orders/${po.id}/submit`).expect(202);
    expect(submitted.body.state).toBe('pending_approval');
    const flow = await waitFor(async () => {
      const res = await app.call('get', `/v1/approval-flows/${submitted.body.approvalFlowId}`, w.adminKey).expect(200);
      return res.body.stages[0].status === 'active' && res.body;
    }, { what: 'stage 0 open' });
    expect(flow).toMatchObject({ status: 'pending', pendingApprovers: [w.boardmember.id] });
    expect((await PurchaseOrder.findByPk(po.id))!.state).toBe('pending_approval');
  });

  it('the same grant by a holder of approvals.template.manage is allowed, and then auto-approves as the template says', async () => {
    const w = await buildWorld('the same + approvals.template.manage');
    await as(w, 'patch', `/v1/users/${w.caller.id}`).send({ roles: ['caller', 'cfo'] }).expect(200);
    const po = await createOrder(app, w.callerKey, 50_000);
    const submitted = await as(w, 'post', `/v1/purchase-orders/${po.id}/submit`).expect(202);
    expect((await ApprovalFlow.findByPk(submitted.body.approvalFlowId))!.status).toBe('approved');
    await waitFor(async () => (await PurchaseOrder.findByPk(po.id))!.state === 'approved', { what: 'order approved' });
  });
});
