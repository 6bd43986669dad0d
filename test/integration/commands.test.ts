// The domains' commands called directly, as a script or another domain calls them (no HTTP): the tenant, the
// caller's permissions, a precondition and the audit event are the command's to enforce, not the route's.
import { randomUUID } from 'node:crypto';
import { AuditEvent, PurchaseOrder, Role, Tenant, User } from '../../db';
import { Caller, CommandDeps } from '../../domains/command';
import { createRole, IdentityDeps, updateRole } from '../../domains/identity/commands';
import { PermissionSet } from '../../domains/identity/permissions';
import { createJobSchedule, MIN_RUN_AT_LEAD_MS } from '../../domains/jobs/commands';
import { createPurchaseOrder, placePurchaseOrder } from '../../domains/purchasing/commands';
import { DiskBlobStore } from '../../lib/blob-store';
import { ApiError } from '../../lib/problems';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';

let app: TestApp;
let identity: IdentityDeps;
let deps: CommandDeps;
beforeAll(async () => {
  app = await startTestApp();
  deps = { config: app.config, sequelize: app.sequelize, temporal: { client: app.client }, blobs: new DiskBlobStore(app.config.fileStoreDir), metrics: app.metrics };
  identity = { sequelize: app.sequelize, permissionCatalogue: app.docket.contract.permissions.map((p) => p.name) };
});
afterAll(() => app.close());

/** A script's caller: a user of the tenant holding `permissions`, no request behind it. */
function scriptCaller(tenant: Tenant, user: User, permissions: string[]): Caller {
  return { tenantId: tenant.id, userId: user.id, roles: [], permissions: new PermissionSet(permissions, null), actor: { type: 'user', id: user.id } };
}

/** What a command throws: its ApiError, or a failure if it did not refuse. */
async function refusal(run: () => Promise<unknown>): Promise<ApiError> {
  const err = await run().then(() => null, (e: unknown) => e);
  if (!(err instanceof ApiError)) throw new Error(`expected an ApiError, got ${String(err)}`);
  return err;
}

const eventsOf = (tenantId: string, action: string) => AuditEvent.findAll({ where: { tenantId, action } });

describe('commands outside the API', () => {
  it('write their change and its audit event together, naming the caller (no request id)', async () => {
    const { tenant, user } = await buildCaller(['*']);
    const role = await createRole(identity, scriptCaller(tenant, user, ['*']), { key: 'clerk', title: 'Clerk', permissions: ['files.read'] });
    expect(role.tenantId).toBe(tenant.id);
    const [event] = await eventsOf(tenant.id, 'identity.role.created');
    expect(event).toMatchObject({ entityId: 'clerk', actorType: 'user', actorId: user.id, requestId: null });
  });

  it('check a precondition against the version they are about to change, and write nothing when it refuses', async () => {
    const { tenant, user } = await buildCaller(['*']);
    const c = scriptCaller(tenant, user, ['*']);
    const role = await createRole(identity, c, { key: 'clerk', title: 'Clerk', permissions: [] });
    const seen: number[] = [];
    const err = await refusal(() => updateRole(identity, c, 'clerk', { title: 'Changed' }, (version) => {
      seen.push(version);
      throw new ApiError(412, 'PRECONDITION_FAILED', 'stale');
    }));
    expect(err.status).toBe(412);
    expect(seen).toEqual([role.version]);
    const stored = await Role.findOne({ where: { tenantId: tenant.id, key: 'clerk' } });
    expect({ title: stored!.title, version: stored!.version }).toEqual({ title: 'Clerk', version: role.version });
    expect(await eventsOf(tenant.id, 'identity.role.updated')).toHaveLength(0);
  });

  it("refuse another tenant's row as not found, and a caller beyond their permissions, like the API does", async () => {
    const mine = await buildCaller(['*']);
    const theirs = await buildCaller(['*']);
    await createRole(identity, scriptCaller(theirs.tenant, theirs.user, ['*']), { key: 'theirs', title: 'Theirs', permissions: [] });
    const notFound = await refusal(() => updateRole(identity, scriptCaller(mine.tenant, mine.user, ['*']), 'theirs', { title: 'Mine now' }));
    expect({ status: notFound.status, code: notFound.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
    const escalation = await refusal(() => createRole(identity, scriptCaller(mine.tenant, mine.user, ['identity.roles.manage']), { key: 'boss', title: 'Boss', permissions: ['*'] }));
    expect(escalation.code).toBe('PERMISSION_ESCALATION');
    expect(await Role.count({ where: { tenantId: mine.tenant.id, key: 'boss' } })).toBe(0);
  });

  it('refuse a command the state forbids with its code, leaving the row and the audit log as they were', async () => {
    const { tenant, user } = await buildCaller(['*']);
    const c = scriptCaller(tenant, user, ['*']);
    const order = await createPurchaseOrder(deps, c, { number: `PO-${randomUUID().slice(0, 8)}`, supplier: 'Contoso', currency: 'EUR', lines: [{ description: 'Desk', quantity: 1, unitPrice: 300 }] });
    const err = await refusal(() => placePurchaseOrder(c, order.id));
    expect({ status: err.status, code: err.code }).toEqual({ status: 409, code: 'INVALID_STATE' });
    expect((await PurchaseOrder.findByPk(order.id))!.state).toBe('draft');
    expect(await eventsOf(tenant.id, 'purchasing.order.ordered')).toHaveLength(0);
  });

  it('run a single job whose Temporal Schedule was created only after its second, once and late, rather than never', async () => {
    const { tenant, user } = await buildCaller(['*']);
    // Temporal answering the create slower than the lead: the run's second has passed when the Schedule exists.
    const schedule = app.client.schedule;
    const slowSchedule = Object.create(schedule, {
      create: { value: async (o: Parameters<typeof schedule.create>[0]) => { await new Promise((r) => setTimeout(r, MIN_RUN_AT_LEAD_MS + 1_500)); return schedule.create(o); } },
    }) as typeof schedule;
    const slow: CommandDeps = { ...deps, temporal: { client: Object.create(app.client, { schedule: { value: slowSchedule } }) as typeof app.client } };
    const runAt = new Date(Date.now() + MIN_RUN_AT_LEAD_MS + 300).toISOString();
    const s = await createJobSchedule(slow, scriptCaller(tenant, user, ['*']), { name: 'Late', jobType: 'files.orphan_purge', runAt, timezone: 'UTC', paused: false, catchupWindowSeconds: 60 });
    const { info } = await schedule.getHandle(s.temporalScheduleId).describe();
    expect(info.nextActionTimes).toEqual([]);
    expect(info.recentActions.length + info.runningActions.length).toBe(1);
  });
});
