// Campaigns through the API on the real stack, mailing a real SMTP server: CRUD with its refusals, versions and
// If-Match; send to a list (personalised bodies, headers, one Message-ID per recipient); permissions.
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AuditEvent, Campaign, CampaignRecipient } from '../../db';
import { messageIdFor } from '../../lib/notify/email';
import { startTestApp, TestApp } from '../helpers/app';
import { BODY, createCampaign, seedList } from '../helpers/campaigns';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { verifiedSenderDomain } from '../helpers/sender-domains';
import { SmtpSink, startSmtpSink } from '../helpers/smtp-sink';
import { waitFor } from '../helpers/wait';

let app: TestApp;
let smtp: SmtpSink;
beforeAll(async () => {
  smtp = await startSmtpSink({ rejectRecipient: (a) => (a.startsWith('bounce-') ? 550 : undefined) });
  app = await startTestApp({ CAMPAIGN_BATCH_SIZE: '20', CAMPAIGN_CHUNK_MS: '300' });
  await app.startWorker({ smtpUrl: smtp.url });
});
afterAll(async () => {
  await app.close();
  await smtp.close();
});

async function ended(key: string, id: string) {
  return waitFor(async () => {
    const res = await app.call('get', `/v1/campaigns/${id}`, key).expect(200);
    return ['finished', 'cancelled', 'failed'].includes(res.body.status) && res.body;
  }, { what: `campaign ${id} ended`, timeoutMs: 60_000, intervalMs: 100 });
}

const mailsTo = (emails: string[]) => { const set = new Set(emails); return smtp.messages.filter((m) => set.has(m.to[0])); };

describe('drafts', () => {
  it('creates, reads, edits with versions and If-Match, lists and deletes', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    const { listId } = await seedList(app.sequelize, tenant.id, 3);
    const created = await app.call('post', '/v1/campaigns', key).send({ ...BODY, audience: { listIds: [listId] } }).expect(201);
    expect(created.headers.etag).toBe('"v1"');
    expect(created.headers.location).toBe(`/v1/campaigns/${created.body.id}`);
    expect(created.body).toMatchObject({ status: 'draft', version: 1, audience: { listIds: [listId], segmentIds: [], excludeListIds: [], excludeSegmentIds: [] }, stats: { audienceSize: null, sent: 0 } });
    const id = created.body.id;
    await app.call('patch', `/v1/campaigns/${id}`, key).set('If-Match', 'W/"v1"').send({ name: 'Weak' }).expect(412);
    const v2 = await app.call('patch', `/v1/campaigns/${id}`, key).set('If-Match', '"v1"').send({ subject: 'Hi {{ subscriber.email }}' }).expect(200);
    expect(v2.headers.etag).toBe('"v2"');
    expect(v2.body.subject).toBe('Hi {{ subscriber.email }}');
    await app.call('patch', `/v1/campaigns/${id}`, key).set('If-Match', '"v1"').send({ name: 'Stale' }).expect(412);
    const got = await app.call('get', `/v1/campaigns/${id}`, key).expect(200);
    expect(got.headers.etag).toBe('"v2"');
    expect((await app.call('get', '/v1/campaigns?status=draft', key).expect(200)).body.items.map((c: { id: string }) => c.id)).toEqual([id]);
    expect((await app.call('get', '/v1/campaigns?status=running', key).expect(200)).body.items).toEqual([]);
    await app.call('delete', `/v1/campaigns/${id}`, key).expect(204);
    await app.call('get', `/v1/campaigns/${id}`, key).expect(404);
    for (const action of ['campaigns.campaign.created', 'campaigns.campaign.updated', 'campaigns.campaign.deleted']) {
      expect(await AuditEvent.count({ where: { tenantId: tenant.id, action, entityId: id } })).toBe(1);
    }
  });

  it('refuses bad input with 422 and writes nothing', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    await verifiedSenderDomain(app.sequelize, tenant.id);
    const other = await buildCaller(['*']);
    const { listId: foreignList } = await seedList(app.sequelize, other.tenant.id, 1);
    const refuse = async (body: Record<string, unknown>, code: string) => {
      const res = await app.call('post', '/v1/campaigns', key).send({ ...BODY, ...body }).expect(422);
      expect(res.body.code).toBe(code);
      return res.body;
    };
    const from = await refuse({ fromEmail: 'not an address' }, 'INVALID_ADDRESS');
    expect(from).toMatchObject({ code: 'INVALID_ADDRESS', errors: [{ path: '/requestBody/fromEmail' }] });
    expect((await refuse({ replyTo: 'x@' }, 'INVALID_ADDRESS')).errors).toEqual([{ path: '/requestBody/replyTo', message: 'is not an email address' }]);
    const syntax = await refuse({ html: '<p>ok</p>\n<p>{% if x %}never closed</p>' }, 'TEMPLATE_SYNTAX_ERROR');
    expect(syntax.code).toBe('TEMPLATE_SYNTAX_ERROR');
    expect(syntax.errors[0]).toMatchObject({ path: '/requestBody/html', line: 2, column: 4 });
    expect((await refuse({ subject: 'Hi {{ subscriber.name ' }, 'TEMPLATE_SYNTAX_ERROR')).errors[0].path).toBe('/requestBody/subject');
    expect((await refuse({ text: 'x {% for %}' }, 'TEMPLATE_SYNTAX_ERROR')).errors[0].path).toBe('/requestBody/text');
    const unknown = await refuse({ audience: { listIds: [foreignList], excludeListIds: [randomUUID()] } }, 'UNKNOWN_LIST');
    expect(unknown.code).toBe('UNKNOWN_LIST');
    expect(unknown.errors.map((e: { path: string }) => e.path)).toEqual(['/requestBody/audience/listIds/0', '/requestBody/audience/excludeListIds/0']);
    expect((await refuse({ audience: { segmentIds: [randomUUID()] } }, 'UNKNOWN_SEGMENT')).code).toBe('UNKNOWN_SEGMENT');
    await app.call('post', '/v1/campaigns', key).send({ ...BODY, subject: 'two\nlines' }).expect(400);
    await app.call('post', '/v1/campaigns', key).send({ ...BODY, html: undefined }).expect(400);
    expect(await Campaign.count({ where: { tenantId: tenant.id } })).toBe(0);
    // An edit is checked the same way.
    const id = await createCampaign(app, key, {});
    expect((await app.call('patch', `/v1/campaigns/${id}`, key).send({ html: '{{ x | nosuchfilter }}' }).expect(422)).body.code).toBe('TEMPLATE_SYNTAX_ERROR');
    expect((await Campaign.findOne({ where: { id } }))!.version).toBe(1);
  });

  it('answers 404 for another tenant\'s campaign', async () => {
    const a = await buildCaller(['campaigns.*']);
    const b = await buildCaller(['campaigns.*']);
    await verifiedSenderDomain(app.sequelize, a.tenant.id);
    const id = await createCampaign(app, a.key, {});
    await app.call('get', `/v1/campaigns/${id}`, b.key).expect(404);
    await app.call('patch', `/v1/campaigns/${id}`, b.key).send({ name: 'x' }).expect(404);
    await app.call('post', `/v1/campaigns/${id}/send`, b.key).send({}).expect(404);
    await app.call('delete', `/v1/campaigns/${id}`, b.key).expect(404);
  });
});

describe('sending', () => {
  it('sends one personalised message per address of the list, with unsubscribe headers and a stable Message-ID', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 45);
    // A second list holding some of the same people, and an excluded one: each address once, the excluded never.
    const { listId: excluded, emails: excludedEmails } = await seedList(app.sequelize, tenant.id, 2);
    await app.sequelize.query('INSERT INTO list_members (tenant_id, list_id, subscriber_id) SELECT tenant_id, $2, id FROM subscribers WHERE tenant_id = $1 AND email = ANY($3)', { bind: [tenant.id, excluded, emails.slice(0, 5)] });
    const id = await createCampaign(app, key, { audience: { listIds: [listId, excluded], excludeListIds: [excluded] } });
    const sent = await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
    expect(sent.headers.location).toBe(`/v1/campaigns/${id}`);
    expect(sent.body.status).toBe('running');
    const done = await ended(key, id);
    expect(done).toMatchObject({ status: 'finished', stats: { audienceSize: 40, sent: 40, failed: 0, skipped: 0, pending: 0 } });
    const mails = mailsTo([...emails, ...excludedEmails]);
    expect(mails.map((m) => m.to[0]).sort()).toEqual(emails.slice(5).sort());
    const rows = await CampaignRecipient.findAll({ where: { campaignId: id } });
    const one = mails.find((m) => m.to[0] === emails[7])!;
    const row = rows.find((r) => r.email === emails[7])!;
    expect(one.subject).toBe('Hello Sub 8');
    expect(one.html).toContain('<p>Dear Sub 8 (pro)</p>');
    expect(one.text).toContain('Dear Sub 8, plan pro.');
    expect(one.headers.from).toMatch(/^"?Acme News"? <news@acme.example>$/);
    expect(one.headers['message-id']).toBe(messageIdFor(`campaign:${id}:${row.subscriberId}`));
    expect(row).toMatchObject({ status: 'sent', messageId: one.headers['message-id'] });
    const unsubscribe = one.headers['list-unsubscribe'];
    expect(unsubscribe).toMatch(/^<http:\/\/[^>]+\/v1\/unsubscribe\/[A-Za-z0-9_-]{86}>$/);
    expect(one.text).toContain(unsubscribe.slice(1, -1));
    expect(one.headers['list-unsubscribe-post']).toBe('List-Unsubscribe=One-Click');
    for (const action of ['campaigns.campaign.send_requested', 'campaigns.campaign.started', 'campaigns.campaign.finished']) {
      expect(await AuditEvent.count({ where: { tenantId: tenant.id, action, entityId: id } })).toBe(1);
    }
    // Edits and a second send are refused once it has gone out.
    expect((await app.call('patch', `/v1/campaigns/${id}`, key).send({ name: 'late' }).expect(409)).body.code).toBe('INVALID_STATE');
    expect((await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(409)).body.code).toBe('INVALID_STATE');
    expect((await app.call('post', `/v1/campaigns/${id}/pause`, key).expect(409)).body.code).toBe('INVALID_STATE');
    // Deliveries, filtered and paged.
    const page1 = await app.call('get', `/v1/campaigns/${id}/deliveries?status=sent&limit=25`, key).expect(200);
    expect(page1.body.items).toHaveLength(25);
    const page2 = await app.call('get', `/v1/campaigns/${id}/deliveries?status=sent&limit=25&cursor=${encodeURIComponent(page1.body.nextCursor)}`, key).expect(200);
    expect(page2.body.items).toHaveLength(15);
    expect(page2.body.nextCursor).toBeNull();
    expect((await app.call('get', `/v1/campaigns/${id}/deliveries?status=failed`, key).expect(200)).body.items).toEqual([]);
  });

  it('sends to segments minus an excluded segment and an excluded list, each address once', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 20);
    const seg = async (rules: unknown) => (await app.call('post', '/v1/segments', key).send({ name: `seg ${randomUUID()}`, rules }).expect(201)).body.id as string;
    // Pro subscribers (even i) or i ≤ 3, minus i ≥ 15, minus the list holding i = 2.
    const pro = await seg({ all: [{ field: 'attributes.plan', op: 'eq', value: 'pro' }] });
    const first = await seg({ any: [{ field: 'attributes.i', op: 'lt', value: 4 }] });
    const late = await seg({ all: [{ field: 'attributes.i', op: 'gt', value: 14 }] });
    const { listId: blocked } = await seedList(app.sequelize, tenant.id, 0);
    await app.call('post', `/v1/lists/${blocked}/members`, key).send({ emails: [emails[1]] }).expect(200);
    const id = await createCampaign(app, key, { audience: { listIds: [], segmentIds: [pro, first], excludeSegmentIds: [late], excludeListIds: [blocked] } });
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
    const done = await ended(key, id);
    const expected = [1, 3, 4, 6, 8, 10, 12, 14].map((i) => emails[i - 1]);
    expect(done.stats).toMatchObject({ audienceSize: expected.length, sent: expected.length });
    expect(mailsTo(emails).map((m) => m.to[0]).sort()).toEqual(expected.sort());
    expect(listId).toBeDefined();
  });

  it('keeps the lists and segments a scheduled send will read from being deleted, and still checks them at its time', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    const { listId } = await seedList(app.sequelize, tenant.id, 3);
    const { listId: excludedList } = await seedList(app.sequelize, tenant.id, 1);
    const seg = async () => (await app.call('post', '/v1/segments', key).send({ name: `seg ${randomUUID()}`, rules: { all: [{ field: 'attributes.i', op: 'eq', value: 2 }] } }).expect(201)).body.id as string;
    const [included, excluded, unused] = [await seg(), await seg(), await seg()];
    const id = await createCampaign(app, key, { audience: { listIds: [listId], segmentIds: [included], excludeSegmentIds: [excluded], excludeListIds: [excludedList] } });
    // A draft does not hold them (it is checked again when sent); a scheduled campaign does, exclusions included.
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({ sendAt: new Date(Date.now() + 3_600_000).toISOString() }).expect(202);
    for (const path of [`/v1/segments/${included}`, `/v1/segments/${excluded}`, `/v1/lists/${listId}`, `/v1/lists/${excludedList}`]) {
      const refused = await app.call('delete', path, key).expect(409);
      expect(refused.body).toMatchObject({ code: 'DEPENDENCY_EXISTS', count: 1 });
      expect(refused.body.detail).toContain(id);
    }
    await app.call('delete', `/v1/segments/${unused}`, key).expect(204);
    await app.call('post', `/v1/campaigns/${id}/cancel`, key).expect(200);
    await app.call('delete', `/v1/segments/${excluded}`, key).expect(204);
    await app.call('delete', `/v1/lists/${excludedList}`, key).expect(204);

    // The snapshot still checks: a segment removed behind the API's back fails the send at its time, sending nothing.
    const gone = await seg();
    const id2 = await createCampaign(app, key, { audience: { listIds: [listId], excludeSegmentIds: [gone] } });
    await app.call('post', `/v1/campaigns/${id2}/send`, key).send({ sendAt: new Date(Date.now() + 2_500).toISOString() }).expect(202);
    await app.sequelize.query('DELETE FROM segments WHERE tenant_id = $1 AND id = $2', { bind: [tenant.id, gone] });
    const failed = await ended(key, id2);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'UNKNOWN_SEGMENT' }, stats: { sent: 0 } });
  });

  it('fails a scheduled send at its time, sending nothing, when its From domain was deleted since it was scheduled', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 3);
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({ sendAt: new Date(Date.now() + 8_000).toISOString() }).expect(202);
    const [{ id: domainId }] = (await app.call('get', '/v1/sender-domains', key).expect(200)).body.items;
    await app.call('delete', `/v1/sender-domains/${domainId}`, key).expect(204);
    const failed = await ended(key, id);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'SENDER_DOMAIN_UNVERIFIED' }, stats: { audienceSize: null, sent: 0 } });
    expect(failed.error.message).toContain('news@acme.example');
    expect(mailsTo(emails)).toEqual([]);
  });

  it('refuses a send with nobody in the audience, and a schedule in the past', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    const { listId } = await seedList(app.sequelize, tenant.id, 2);
    await app.sequelize.query("UPDATE subscribers SET status = 'unsubscribed' WHERE tenant_id = $1", { bind: [tenant.id] });
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    expect((await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(422)).body.code).toBe('EMPTY_AUDIENCE');
    const none = await createCampaign(app, key, {});
    expect((await app.call('post', `/v1/campaigns/${none}/send`, key).send({}).expect(422)).body.code).toBe('EMPTY_AUDIENCE');
    await app.sequelize.query("UPDATE subscribers SET status = 'active' WHERE tenant_id = $1", { bind: [tenant.id] });
    expect((await app.call('post', `/v1/campaigns/${id}/send`, key).send({ sendAt: '2020-01-01T09:00:00', timeZone: 'Europe/Berlin' }).expect(422)).body.code).toBe('TIME_IN_PAST');
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({ sendAt: '2030-01-01T09:00:00', timeZone: 'Mars/Olympus' }).expect(400);
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({ sendAt: 'tomorrow' }).expect(400);
    expect((await Campaign.findOne({ where: { id } }))!.status).toBe('draft');
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, entityId: id, action: ['campaigns.campaign.send_requested', 'campaigns.campaign.scheduled'] } })).toBe(0);
  });

  it('renders off the worker\'s event loop: a template that takes seconds per message fails the campaign with TEMPLATE_RENDER_LIMIT', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 30);
    // Valid Liquid that runs into the sandbox's per-part limit (2 s) for every recipient.
    const id = await createCampaign(app, key, { audience: { listIds: [listId] }, html: '{% for i in (1..5000) %}{% for j in (1..5000) %}{% endfor %}{% endfor %}{{ unsubscribe_url }}' });
    // The worker runs in this process: its event loop is this one.
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
    const done = await ended(key, id);
    delay.disable();
    expect(done).toMatchObject({ status: 'failed', error: { code: 'TEMPLATE_RENDER_LIMIT' }, stats: { sent: 0 } });
    expect(done.error.message).toMatch(/^Rendering 20 messages took longer than \d+ ms/);
    expect(mailsTo(emails)).toEqual([]);
    // Rendered here, each message would have held the loop for seconds.
    expect(delay.max / 1e6).toBeLessThan(1_000);
  }, 60_000);

  it('fails only the recipient whose data makes the template run past its limit; the others are sent', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.read']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 6);
    // ~1.5 s a part for that recipient: under a document's limit (2 s a part), so at that limit all three parts would
    // render, 4.5 s for the one message, over the batch's budget; at a campaign part's limit the first part stops.
    const slow = '{% if subscriber.attributes.i == 3 %}{% for a in (1..3000) %}{% for b in (1..3000) %}{% endfor %}{% endfor %}{% endif %}';
    const id = await createCampaign(app, key, { audience: { listIds: [listId] }, subject: `${slow}Hi`, text: `${slow}Hi {{ unsubscribe_url }}`, html: `${slow}<p>Hi {{ subscriber.name }}</p>{{ unsubscribe_url }}` });
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
    const done = await ended(key, id);
    expect(done).toMatchObject({ status: 'finished', stats: { audienceSize: 6, sent: 5, failed: 1 } });
    const failed = await app.call('get', `/v1/campaigns/${id}/deliveries?status=failed`, key).expect(200);
    expect(failed.body.items).toEqual([expect.objectContaining({ email: emails[2], error: expect.stringMatching(/render limit/) })]);
    expect(mailsTo(emails).map((m) => m.to[0]).sort()).toEqual(emails.filter((_, i) => i !== 2).sort());
  }, 60_000);

  it('fails only the address the server refuses for good, with its SMTP code', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.read']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 6);
    await app.sequelize.query("UPDATE subscribers SET email = 'bounce-' || email WHERE tenant_id = $1 AND email = $2", { bind: [tenant.id, emails[2]] });
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
    const done = await ended(key, id);
    expect(done).toMatchObject({ status: 'finished', stats: { audienceSize: 6, sent: 5, failed: 1, skipped: 0 } });
    const failed = await app.call('get', `/v1/campaigns/${id}/deliveries?status=failed`, key).expect(200);
    expect(failed.body.items).toEqual([expect.objectContaining({ email: `bounce-${emails[2]}`, status: 'failed', smtpCode: 550, messageId: null })]);
    expect(mailsTo(emails.filter((_, i) => i !== 2))).toHaveLength(5);
  });
});

it('erasing a subscriber anonymises their delivery rows and keeps the counts', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
  const { listId, emails } = await seedList(app.sequelize, tenant.id, 3);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
  await ended(key, id);
  const sub = (await app.call('get', `/v1/subscribers?emailPrefix=${encodeURIComponent(emails[1])}`, key).expect(200)).body.items[0];
  await app.call('post', `/v1/subscribers/${sub.id}/erase`, key).expect(200);
  const deliveries = (await app.call('get', `/v1/campaigns/${id}/deliveries`, key).expect(200)).body.items;
  expect(deliveries.map((d: { email: string }) => d.email)).not.toContain(emails[1]);
  expect(deliveries.find((d: { subscriberId: string }) => d.subscriberId === sub.id)).toMatchObject({ email: `erased+${sub.id}@erased.invalid`, status: 'sent' });
  expect((await app.call('get', `/v1/campaigns/${id}`, key).expect(200)).body.stats).toMatchObject({ sent: 3 });
});

describe('permissions', () => {
  it('reads need campaigns.read, drafts campaigns.write, sends campaigns.send', async () => {
    const admin = await buildCaller(['*']);
    const { listId } = await seedList(app.sequelize, admin.tenant.id, 1);
    const id = await createCampaign(app, admin.key, { audience: { listIds: [listId] } });
    const as = async (perms: string[]) => (await buildCaller(perms, admin.tenant)).key;
    const reader = await as(['campaigns.read']);
    const writer = await as(['campaigns.read', 'campaigns.write']);
    const sender = await as(['campaigns.read', 'campaigns.send']);
    const nobody = await as(['audience.read']);
    const matrix: [string, 'get' | 'post' | 'patch' | 'delete', string, Record<string, unknown> | undefined, string[]][] = [
      ['listCampaigns', 'get', '/v1/campaigns', undefined, [reader, writer, sender]],
      ['getCampaign', 'get', `/v1/campaigns/${id}`, undefined, [reader, writer, sender]],
      ['listCampaignDeliveries', 'get', `/v1/campaigns/${id}/deliveries`, undefined, [reader, writer, sender]],
      ['createCampaign', 'post', '/v1/campaigns', { ...BODY, name: 'x' }, [writer]],
      ['updateCampaign', 'patch', `/v1/campaigns/${id}`, { name: 'renamed' }, [writer]],
    ];
    for (const [op, method, url, body, allowed] of matrix) {
      for (const key of [reader, writer, sender, nobody]) {
        const res = await app.call(method, url, key).send(body);
        if (allowed.includes(key)) expect([op, res.status]).toEqual([op, expect.any(Number)]);
        if (allowed.includes(key)) expect(res.status).toBeLessThan(300);
        else expect([op, res.status, res.body.permission]).toEqual([op, 403, expect.stringMatching(/^campaigns\./)]);
      }
    }
    // Sending and its commands need campaigns.send (checked before anything else).
    for (const key of [reader, writer, nobody]) {
      for (const path of ['send', 'pause', 'resume', 'cancel', 'retry-failed', 'test']) {
        const res = await app.call('post', `/v1/campaigns/${id}/${path}`, key).send(path === 'test' ? { emails: ['a@example.com'] } : {});
        expect([path, res.status, res.body.permission]).toEqual([path, 403, 'campaigns.send']);
      }
    }
    await app.call('post', `/v1/campaigns/${id}/send`, sender).send({}).expect(202);
    await app.call('delete', `/v1/campaigns/${id}`, writer).expect(409);
    await ended(admin.key, id);
  });

  it("shows the recipients' addresses only to a caller who may read subscribers (audience.read), as a test send does", async () => {
    const admin = await buildCaller(['*']);
    const { listId, emails } = await seedList(app.sequelize, admin.tenant.id, 3);
    // One address the SMTP sink refuses: its reply ("recipient <address> refused") names the recipient.
    const bounced = `bounce-${emails[1]}`;
    await app.sequelize.query('UPDATE subscribers SET email = $3 WHERE tenant_id = $1 AND email = $2', { bind: [admin.tenant.id, emails[1], bounced] });
    const addresses = [emails[0], bounced, emails[2]];
    const id = await createCampaign(app, admin.key, { audience: { listIds: [listId] } });
    await app.call('post', `/v1/campaigns/${id}/send`, admin.key).send({}).expect(202);
    expect(await ended(admin.key, id)).toMatchObject({ status: 'finished', stats: { audienceSize: 3, sent: 2, failed: 1 } });
    const [bouncedSub] = await app.sequelize.query<{ id: string }>('SELECT id FROM subscribers WHERE tenant_id = $1 AND email = $2', { bind: [admin.tenant.id, bounced], type: 'SELECT' as never });

    const as = async (permissions: string[], scopes?: string[]) => buildApiKey(await buildUser(admin.tenant, { permissions }), { scopes });
    // [who, key, sees the addresses]
    const matrix: [string, string, boolean][] = [
      ['campaigns.read', await as(['campaigns.read']), false],
      ['campaigns.read + campaigns.send', await as(['campaigns.read', 'campaigns.send']), false],
      ['campaigns.*', await as(['campaigns.*']), false],
      ["a key scoped to campaigns.read (its user: '*')", await as(['*'], ['campaigns.read']), false],
      ['campaigns.read + audience.read', await as(['campaigns.read', 'audience.read']), true],
      ['campaigns.read + audience.*', await as(['campaigns.read', 'audience.*']), true],
      ["admin ('*')", admin.key, true],
    ];
    for (const [who, key, sees] of matrix) {
      const res = await app.call('get', `/v1/campaigns/${id}/deliveries`, key).expect(200);
      const items = res.body.items as { subscriberId: string; email: string | null; status: string; smtpCode: number | null; error: string | null }[];
      // What the send did is the same for everyone: who it went to is not.
      expect({ who, statuses: items.map((d) => d.status).sort() }).toEqual({ who, statuses: ['failed', 'sent', 'sent'] });
      const failed = items.find((d) => d.status === 'failed')!;
      expect({ who, subscriberId: failed.subscriberId, smtpCode: failed.smtpCode }).toEqual({ who, subscriberId: bouncedSub.id, smtpCode: 550 });
      if (sees) {
        expect({ who, emails: items.map((d) => d.email).sort() }).toEqual({ who, emails: [...addresses].sort() });
        expect({ who, error: failed.error }).toEqual({ who, error: expect.stringContaining(bounced) });
      } else {
        expect({ who, emails: items.map((d) => d.email) }).toEqual({ who, emails: [null, null, null] });
        expect({ who, error: failed.error }).toEqual({ who, error: expect.stringMatching(/550.*\[address hidden\]/) });
        const body = JSON.stringify(res.body);
        for (const a of [...addresses, emails[1]]) expect({ who, leaks: body.includes(a) || body.includes(a.split('@')[0]) }).toEqual({ who, leaks: false });
      }
    }
    // The same rule as a test send for a subscriber: its merge data need audience.read.
    const sender = matrix[1][1];
    const test = await app.call('post', `/v1/campaigns/${id}/test`, sender).send({ emails: ['me@example.com'], subscriberId: bouncedSub.id }).expect(403);
    expect(test.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'audience.read' });
  });
});

