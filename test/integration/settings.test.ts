// The tenant's settings through the API: sending limits (defaults, bounds, who may read and set them, the audit event,
// and that the send limiter follows what was set), approval settings and notification defaults.
import { randomUUID } from 'node:crypto';
import { AuditEvent, Role, SendSettings } from '../../db';
import { createSendLimiter } from '../../lib/send-limiter';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';

let app: TestApp;
beforeAll(async () => { app = await startTestApp(); });
afterAll(() => app.close());

test('answers the defaults until set; a set is audited and the limiter follows it', async () => {
  const { key, tenant } = await buildCaller(['*']);
  expect((await app.call('get', '/v1/settings/sending', key).expect(200)).body).toEqual({ maxPerMinute: 600, maxConcurrent: 10, updatedAt: null });
  const limiter = createSendLimiter(app.sequelize);
  // 600 a minute is paced at 10 a second: of 100 wanted, a second's worth and one at first; 10 at once.
  const before = await limiter.acquire(tenant.id, 100);
  expect([before.granted, before.inFlight]).toEqual([11, 10]);
  await before.release();

  const saved = await app.call('put', '/v1/settings/sending', key).send({ maxPerMinute: 60_000, maxConcurrent: 25 }).expect(200);
  expect(saved.body).toMatchObject({ maxPerMinute: 60_000, maxConcurrent: 25 });
  expect(Date.parse(saved.body.updatedAt)).toBeGreaterThan(Date.now() - 60_000);
  expect((await app.call('get', '/v1/settings/sending', key).expect(200)).body).toEqual(saved.body);
  const after = await limiter.acquire(tenant.id, 100);
  expect([after.granted, after.inFlight]).toEqual([100, 25]);
  await after.release();

  await app.call('put', '/v1/settings/sending', key).send({ maxPerMinute: 1_000, maxConcurrent: 5 }).expect(200);
  const events = await AuditEvent.findAll({ where: { tenantId: tenant.id, action: 'settings.sending.updated' }, order: [['id', 'ASC']] });
  expect(events.map((e) => [e.before, e.after])).toEqual([
    [{ maxPerMinute: 600, maxConcurrent: 10 }, { maxPerMinute: 60_000, maxConcurrent: 25 }],
    [{ maxPerMinute: 60_000, maxConcurrent: 25 }, { maxPerMinute: 1_000, maxConcurrent: 5 }],
  ]);
});

test('refuses limits out of bounds or incomplete, changing nothing', async () => {
  const { key, tenant } = await buildCaller(['*']);
  for (const body of [
    { maxPerMinute: 0, maxConcurrent: 10 }, { maxPerMinute: 600_001, maxConcurrent: 10 }, { maxPerMinute: 600, maxConcurrent: 0 },
    { maxPerMinute: 600, maxConcurrent: 501 }, { maxPerMinute: 1.5, maxConcurrent: 10 }, { maxPerMinute: 600 }, { maxPerMinute: '600', maxConcurrent: 10 },
    { maxPerMinute: 600, maxConcurrent: 10, burst: 5 },
  ]) {
    expect([body, (await app.call('put', '/v1/settings/sending', key).send(body).expect(400)).body.code]).toEqual([body, 'VALIDATION_FAILED']);
  }
  expect(await SendSettings.count({ where: { tenantId: tenant.id } })).toBe(0);
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'settings.sending.updated' } })).toBe(0);
});

test('settings.read reads, only settings.manage (an administrator) sets; each tenant has its own', async () => {
  const { key: admin, tenant } = await buildCaller(['*']);
  const { key: reader } = await buildCaller(['settings.read'], tenant);
  const { key: audience } = await buildCaller(['audience.*'], tenant);
  await app.call('put', '/v1/settings/sending', admin).send({ maxPerMinute: 120, maxConcurrent: 2 }).expect(200);
  expect((await app.call('get', '/v1/settings/sending', reader).expect(200)).body.maxPerMinute).toBe(120);
  expect((await app.call('put', '/v1/settings/sending', reader).send({ maxPerMinute: 600_000, maxConcurrent: 500 }).expect(403)).body.permission).toBe('settings.manage');
  expect((await app.call('get', '/v1/settings/sending', audience).expect(403)).body.permission).toBe('settings.read');
  await app.call('put', '/v1/settings/sending', audience).send({ maxPerMinute: 600_000, maxConcurrent: 500 }).expect(403);
  expect((await app.call('get', '/v1/settings/sending', admin).expect(200)).body).toMatchObject({ maxPerMinute: 120, maxConcurrent: 2 });
  const { key: other } = await buildCaller(['*']);
  expect((await app.call('get', '/v1/settings/sending', other).expect(200)).body).toMatchObject({ maxPerMinute: 600, maxConcurrent: 10 });
});

test('approval settings: none until set; roles checked against the tenant; settings.read reads, settings.manage sets; audited', async () => {
  const { key, tenant } = await buildCaller(['*']);
  expect((await app.call('get', '/v1/settings/approvals', key).expect(200)).body).toEqual({ notifyOnRequest: { roles: [] }, notRequired: { objectTypes: [] }, notifyRequesterOnDecision: true, updatedAt: null });
  await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'watchers', title: 'Watchers', permissions: [] });
  const saved = await app.call('put', '/v1/settings/approvals', key).send({ notifyOnRequest: { roles: ['watchers', 'watchers'] } }).expect(200);
  expect(saved.body.notifyOnRequest).toEqual({ roles: ['watchers'] });
  expect((await app.call('get', '/v1/settings/approvals', key).expect(200)).body).toEqual(saved.body);
  const audit = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'settings.approvals.updated' } });
  expect([audit!.before, audit!.after]).toEqual([
    { notifyOnRequest: { roles: [] }, notRequired: { objectTypes: [] }, notifyRequesterOnDecision: true },
    { notifyOnRequest: { roles: ['watchers'] }, notRequired: { objectTypes: [] }, notifyRequesterOnDecision: true },
  ]);
  // A part left out keeps its value.
  const both = await app.call('put', '/v1/settings/approvals', key).send({ notRequired: { objectTypes: ['expense_claim', 'expense_claim', 'leave'] } }).expect(200);
  expect(both.body).toMatchObject({ notifyOnRequest: { roles: ['watchers'] }, notRequired: { objectTypes: ['expense_claim', 'leave'] } });

  // A role of another tenant, or none at all, is unknown here; nothing changes.
  const other = await buildCaller(['*']);
  await Role.create({ id: randomUUID(), tenantId: other.tenant.id, key: 'theirs', title: 'Theirs', permissions: [] });
  const refused = await app.call('put', '/v1/settings/approvals', key).send({ notifyOnRequest: { roles: ['watchers', 'theirs'] } }).expect(422);
  expect(refused.body).toMatchObject({ code: 'UNKNOWN_ROLE', errors: [{ path: '/requestBody/notifyOnRequest/roles/1' }] });
  for (const body of [
    {}, { notifyOnRequest: {} }, { notifyOnRequest: { roles: ['Not A Key!'] } }, { notifyOnRequest: { roles: [] }, extra: 1 },
    { notRequired: {} }, { notRequired: { objectTypes: ['Purchase Order'] } }, { notRequired: { objectTypes: 'purchase_order' } }, { notifyRequesterOnDecision: 'no' },
  ]) {
    expect([body, (await app.call('put', '/v1/settings/approvals', key).send(body).expect(400)).body.code]).toEqual([body, 'VALIDATION_FAILED']);
  }
  expect((await app.call('get', '/v1/settings/approvals', key).expect(200)).body).toMatchObject({ notifyOnRequest: { roles: ['watchers'] }, notRequired: { objectTypes: ['expense_claim', 'leave'] } });

  const { key: reader } = await buildCaller(['settings.read'], tenant);
  await app.call('get', '/v1/settings/approvals', reader).expect(200);
  expect((await app.call('put', '/v1/settings/approvals', reader).send({ notifyOnRequest: { roles: [] } }).expect(403)).body.permission).toBe('settings.manage');
  await app.call('put', '/v1/settings/approvals', reader).send({ notRequired: { objectTypes: ['purchase_order'] } }).expect(403);
  const { key: nobody } = await buildCaller([], tenant);
  expect((await app.call('get', '/v1/settings/approvals', nobody).expect(403)).body.permission).toBe('settings.read');
  // Another tenant's admin sees its own (empty) settings, not these.
  expect((await app.call('get', '/v1/settings/approvals', other.key).expect(200)).body).toMatchObject({ notifyOnRequest: { roles: [] }, notRequired: { objectTypes: [] } });
});

test('exempting an object type from approval needs approvals.template.manage besides settings.manage; taking one back does not', async () => {
  const { key: owner, tenant } = await buildCaller(['*']);
  await app.call('put', '/v1/settings/approvals', owner).send({ notRequired: { objectTypes: ['leave'] } }).expect(200);
  const { key: admin } = await buildCaller(['settings.read', 'settings.manage'], tenant);
  const { key: policy } = await buildCaller(['settings.read', 'settings.manage', 'approvals.template.manage'], tenant);
  const types = async () => (await app.call('get', '/v1/settings/approvals', owner).expect(200)).body.notRequired.objectTypes;

  // settings.manage alone: purchase orders would be approved at submit, with nobody asked.
  const refused = await app.call('put', '/v1/settings/approvals', admin).send({ notRequired: { objectTypes: ['leave', 'purchase_order'] } }).expect(403);
  expect(refused.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'approvals.template.manage' });
  expect(refused.body.detail).toContain('"purchase_order"');
  expect(await types()).toEqual(['leave']);
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'settings.approvals.updated' } })).toBe(1);
  // What is exempt already, other parts of the settings, and taking an exemption back: settings.manage is enough.
  await app.call('put', '/v1/settings/approvals', admin).send({ notRequired: { objectTypes: ['leave'] }, notifyRequesterOnDecision: false }).expect(200);
  await app.call('put', '/v1/settings/approvals', admin).send({ notRequired: { objectTypes: [] } }).expect(200);
  expect(await types()).toEqual([]);
  // With approvals.template.manage (who decides who approves anyway), exempting is allowed.
  await app.call('put', '/v1/settings/approvals', policy).send({ notRequired: { objectTypes: ['purchase_order'] } }).expect(200);
  expect(await types()).toEqual(['purchase_order']);
});

test('naming a role to hear of every new request needs approvals.flow.read besides settings.manage; taking one off does not', async () => {
  const { key: owner, tenant } = await buildCaller(['*']);
  for (const key of ['watchers', 'finance']) await Role.create({ id: randomUUID(), tenantId: tenant.id, key, title: key, permissions: [] });
  await app.call('put', '/v1/settings/approvals', owner).send({ notifyOnRequest: { roles: ['watchers'] } }).expect(200);
  const { key: admin } = await buildCaller(['settings.read', 'settings.manage'], tenant);
  const { key: reader } = await buildCaller(['settings.read', 'settings.manage', 'approvals.flow.read'], tenant);
  const roles = async () => (await app.call('get', '/v1/settings/approvals', owner).expect(200)).body.notifyOnRequest.roles;

  const refused = await app.call('put', '/v1/settings/approvals', admin).send({ notifyOnRequest: { roles: ['watchers', 'finance'] } }).expect(403);
  expect(refused.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'approvals.flow.read' });
  expect(await roles()).toEqual(['watchers']);
  await app.call('put', '/v1/settings/approvals', admin).send({ notifyOnRequest: { roles: [] } }).expect(200);
  expect(await roles()).toEqual([]);
  await app.call('put', '/v1/settings/approvals', reader).send({ notifyOnRequest: { roles: ['finance'] } }).expect(200);
  expect(await roles()).toEqual(['finance']);
});

test('notification defaults: none until set; zones checked; settings.read reads, settings.manage sets; audited; per tenant', async () => {
  const { key, tenant } = await buildCaller(['*']);
  expect((await app.call('get', '/v1/settings/notifications', key).expect(200)).body).toEqual({ defaultLocale: null, defaultTimeZone: null, updatedAt: null });
  const saved = await app.call('put', '/v1/settings/notifications', key).send({ defaultLocale: 'de', defaultTimeZone: 'Europe/Berlin' }).expect(200);
  expect(saved.body).toMatchObject({ defaultLocale: 'de', defaultTimeZone: 'Europe/Berlin' });
  expect((await app.call('get', '/v1/settings/notifications', key).expect(200)).body).toEqual(saved.body);
  const audit = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'settings.notifications.updated' } });
  expect([audit!.before, audit!.after]).toEqual([{ defaultLocale: null, defaultTimeZone: null }, { defaultLocale: 'de', defaultTimeZone: 'Europe/Berlin' }]);

  const zone = await app.call('put', '/v1/settings/notifications', key).send({ defaultLocale: 'fr', defaultTimeZone: 'Europe/Nowhere' }).expect(400);
  expect(zone.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: '/requestBody/defaultTimeZone' }] });
  for (const body of [{}, { defaultLocale: 'de' }, { defaultLocale: 'de DE', defaultTimeZone: null }, { defaultLocale: 'de', defaultTimeZone: null, extra: 1 }]) {
    expect([body, (await app.call('put', '/v1/settings/notifications', key).send(body).expect(400)).body.code]).toEqual([body, 'VALIDATION_FAILED']);
  }
  expect((await app.call('get', '/v1/settings/notifications', key).expect(200)).body).toEqual(saved.body);

  const { key: reader } = await buildCaller(['settings.read'], tenant);
  await app.call('get', '/v1/settings/notifications', reader).expect(200);
  expect((await app.call('put', '/v1/settings/notifications', reader).send({ defaultLocale: null, defaultTimeZone: null }).expect(403)).body.permission).toBe('settings.manage');
  const { key: nobody } = await buildCaller([], tenant);
  expect((await app.call('get', '/v1/settings/notifications', nobody).expect(403)).body.permission).toBe('settings.read');
  const other = await buildCaller(['*']);
  expect((await app.call('get', '/v1/settings/notifications', other.key).expect(200)).body.defaultLocale).toBeNull();
  // Cleared back to English and UTC.
  expect((await app.call('put', '/v1/settings/notifications', key).send({ defaultLocale: null, defaultTimeZone: null }).expect(200)).body).toMatchObject({ defaultLocale: null, defaultTimeZone: null });
});
