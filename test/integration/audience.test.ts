// Subscribers and lists through the API: CRUD, filters and pages, bulk members, erase, permissions, tenant
// isolation, and the audit event each change writes.
import { randomUUID } from 'node:crypto';
import { AuditEvent, Delivery, DeliveryAttempt, Subscriber } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { waitForLockWaiters } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => { app = await startTestApp(); });
afterAll(() => app.close());

const auditsOf = (tenantId: string, action: string) => AuditEvent.count({ where: { tenantId, action } });

/** A draft campaign to a list (written directly: only its delivery ledger matters here). */
async function campaignTo(tenantId: string, listId: string): Promise<string> {
  const id = randomUUID();
  await app.sequelize.query(`INSERT INTO campaigns (tenant_id, id, name, subject, from_email, html, audience) VALUES ($1, $2, 'News', 'Hello', 'news@acme.example', '<p>Hi</p>', $3)`,
    { bind: [tenantId, id, JSON.stringify({ listIds: [listId], segmentIds: [], excludeListIds: [], excludeSegmentIds: [] })] });
  return id;
}

/** A campaign's recipient row, as a send writes it: `failed` with the server's reply when there is one, else sent. */
const recipientRow = (tenantId: string, campaignId: string, n: number, subscriberId: string, email: string, error: string | null) =>
  app.sequelize.query(`INSERT INTO campaign_recipients (tenant_id, campaign_id, n, subscriber_id, email, status, attempts, smtp_code, error, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, now())`, { bind: [tenantId, campaignId, n, subscriberId, email, error ? 'failed' : 'sent', error ? 550 : null, error] });

describe('subscribers', () => {
  it('creates, reads, edits and deletes, each audited; the address is unique in any case', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    const created = await app.call('post', '/v1/subscribers', key).send({ email: 'Ada@Example.com', name: 'Ada', attributes: { plan: 'pro', seats: 3 } }).expect(201);
    expect(created.body).toMatchObject({ email: 'ada@example.com', name: 'Ada', status: 'active', attributes: { plan: 'pro', seats: 3 } });
    expect(created.headers.location).toBe(`/v1/subscribers/${created.body.id}`);
    const dup = await app.call('post', '/v1/subscribers', key).send({ email: 'ADA@example.COM' }).expect(409);
    expect(dup.body.code).toBe('ALREADY_EXISTS');

    const got = await app.call('get', `/v1/subscribers/${created.body.id}`, key).expect(200);
    expect(got.body.email).toBe('ada@example.com');
    const patched = await app.call('patch', `/v1/subscribers/${created.body.id}`, key).send({ status: 'unsubscribed', attributes: { plan: 'team' } }).expect(200);
    expect(patched.body).toMatchObject({ status: 'unsubscribed', attributes: { plan: 'team' } });
    await app.call('delete', `/v1/subscribers/${created.body.id}`, key).expect(204);
    await app.call('get', `/v1/subscribers/${created.body.id}`, key).expect(404);
    for (const action of ['audience.subscriber.created', 'audience.subscriber.updated', 'audience.subscriber.deleted']) expect(await auditsOf(tenant.id, action)).toBe(1);
  });

  it('refuses bad input with 4xx and writes nothing', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    expect((await app.call('post', '/v1/subscribers', key).send({ email: 'not an address' }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await app.call('post', '/v1/subscribers', key).send({ email: 'a@x.com', attributes: { nested: { no: 1 } } }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await app.call('post', '/v1/subscribers', key).send({ email: 'a@x.com', status: 'sleeping' }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    const unknownList = await app.call('post', '/v1/subscribers', key).send({ email: 'a@x.com', listIds: [randomUUID()] }).expect(422);
    expect(unknownList.body.code).toBe('UNKNOWN_LIST');
    await app.call('patch', `/v1/subscribers/${randomUUID()}`, key).send({ name: 'x' }).expect(404);
    await app.call('patch', '/v1/subscribers/not-a-uuid', key).send({ name: 'x' }).expect(400);
    const s = await app.call('post', '/v1/subscribers', key).send({ email: 'b@x.com' }).expect(201);
    await app.call('post', '/v1/subscribers', key).send({ email: 'c@x.com' }).expect(201);
    expect((await app.call('patch', `/v1/subscribers/${s.body.id}`, key).send({ email: 'C@x.com' }).expect(409)).body.code).toBe('ALREADY_EXISTS');
    await app.call('patch', `/v1/subscribers/${s.body.id}`, key).send({}).expect(400);
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(2);
    expect(await auditsOf(tenant.id, 'audience.subscriber.updated')).toBe(0);
  });

  it('filters by status, list, email prefix and attributes, and pages with a cursor', async () => {
    const { key } = await buildCaller(['audience.*']);
    const list = await app.call('post', '/v1/lists', key).send({ name: 'VIP' }).expect(201);
    const make = (email: string, extra: Record<string, unknown> = {}) => app.call('post', '/v1/subscribers', key).send({ email, ...extra }).expect(201);
    await make('ann@a.com', { attributes: { plan: 'pro', seats: 3, vip: true }, listIds: [list.body.id] });
    await make('anna@a.com', { attributes: { plan: 'free' }, status: 'bounced' });
    await make('bob@b.com', { attributes: { plan: 'pro', seats: '3' }, listIds: [list.body.id] });
    const emails = async (q: string) => (await app.call('get', `/v1/subscribers?${q}`, key).expect(200)).body.items.map((s: { email: string }) => s.email).sort();
    expect(await emails('status=bounced')).toEqual(['anna@a.com']);
    expect(await emails(`listId=${list.body.id}`)).toEqual(['ann@a.com', 'bob@b.com']);
    expect(await emails('emailPrefix=ANN')).toEqual(['ann@a.com', 'anna@a.com']);
    expect(await emails('emailPrefix=an%25')).toEqual([]); // % is a character, not a wildcard
    expect(await emails('attribute=plan:pro')).toEqual(['ann@a.com', 'bob@b.com']);
    expect(await emails('attribute=seats:3&attribute=plan:pro')).toEqual(['ann@a.com', 'bob@b.com']);
    expect(await emails('attribute=vip:true')).toEqual(['ann@a.com']);
    expect(await emails('attribute=plan:pro&emailPrefix=b')).toEqual(['bob@b.com']);
    await app.call('get', '/v1/subscribers?attribute=no-colon', key).expect(400);
    await app.call('get', '/v1/subscribers?status=asleep', key).expect(400);

    const first = await app.call('get', '/v1/subscribers?limit=2', key).expect(200);
    expect(first.body.items).toHaveLength(2);
    const second = await app.call('get', `/v1/subscribers?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`, key).expect(200);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    await app.call('get', '/v1/subscribers?cursor=forged', key).expect(400);
  });

  it('erases personal data: address, name, attributes, lists, deliveries and audit images anonymised; twice is 409', async () => {
    const { key, tenant } = await buildCaller(['audience.*', 'audit.read']);
    const list = await app.call('post', '/v1/lists', key).send({ name: 'News' }).expect(201);
    const s = await app.call('post', '/v1/subscribers', key).send({ email: 'eve@x.com', name: 'Eve', attributes: { city: 'Paris' }, listIds: [list.body.id] }).expect(201);
    await Delivery.create({ key: `campaign:test:${s.body.id}`, tenantId: tenant.id, channel: 'email', recipient: 'Eve@x.com', subjectType: 'campaign', subjectId: 'c1', status: 'sent', error: null, providerId: null });
    await app.call('patch', `/v1/subscribers/${s.body.id}`, key).send({ name: 'Eve Paris' }).expect(200);
    const erased = await app.call('post', `/v1/subscribers/${s.body.id}/erase`, key).expect(200);
    expect(erased.body).toMatchObject({ id: s.body.id, name: null, attributes: {}, status: 'unsubscribed' });
    expect(erased.body.email).not.toContain('eve');
    expect(erased.body.erasedAt).not.toBeNull();
    expect((await app.call('get', `/v1/lists/${list.body.id}`, key).expect(200)).body.memberCount).toBe(0);
    const d = await Delivery.findOne({ where: { tenantId: tenant.id, key: `campaign:test:${s.body.id}` } });
    expect(d!.recipient).not.toMatch(/eve/i);
    expect(d!.status).toBe('sent');
    expect((await app.call('post', `/v1/subscribers/${s.body.id}/erase`, key).expect(409)).body.code).toBe('SUBSCRIBER_ERASED');
    expect((await app.call('patch', `/v1/subscribers/${s.body.id}`, key).send({ name: 'Eve' }).expect(409)).body.code).toBe('SUBSCRIBER_ERASED');
    const event = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'audience.subscriber.erased' } });
    expect(JSON.stringify(event!.get())).not.toMatch(/eve@/i);
    // Its earlier audit events (created, updated) say what happened and by whom, no longer what it held.
    const audits = (await app.call('get', `/v1/audit-events?entityType=subscriber&entityId=${s.body.id}`, key).expect(200)).body.items as { action: string }[];
    expect(audits.map((a) => a.action)).toEqual(expect.arrayContaining(['audience.subscriber.created', 'audience.subscriber.updated', 'audience.subscriber.erased']));
    expect(JSON.stringify(audits)).not.toMatch(/eve|paris/i);
    // A new subscriber may take the address again.
    await app.call('post', '/v1/subscribers', key).send({ email: 'eve@x.com' }).expect(201);
  });

  it('erases a deleted subscriber by its id: its audit images and its recipient rows, SMTP replies included; twice is 409', async () => {
    const { key, tenant } = await buildCaller(['audience.*', 'audit.read', 'campaigns.*']);
    const list = await app.call('post', '/v1/lists', key).send({ name: 'News' }).expect(201);
    const s = await app.call('post', '/v1/subscribers', key).send({ email: 'zoe@x.com', name: 'Zoe', attributes: { city: 'Oslo' }, listIds: [list.body.id] }).expect(201);
    const campaignId = await campaignTo(tenant.id, list.body.id);
    await recipientRow(tenant.id, campaignId, 1, s.body.id, 'zoe@x.com', '550 5.1.1 <Zoe@x.com>: mailbox unavailable');
    await app.call('delete', `/v1/subscribers/${s.body.id}`, key).expect(204);
    await app.call('post', `/v1/subscribers/${s.body.id}/erase`, key).expect(204);
    // The audit log still says it was created, deleted and erased, and by whom; not what it held.
    const audits = (await app.call('get', `/v1/audit-events?entityType=subscriber&entityId=${s.body.id}`, key).expect(200)).body.items as { action: string }[];
    expect(audits.map((a) => a.action).sort()).toEqual(['audience.subscriber.created', 'audience.subscriber.deleted', 'audience.subscriber.erased']);
    expect(JSON.stringify(audits)).not.toMatch(/zoe|oslo/i);
    const deliveries = (await app.call('get', `/v1/campaigns/${campaignId}/deliveries`, key).expect(200)).body.items;
    expect(deliveries).toMatchObject([{ subscriberId: s.body.id, status: 'failed', smtpCode: 550 }]);
    expect(deliveries[0].error).toContain('mailbox unavailable');
    expect(JSON.stringify(deliveries)).not.toMatch(/zoe/i);
    expect((await app.call('post', `/v1/subscribers/${s.body.id}/erase`, key).expect(409)).body.code).toBe('SUBSCRIBER_ERASED');
    expect((await app.call('post', `/v1/subscribers/${randomUUID()}/erase`, key).expect(404)).body.code).toBe('NOT_FOUND');
  });

  it('a subscriber deleted while its erase waits for the row is erased as a deleted one, not answered "erased already"', async () => {
    const { key, tenant } = await buildCaller(['audience.*', 'audit.read']);
    const s = await app.call('post', '/v1/subscribers', key).send({ email: 'kai@x.com', name: 'Kai' }).expect(201);
    // A delete in flight: the row gone and its audit event written, uncommitted, holding the row's lock as the API's does.
    const deleting = await app.sequelize.transaction();
    await app.sequelize.query('DELETE FROM subscribers WHERE tenant_id = $1 AND id = $2', { bind: [tenant.id, s.body.id], transaction: deleting });
    await AuditEvent.create({ tenantId: tenant.id, actorType: 'user', actorId: null, action: 'audience.subscriber.deleted', entityType: 'subscriber', entityId: s.body.id, before: { email: 'kai@x.com', name: 'Kai' } } as never, { transaction: deleting });
    const erase = app.call('post', `/v1/subscribers/${s.body.id}/erase`, key).then((r) => r);
    await waitForLockWaiters(app.sequelize, '%erased_at%', 1, { timeoutMs: 30_000, intervalMs: 50, what: 'the erase waiting for the row' });
    await deleting.commit();
    expect((await erase).status).toBe(204);
    const audits = (await app.call('get', `/v1/audit-events?entityType=subscriber&entityId=${s.body.id}`, key).expect(200)).body.items as { action: string }[];
    expect(audits.map((a) => a.action).sort()).toEqual(['audience.subscriber.created', 'audience.subscriber.deleted', 'audience.subscriber.erased']);
    expect(JSON.stringify(audits)).not.toMatch(/kai/i);
  });

  it('erasing the subscriber an address belongs to erases the subscribers deleted with that address before', async () => {
    const { key, tenant } = await buildCaller(['audience.*', 'audit.read', 'campaigns.*']);
    const list = await app.call('post', '/v1/lists', key).send({ name: 'News' }).expect(201);
    const old = await app.call('post', '/v1/subscribers', key).send({ email: 'amy@x.com', name: 'Amy', attributes: { city: 'Lima' }, listIds: [list.body.id] }).expect(201);
    const campaignId = await campaignTo(tenant.id, list.body.id);
    await recipientRow(tenant.id, campaignId, 1, old.body.id, 'amy@x.com', null);
    await app.call('delete', `/v1/subscribers/${old.body.id}`, key).expect(204);
    // Asked to erase amy@x.com, which no subscriber holds now: the address is added again and that subscriber erased.
    const again = await app.call('post', '/v1/subscribers', key).send({ email: 'AMY@x.com' }).expect(201);
    await app.call('post', `/v1/subscribers/${again.body.id}/erase`, key).expect(200);
    const audits = (await app.call('get', `/v1/audit-events?entityType=subscriber&entityId=${old.body.id}`, key).expect(200)).body.items as { action: string }[];
    expect(audits.map((a) => a.action).sort()).toEqual(['audience.subscriber.created', 'audience.subscriber.deleted']);
    expect(JSON.stringify(audits)).not.toMatch(/amy|lima/i);
    expect(JSON.stringify((await app.call('get', `/v1/campaigns/${campaignId}/deliveries`, key).expect(200)).body.items)).not.toMatch(/amy/i);
  });

  it('erasing a subscriber scrubs its address from the SMTP replies kept for its deliveries and campaigns, and no one else\'s', async () => {
    const { key, tenant } = await buildCaller(['audience.*', 'campaigns.*']);
    const list = await app.call('post', '/v1/lists', key).send({ name: 'News' }).expect(201);
    const s = await app.call('post', '/v1/subscribers', key).send({ email: 'ivy.k+news@x.com', listIds: [list.body.id] }).expect(201);
    const bob = await app.call('post', '/v1/subscribers', key).send({ email: 'bob@x.com', listIds: [list.body.id] }).expect(201);
    const campaignId = await campaignTo(tenant.id, list.body.id);
    await recipientRow(tenant.id, campaignId, 1, s.body.id, 'ivy.k+news@x.com', '550 5.1.1 <Ivy.K+news@x.com>: mailbox unavailable');
    await recipientRow(tenant.id, campaignId, 2, bob.body.id, 'bob@x.com', '550 5.1.1 <bob@x.com>: mailbox unavailable');
    // The server went away while the batch with her message was in flight; the campaign shows its last error.
    await app.sequelize.query(`UPDATE campaigns SET status = 'running', retrying = true, last_error = '421 4.7.0 <ivy.k+news@x.com> try again later'
      WHERE tenant_id = $1 AND id = $2`, { bind: [tenant.id, campaignId] });
    const rejected = 'SMTP server rejected the message (550): 550 <IVY.K+NEWS@x.com>: mailbox unavailable';
    await Delivery.create({ key: `reminders:test:${s.body.id}`, tenantId: tenant.id, channel: 'email', recipient: 'Ivy.K+news@x.com', subjectType: 'reminder', subjectId: 'r1', status: 'failed', error: rejected, providerId: null });
    await DeliveryAttempt.create({ tenantId: tenant.id, deliveryKey: `reminders:test:${s.body.id}`, subjectType: 'reminder', subjectId: 'r1', channel: 'email', recipient: 'Ivy.K+news@x.com', attempt: 1, status: 'failed', error: rejected, durationMs: 5, detail: null, at: new Date() });
    // Another address that ends with hers is someone else's, and stays.
    const other = '550 <divy.k+news@x.com>: mailbox unavailable';
    await Delivery.create({ key: 'reminders:test:divy', tenantId: tenant.id, channel: 'email', recipient: 'divy.k+news@x.com', subjectType: 'reminder', subjectId: 'r1', status: 'failed', error: other, providerId: null });
    await app.call('post', `/v1/subscribers/${s.body.id}/erase`, key).expect(200);
    expect((await Delivery.findOne({ where: { tenantId: tenant.id, key: 'reminders:test:divy' } }))!.get()).toMatchObject({ recipient: 'divy.k+news@x.com', error: other });
    const deliveries = (await app.call('get', `/v1/campaigns/${campaignId}/deliveries`, key).expect(200)).body.items as { error: string }[];
    expect(deliveries.map((d) => d.error)).toEqual([`550 5.1.1 <erased+${s.body.id}@erased.invalid>: mailbox unavailable`, '550 5.1.1 <bob@x.com>: mailbox unavailable']);
    const campaign = (await app.call('get', `/v1/campaigns/${campaignId}`, key).expect(200)).body;
    expect(campaign.lastError).toBe(`421 4.7.0 <erased+${s.body.id}@erased.invalid> try again later`);
    const kept = [await Delivery.findOne({ where: { tenantId: tenant.id, key: `reminders:test:${s.body.id}` } }), await DeliveryAttempt.findOne({ where: { tenantId: tenant.id, deliveryKey: `reminders:test:${s.body.id}` } })];
    for (const d of kept) {
      expect(d!.error).toContain('mailbox unavailable');
      expect(JSON.stringify(d!.get())).not.toMatch(/ivy/i);
    }
  });

  it('erasing a subscriber scrubs what is kept under the addresses it had before, unless someone holds that address now', async () => {
    const { key, tenant } = await buildCaller(['audience.*', 'campaigns.*']);
    const list = await app.call('post', '/v1/lists', key).send({ name: 'News' }).expect(201);
    const s = await app.call('post', '/v1/subscribers', key).send({ email: 'zoe@x.com', listIds: [list.body.id] }).expect(201);
    // Mailed (and refused) at her first address, by a reminder and by a campaign.
    const refusedFirst = '550 5.1.1 <zoe@x.com>: mailbox unavailable';
    await Delivery.create({ key: `reminders:test:${s.body.id}:1`, tenantId: tenant.id, channel: 'email', recipient: 'Zoe@x.com', subjectType: 'reminder', subjectId: 'r1', status: 'failed', error: refusedFirst, providerId: null });
    const campaignId = await campaignTo(tenant.id, list.body.id);
    await recipientRow(tenant.id, campaignId, 1, s.body.id, 'zoe@x.com', refusedFirst);
    // Then at a second one, which someone else holds by now (with what was kept under it: theirs too).
    await app.call('patch', `/v1/subscribers/${s.body.id}`, key).send({ email: 'zoe.b@x.com' }).expect(200);
    await Delivery.create({ key: `reminders:test:${s.body.id}:2`, tenantId: tenant.id, channel: 'email', recipient: 'zoe.b@x.com', subjectType: 'reminder', subjectId: 'r1', status: 'sent', error: null, providerId: null });
    await app.call('patch', `/v1/subscribers/${s.body.id}`, key).send({ email: 'zed@x.com' }).expect(200);
    await app.call('post', '/v1/subscribers', key).send({ email: 'zoe.b@x.com' }).expect(201);
    await app.call('post', `/v1/subscribers/${s.body.id}/erase`, key).expect(200);

    const first = (await Delivery.findOne({ where: { tenantId: tenant.id, key: `reminders:test:${s.body.id}:1` } }))!;
    expect(first.get()).toMatchObject({ recipient: `erased+${s.body.id}@erased.invalid`, error: `550 5.1.1 <erased+${s.body.id}@erased.invalid>: mailbox unavailable`, status: 'failed' });
    const deliveries = (await app.call('get', `/v1/campaigns/${campaignId}/deliveries`, key).expect(200)).body.items as { error: string }[];
    expect(JSON.stringify(deliveries)).not.toMatch(/zoe/i);
    expect((await Delivery.findOne({ where: { tenantId: tenant.id, key: `reminders:test:${s.body.id}:2` } }))!.recipient).toBe('zoe.b@x.com');
  });

  it('erasing a deleted subscriber whose last address someone holds again still scrubs what is kept under its earlier ones', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    const s = await app.call('post', '/v1/subscribers', key).send({ email: 'uma@x.com' }).expect(201);
    const refused = '550 5.1.1 <uma@x.com>: mailbox unavailable';
    await Delivery.create({ key: `reminders:test:${s.body.id}:1`, tenantId: tenant.id, channel: 'email', recipient: 'uma@x.com', subjectType: 'reminder', subjectId: 'r1', status: 'failed', error: refused, providerId: null });
    await app.call('patch', `/v1/subscribers/${s.body.id}`, key).send({ email: 'uma.k@x.com' }).expect(200);
    await Delivery.create({ key: `reminders:test:${s.body.id}:2`, tenantId: tenant.id, channel: 'email', recipient: 'uma.k@x.com', subjectType: 'reminder', subjectId: 'r1', status: 'sent', error: null, providerId: null });
    await app.call('delete', `/v1/subscribers/${s.body.id}`, key).expect(204);
    await app.call('post', '/v1/subscribers', key).send({ email: 'uma.k@x.com' }).expect(201);
    await app.call('post', `/v1/subscribers/${s.body.id}/erase`, key).expect(204);

    // Nobody holds uma@x.com: what was kept under it goes now (its audit images, the only record of it, are gone).
    expect((await Delivery.findOne({ where: { tenantId: tenant.id, key: `reminders:test:${s.body.id}:1` } }))!.get())
      .toMatchObject({ recipient: `erased+${s.body.id}@erased.invalid`, error: `550 5.1.1 <erased+${s.body.id}@erased.invalid>: mailbox unavailable` });
    // uma.k@x.com is the new subscriber's, with what is kept under it.
    expect((await Delivery.findOne({ where: { tenantId: tenant.id, key: `reminders:test:${s.body.id}:2` } }))!.recipient).toBe('uma.k@x.com');
  });
});

describe('lists', () => {
  it('creates, renames, adds and removes members in bulk, and deletes, each audited', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    const list = await app.call('post', '/v1/lists', key).send({ name: 'Newsletter', description: 'Monthly' }).expect(201);
    expect(list.body).toMatchObject({ name: 'Newsletter', description: 'Monthly', memberCount: 0 });
    expect((await app.call('post', '/v1/lists', key).send({ name: 'NEWSLETTER' }).expect(409)).body.code).toBe('ALREADY_EXISTS');
    await app.call('post', '/v1/lists', key).send({ name: '' }).expect(400);
    const a = await app.call('post', '/v1/subscribers', key).send({ email: 'a@x.com' }).expect(201);
    await app.call('post', '/v1/subscribers', key).send({ email: 'b@x.com' }).expect(201);

    const added = await app.call('post', `/v1/lists/${list.body.id}/members`, key).send({ emails: ['A@x.com', 'b@x.com', 'nobody@x.com'], subscriberIds: [a.body.id] }).expect(200);
    expect(added.body).toEqual({ added: 2, alreadyMembers: 0, notFound: ['nobody@x.com'] });
    const again = await app.call('post', `/v1/lists/${list.body.id}/members`, key).send({ emails: ['a@x.com'] }).expect(200);
    expect(again.body).toEqual({ added: 0, alreadyMembers: 1, notFound: [] });
    expect((await app.call('get', `/v1/lists/${list.body.id}`, key).expect(200)).body.memberCount).toBe(2);
    await app.call('post', `/v1/lists/${list.body.id}/members`, key).send({}).expect(400);
    await app.call('post', `/v1/lists/${list.body.id}/members`, key).send({ emails: Array.from({ length: 10_001 }, (_, i) => `x${i}@x.com`) }).expect(400);
    await app.call('post', `/v1/lists/${randomUUID()}/members`, key).send({ emails: ['a@x.com'] }).expect(404);

    expect((await app.call('post', `/v1/lists/${list.body.id}/members/remove`, key).send({ emails: ['a@x.com'] }).expect(200)).body).toEqual({ removed: 1 });
    const renamed = await app.call('patch', `/v1/lists/${list.body.id}`, key).send({ name: 'Weekly' }).expect(200);
    expect(renamed.body).toMatchObject({ name: 'Weekly', memberCount: 1 });
    const page = await app.call('get', '/v1/lists?namePrefix=we', key).expect(200);
    expect(page.body.items.map((l: { name: string }) => l.name)).toEqual(['Weekly']);
    await app.call('delete', `/v1/lists/${list.body.id}`, key).expect(204);
    await app.call('get', `/v1/subscribers/${a.body.id}`, key).expect(200);
    for (const action of ['audience.list.created', 'audience.list.updated', 'audience.list.deleted', 'audience.list.members_added', 'audience.list.members_removed']) {
      expect([action, await auditsOf(tenant.id, action)]).toEqual([action, 1]);
    }
  });
});

describe('list bad input', () => {
  it('answers 400, 404 and 409 for what lists cannot take, changing nothing', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    const a = await app.call('post', '/v1/lists', key).send({ name: 'A' }).expect(201);
    await app.call('post', '/v1/lists', key).send({ name: 'B' }).expect(201);
    await app.call('get', '/v1/lists?limit=0', key).expect(400);
    await app.call('get', '/v1/lists/not-a-uuid', key).expect(400);
    await app.call('patch', `/v1/lists/${a.body.id}`, key).send({}).expect(400);
    await app.call('patch', `/v1/lists/${a.body.id}`, key).send({ name: 'A', colour: 'red' }).expect(400);
    expect((await app.call('patch', `/v1/lists/${a.body.id}`, key).send({ name: 'b' }).expect(409)).body.code).toBe('ALREADY_EXISTS');
    await app.call('patch', `/v1/lists/${randomUUID()}`, key).send({ name: 'C' }).expect(404);
    await app.call('delete', `/v1/lists/${randomUUID()}`, key).expect(404);
    await app.call('post', `/v1/lists/${a.body.id}/members/remove`, key).send({}).expect(400);
    await app.call('post', `/v1/lists/${a.body.id}/members/remove`, key).send({ subscriberIds: ['nope'] }).expect(400);
    await app.call('post', `/v1/lists/${randomUUID()}/members/remove`, key).send({ emails: ['a@x.com'] }).expect(404);
    expect((await app.call('get', `/v1/lists/${a.body.id}`, key).expect(200)).body.name).toBe('A');
    expect(await auditsOf(tenant.id, 'audience.list.updated')).toBe(0);
  });
});

describe('permissions and tenants', () => {
  it('needs audience.read to read, audience.write to change, audience.erase to erase', async () => {
    const { key: admin, tenant } = await buildCaller(['audience.*']);
    const s = await app.call('post', '/v1/subscribers', admin).send({ email: 'p@x.com' }).expect(201);
    const { key: reader } = await buildCaller(['audience.read'], tenant);
    const { key: writer } = await buildCaller(['audience.write', 'audience.read'], tenant);
    const { key: none } = await buildCaller(['files.read'], tenant);
    await app.call('get', '/v1/subscribers', none).expect(403);
    await app.call('get', '/v1/lists', none).expect(403);
    await app.call('get', '/v1/subscribers', reader).expect(200);
    expect((await app.call('post', '/v1/subscribers', reader).send({ email: 'q@x.com' }).expect(403)).body.permission).toBe('audience.write');
    await app.call('post', '/v1/lists', reader).send({ name: 'L' }).expect(403);
    expect((await app.call('post', `/v1/subscribers/${s.body.id}/erase`, writer).expect(403)).body.permission).toBe('audience.erase');
    expect((await Subscriber.findOne({ where: { tenantId: tenant.id, id: s.body.id } }))!.erasedAt).toBeNull();
  });

  it('never shows or touches another tenant\'s subscribers and lists', async () => {
    const { key: mine } = await buildCaller(['audience.*']);
    const { key: theirs } = await buildCaller(['audience.*']);
    const s = await app.call('post', '/v1/subscribers', theirs).send({ email: 'their@x.com' }).expect(201);
    const l = await app.call('post', '/v1/lists', theirs).send({ name: 'Theirs' }).expect(201);
    await app.call('post', `/v1/lists/${l.body.id}/members`, theirs).send({ subscriberIds: [s.body.id] }).expect(200);
    await app.call('get', `/v1/subscribers/${s.body.id}`, mine).expect(404);
    await app.call('patch', `/v1/subscribers/${s.body.id}`, mine).send({ name: 'x' }).expect(404);
    await app.call('delete', `/v1/subscribers/${s.body.id}`, mine).expect(404);
    await app.call('post', `/v1/subscribers/${s.body.id}/erase`, mine).expect(404);
    await app.call('get', `/v1/lists/${l.body.id}`, mine).expect(404);
    await app.call('post', `/v1/lists/${l.body.id}/members`, mine).send({ subscriberIds: [s.body.id] }).expect(404);
    expect((await app.call('get', `/v1/subscribers?listId=${l.body.id}`, mine).expect(200)).body.items).toEqual([]);
    const myList = await app.call('post', '/v1/lists', mine).send({ name: 'Mine' }).expect(201);
    const cross = await app.call('post', `/v1/lists/${myList.body.id}/members`, mine).send({ subscriberIds: [s.body.id], emails: ['their@x.com'] }).expect(200);
    expect(cross.body).toEqual({ added: 0, alreadyMembers: 0, notFound: [s.body.id, 'their@x.com'] });
    expect((await app.call('post', '/v1/subscribers', mine).send({ email: 'their@x.com', listIds: [l.body.id] }).expect(422)).body.code).toBe('UNKNOWN_LIST');
    expect((await app.call('get', '/v1/subscribers', mine).expect(200)).body.items).toEqual([]);
  });
});

describe('tenant deletion', () => {
  // Subscribers carry no row-level foreign key to tenants (an import's merge would pay its check per row): a
  // trigger on tenants deletes them instead.
  it('deletes a deleted tenant\'s subscribers and memberships, and no other tenant\'s', async () => {
    const { key: gone, tenant: goneTenant } = await buildCaller(['audience.*']);
    const { key: kept, tenant: keptTenant } = await buildCaller(['audience.*']);
    for (const key of [gone, kept]) {
      const s = await app.call('post', '/v1/subscribers', key).send({ email: 'same@x.com' }).expect(201);
      const l = await app.call('post', '/v1/lists', key).send({ name: 'L' }).expect(201);
      await app.call('post', `/v1/lists/${l.body.id}/members`, key).send({ subscriberIds: [s.body.id] }).expect(200);
    }
    await app.sequelize.query('DELETE FROM tenants WHERE id = $1', { bind: [goneTenant.id] });
    expect(await Subscriber.count({ where: { tenantId: goneTenant.id } })).toBe(0);
    expect(await Subscriber.count({ where: { tenantId: keptTenant.id } })).toBe(1);
    const [members] = await app.sequelize.query('SELECT tenant_id FROM list_members WHERE tenant_id IN ($1, $2)', { bind: [goneTenant.id, keptTenant.id] });
    expect(members).toEqual([{ tenant_id: keptTenant.id }]);
  });
});
