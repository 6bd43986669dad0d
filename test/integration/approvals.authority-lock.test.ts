// A role an approval template names carries approval authority (domains/approvals/authority.ts): granting it needs
// approvals.template.manage, judged inside the grant's transaction. Template saves take the tenant's identity lock, as
// grants do (domains/identity/lock.ts), so the two serialise per tenant: a grant racing a save that names its role is
// judged with the save or commits before it, never judged without it and committed after. And a flow is never written
// on a template version a save has just replaced (a pending flow's version makes its escalation targets count).
// Each race is made deterministic by holding, in a transaction of the test's own, the lock or row the contender has
// to wait for, and checking in pg_stat_activity that it waits there.
import { randomUUID } from 'node:crypto';
import { Transaction } from 'sequelize';
import { ApprovalFlow, Role, User, UserRole } from '../../db';
import { toDefinition } from '../../domains/approvals/definitions';
import { IDENTITY_LOCK_CLASS } from '../../domains/identity/commands';
import { startTestApp, TestApp } from '../helpers/app';
import { buildApiKey, buildTenant } from '../helpers/factories';
import { lockWaiters, waitFor, waitForLockWaiters } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

/**
 * One tenant: an admin; roles `cfo` and `clerk` (purchasing.order.read; no template names them), `board` (the
 * template's approvers), `escalation` (its escalation target; purchasing.order.read); `boardmember` (both); `other` (clerk); Mallory, who
 * manages users and holds the roles' permissions but not approvals.template.manage; a `contract` template (version 1).
 */
async function buildWorld() {
  const tenant = await buildTenant();
  const role = (key: string, permissions: string[]) => Role.create({ id: randomUUID(), tenantId: tenant.id, key, title: key, permissions });
  const user = async (name: string, roles: Role[]) => {
    const u = await User.create({ id: randomUUID(), tenantId: tenant.id, email: `${name}-${randomUUID().slice(0, 8)}@example.com`, name, active: true });
    for (const r of roles) await UserRole.create({ userId: u.id, roleId: r.id, tenantId: tenant.id });
    return u;
  };
  const roles = {
    admin: await role('admin', ['*']),
    cfo: await role('cfo', ['purchasing.order.read']),
    clerk: await role('clerk', ['purchasing.order.read']),
    board: await role('board', ['approvals.flow.sign']),
    escalation: await role('escalation', ['purchasing.order.read']),
  };
  const adminKey = await buildApiKey(await user('admin', [roles.admin]));
  await user('boardmember', [roles.board, roles.escalation]);
  const other = await user('other', [roles.clerk]);
  const malloryKey = await buildApiKey(await user('mallory', [await role('mallory', ['identity.users.manage', 'purchasing.order.read'])]));
  const template = (await app.call('post', '/v1/approval-templates', adminKey).send(contractTemplate({ escalateTo: ['escalation'] })).expect(201)).body;
  return { tenant, adminKey, malloryKey, other, template };
}
type World = Awaited<ReturnType<typeof buildWorld>>;
let w: World;
beforeEach(async () => { w = await buildWorld(); });

/** The `contract` template's body: board approves; `autoApproveRoles` and the escalation target as given. */
function contractTemplate(o: { autoApproveRoles?: string[]; escalateTo: string[] }) {
  return {
    name: 'Contracts', objectType: 'contract', autoApproveRoles: o.autoApproveRoles ?? [],
    stages: [{ name: 'Board', approvers: { roles: ['board'] }, rule: 'any', dueHours: 48, onDue: { action: 'escalate', escalateTo: { roles: o.escalateTo } } }],
  };
}

/** What the running test holds: released after it whatever happened, so a failed test does not leave it held. */
const holding: (() => Promise<void>)[] = [];
afterEach(async () => { await Promise.all(holding.splice(0).map((release) => release())); });

/**
 * A transaction of the test's own that runs `take` and then holds what it took until `release()`, which runs `then`
 * (if given) and commits — as a grant or template save in progress would.
 */
async function hold(take: (t: Transaction) => Promise<unknown>) {
  let end!: (then?: (t: Transaction) => Promise<unknown>) => void;
  const released = new Promise<((t: Transaction) => Promise<unknown>) | undefined>((r) => { end = r; });
  let taken!: () => void;
  const isTaken = new Promise<void>((r) => { taken = r; });
  const holder = app.sequelize.transaction(async (t) => {
    await take(t);
    taken();
    const then = await released;
    await then?.(t);
  });
  await Promise.race([isTaken, holder]);
  const release = async (then?: (t: Transaction) => Promise<unknown>) => { end(then); await holder; };
  holding.push(() => release());
  return { release };
}

// The waits below count backends waiting for a lock in a statement naming a table (or the advisory lock): the test's
// own connections, which hold them, never do.
const holdIdentityLock = (tenantId: string) => hold((t) => app.sequelize.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', { bind: [IDENTITY_LOCK_CLASS, tenantId], transaction: t }));

/** A request sent now; `settled` says whether its answer has come. */
function send(req: PromiseLike<{ status: number; body: Record<string, unknown> }>) {
  const state = { settled: false };
  const answer = Promise.resolve(req).then((res) => { state.settled = true; return res; });
  return { answer, state };
}

const rolesOf = async (userId: string): Promise<string[]> => (await app.call('get', `/v1/users/${userId}`, w.adminKey).expect(200)).body.roles;

describe('an approval template save waits for the tenant\'s identity lock (a grant in progress)', () => {
  it.each([
    ['creating a template', () => app.call('post', '/v1/approval-templates', w.adminKey).send({ ...contractTemplate({ autoApproveRoles: ['cfo'], escalateTo: ['escalation'] }), name: 'More contracts' }), 201],
    ['saving a new version', () => app.call('put', `/v1/approval-templates/${w.template.id}`, w.adminKey).send(contractTemplate({ autoApproveRoles: ['cfo'], escalateTo: ['escalation'] })), 200],
  ] as const)('%s naming a new role: not done while the lock is held, done once it is released', async (_what, save, status) => {
    const lock = await holdIdentityLock(w.tenant.id);
    const saving = send(save());
    await waitForLockWaiters(app.sequelize, '%pg_advisory_xact_lock%', 1, { timeoutMs: 5_000, what: 'the save waiting for the identity lock' });
    await new Promise((r) => setTimeout(r, 300));
    expect(saving.state.settled).toBe(false);
    await lock.release();
    expect((await saving.answer).status).toBe(status);
  });
});

describe('a grant racing a template save that names its role', () => {
  // One grant per case: the test app's pool has 5 connections, and a grant uses 2 while its transaction is open.
  it.each([
    ['PATCH /v1/users/{id}', () => app.call('patch', `/v1/users/${w.other.id}`, w.malloryKey).send({ roles: ['clerk', 'cfo'] })],
    ['POST /v1/users', () => app.call('post', '/v1/users', w.malloryKey).send({ email: `new-${randomUUID().slice(0, 8)}@example.com`, name: 'New', roles: ['cfo'] })],
  ] as const)('save first: a grant asked while the save is in flight waits for it and is refused (%s)', async (_what, grant) => {
    // The save is held on its template's row, which it locks after the identity lock.
    const row = await hold((t) => app.sequelize.query('SELECT 1 FROM approval_templates WHERE id = $1 FOR UPDATE', { bind: [w.template.id], transaction: t }));
    const saving = send(app.call('put', `/v1/approval-templates/${w.template.id}`, w.adminKey).send(contractTemplate({ autoApproveRoles: ['cfo'], escalateTo: ['escalation'] })));
    await waitForLockWaiters(app.sequelize, '%approval_templates%', 1, { timeoutMs: 5_000, what: 'the save waiting for its template row' });
    const granting = send(grant());
    // Given the time to go through, the grant does not while the save is in flight.
    await new Promise((r) => setTimeout(r, 500));
    const grantedWhileInFlight = granting.state.settled;
    await row.release();
    expect((await saving.answer).status).toBe(200);
    const refused = await granting.answer;
    expect([grantedWhileInFlight, refused.status, refused.body]).toEqual([false, 403, expect.objectContaining({ code: 'PERMISSION_DENIED', permission: 'approvals.template.manage' })]);
    expect(await rolesOf(w.other.id)).toEqual(['clerk']);
    expect(await User.count({ where: { tenantId: w.tenant.id, name: 'New' } })).toBe(0);
  });

  it('grant first: a save asked while a grant judged without it is in flight answers only once the grant has landed', async () => {
    // The grant is held after its check, where it replaces the user's roles: a share lock on one of them.
    const row = await hold((t) => app.sequelize.query('SELECT 1 FROM user_roles WHERE user_id = $1 FOR KEY SHARE', { bind: [w.other.id], transaction: t }));
    const granting = send(app.call('patch', `/v1/users/${w.other.id}`, w.malloryKey).send({ roles: ['clerk', 'cfo'] }));
    await waitForLockWaiters(app.sequelize, '%user_roles%', 1, { timeoutMs: 5_000, what: 'the grant waiting for the user\'s roles' });
    const saving = send(app.call('put', `/v1/approval-templates/${w.template.id}`, w.adminKey).send(contractTemplate({ autoApproveRoles: ['cfo'], escalateTo: ['escalation'] })));
    // Whoever saved the template reads who holds `cfo` as soon as the save answers: that must be final, not a grant
    // judged without the save still to land.
    const readAfterSave = saving.answer.then(() => rolesOf(w.other.id));
    await new Promise((r) => setTimeout(r, 500));
    expect(saving.state.settled).toBe(false);
    await row.release();
    expect((await granting.answer).status).toBe(200);
    expect((await saving.answer).status).toBe(200);
    expect(await readAfterSave).toEqual(['cfo', 'clerk']);
  });
});

describe('a flow is written on its template as it is then', () => {
  it('a flow started while a template save is in flight waits for it and runs on the saved version, not the one it replaced', async () => {
    // The save, in progress, holds the template's row: version 2 no longer escalates to `escalation`.
    const save = await hold((t) => app.sequelize.query('SELECT 1 FROM approval_templates WHERE id = $1 FOR UPDATE', { bind: [w.template.id], transaction: t }));
    const starting = send(app.call('post', '/v1/approval-flows', w.adminKey).send({ objectType: 'contract', objectId: `c-${randomUUID().slice(0, 8)}`, title: 'A contract' }));
    // Without the wait the flow is written at once (on version 1); with it, it waits for the template's row.
    await waitFor(async () => starting.state.settled || (await lockWaiters(app.sequelize, '%approval_templates%')) === 1, { timeoutMs: 5_000, what: 'the start written or waiting' });
    const v2 = toDefinition(contractTemplate({ escalateTo: ['board'] }) as Parameters<typeof toDefinition>[0]);
    await save.release(async (t) => {
      await app.sequelize.query('UPDATE approval_templates SET version = 2, definition = $2::jsonb, updated_at = now() WHERE id = $1', { bind: [w.template.id, JSON.stringify(v2)], transaction: t });
      await app.sequelize.query(`INSERT INTO approval_template_versions (template_id, version, tenant_id, name, condition, definition, created_by, created_at)
        SELECT id, 2, tenant_id, name, condition, definition, NULL, now() FROM approval_templates WHERE id = $1`, { bind: [w.template.id], transaction: t });
    });
    const started = await starting.answer;
    expect(started.status).toBe(201);
    expect((await ApprovalFlow.findByPk(started.body.id as string))?.templateVersion).toBe(2);
    // So version 1's escalation target carries no authority now: an ordinary role, Mallory may give it.
    await app.call('patch', `/v1/users/${w.other.id}`, w.malloryKey).send({ roles: ['clerk', 'escalation'] }).expect(200);
  });
});
