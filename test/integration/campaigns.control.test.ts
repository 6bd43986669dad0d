// Campaigns in motion, against a real SMTP server behind a proxy the test can cut: a schedule in a time zone on a
// durable timer, pause and resume (nobody mailed twice, everyone eventually), cancel (exact counts), the server down
// (retrying, then resumed with no duplicate), one-click unsubscribe (page, POST, headers, skipped after it), test
// sends and retry of failed recipients.
import { WorkflowFailedError } from '@temporalio/client';
import { AuditEvent, Campaign, CampaignRecipient, Subscriber } from '../../db';
import { UnsubscribeLinks } from '../../domains/campaigns/unsubscribe';
import { STATUS } from '../../workflows/search-attributes';
import { startTestApp, TestApp } from '../helpers/app';
import { createCampaign, seedList, setSendLimits } from '../helpers/campaigns';
import { buildCaller } from '../helpers/factories';
import { ReceivedMail, SmtpSink, startSmtpSink } from '../helpers/smtp-sink';
import { startTcpProxy, TcpProxy } from '../helpers/tcp-proxy';
import { waitFor } from '../helpers/wait';

let app: TestApp;
let smtp: SmtpSink;
let proxy: TcpProxy;
const refused = new Set<string>();
const deferred = new Set(['later@test.example']);
beforeAll(async () => {
  smtp = await startSmtpSink({ rejectRecipient: (a) => (refused.has(a) ? 550 : deferred.has(a) ? 451 : undefined) });
  proxy = await startTcpProxy('127.0.0.1', smtp.port);
  // Two lanes: each send's chunks run two at a time, so pause, cancel, backoff and retry runs are tried on lanes.
  app = await startTestApp({ CAMPAIGN_BATCH_SIZE: '10', CAMPAIGN_CHUNK_MS: '200', CAMPAIGN_CONCURRENCY: '2', CAMPAIGN_LANES: '2' });
  await app.startWorker({ smtpUrl: `smtp://127.0.0.1:${proxy.port}` });
});
afterEach(() => smtp.onAccepted(undefined));
afterAll(async () => {
  await app.close();
  await proxy.close();
  await smtp.close();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Each message takes `ms` to be accepted: a send slow enough to act on while it runs. */
const slowSink = (ms: number) => smtp.onAccepted(() => sleep(ms));
const mailsTo = (emails: string[]) => { const set = new Set(emails); return smtp.messages.filter((m) => set.has(m.to[0])); };
const get = async (key: string, id: string) => (await app.call('get', `/v1/campaigns/${id}`, key).expect(200)).body;

async function ended(key: string, id: string, timeoutMs = 60_000) {
  return waitFor(async () => {
    const c = await get(key, id);
    return ['finished', 'cancelled', 'failed'].includes(c.status) && c;
  }, { what: `campaign ${id} ended`, timeoutMs, intervalMs: 100 });
}

function countByAddress(mails: ReceivedMail[]): Map<string, number> {
  const by = new Map<string, number>();
  for (const m of mails) by.set(m.to[0], (by.get(m.to[0]) ?? 0) + 1);
  return by;
}

it('sends at sendAt, read in its time zone, on a durable timer (Status scheduled, then finished)', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  const { listId, emails } = await seedList(app.sequelize, tenant.id, 3);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  // Three seconds from now as a wall-clock time in Tokyo (no offset in the value).
  const at = new Date(Date.now() + 3_000);
  const tokyo = new Date(at.getTime() + 9 * 3600_000).toISOString().slice(0, 19);
  const res = await app.call('post', `/v1/campaigns/${id}/send`, key).send({ sendAt: tokyo, timeZone: 'Asia/Tokyo' }).expect(202);
  expect(res.body).toMatchObject({ status: 'scheduled', timeZone: 'Asia/Tokyo' });
  expect(Math.abs(Date.parse(res.body.sendAt) - at.getTime())).toBeLessThan(1_000);
  const handle = app.client.workflow.getHandle(res.body.workflowId);
  expect((await handle.describe()).typedSearchAttributes.get(STATUS)).toBe('scheduled');
  // Edits are still taken while it waits, and it sends what it holds at its time.
  await app.call('patch', `/v1/campaigns/${id}`, key).send({ subject: 'Edited {{ subscriber.name }}' }).expect(200);
  expect((await app.call('post', `/v1/campaigns/${id}/pause`, key).expect(409)).body.code).toBe('INVALID_STATE');
  expect(mailsTo(emails)).toHaveLength(0);
  const done = await ended(key, id);
  expect(Date.parse(done.startedAt)).toBeGreaterThanOrEqual(at.getTime() - 1_000);
  expect(done.stats).toMatchObject({ audienceSize: 3, sent: 3 });
  expect(mailsTo(emails).map((m) => m.subject).sort()).toEqual(['Edited Sub 1', 'Edited Sub 2', 'Edited Sub 3']);
  await waitFor(async () => (await handle.describe()).typedSearchAttributes.get(STATUS) === 'finished', { what: 'Status finished' });
});

it('cancels a scheduled campaign before it sends anything', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  const { listId, emails } = await seedList(app.sequelize, tenant.id, 2);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  await app.call('post', `/v1/campaigns/${id}/send`, key).send({ sendAt: new Date(Date.now() + 60_000).toISOString() }).expect(202);
  const cancelled = await app.call('post', `/v1/campaigns/${id}/cancel`, key).expect(200);
  expect(cancelled.body).toMatchObject({ status: 'cancelled', stats: { audienceSize: null, sent: 0 } });
  expect(mailsTo(emails)).toHaveLength(0);
  expect((await app.call('post', `/v1/campaigns/${id}/cancel`, key).expect(409)).body.code).toBe('INVALID_STATE');
});

it('cancelled from Temporal itself (the UI, the CLI), sending or scheduled: recorded as cancelled by the system with exact counts, and the run ends cancelled', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  const N = 400;
  const { listId, emails } = await seedList(app.sequelize, tenant.id, N);
  const sending = await createCampaign(app, key, { audience: { listIds: [listId] } });
  const scheduled = await createCampaign(app, key, { audience: { listIds: [listId] } });
  slowSink(25);
  const running = (await app.call('post', `/v1/campaigns/${sending}/send`, key).send({}).expect(202)).body;
  const waiting = (await app.call('post', `/v1/campaigns/${scheduled}/send`, key).send({ sendAt: new Date(Date.now() + 60_000).toISOString() }).expect(202)).body;
  await waitFor(async () => (await get(key, sending)).stats.sent >= 10, { what: '10 sent', intervalMs: 50 });
  // The sending one first: it is cancelled while its lanes send.
  for (const [id, workflowId] of [[sending, running.workflowId], [scheduled, waiting.workflowId]]) {
    const handle = app.client.workflow.getHandle(workflowId);
    await handle.cancel();
    // The run ends cancelled, as asked (it used to complete), with its end written first.
    await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
    const run = await handle.describe();
    expect(run.status.name).toBe('CANCELLED');
    expect(run.typedSearchAttributes.get(STATUS)).toBe('cancelled');
    expect((await get(key, id)).status).toBe('cancelled');
    const event = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'campaigns.campaign.cancelled', entityId: id } });
    expect(event?.actorType).toBe('system');
    // The input named its code's patches: no patch marker in the history.
    const events = (await handle.fetchHistory()).events ?? [];
    expect(events.filter((e) => e.markerRecordedEventAttributes)).toEqual([]);
  }
  // The end was written after the lanes stopped: what the campaign counts is what the server got, and stays so.
  const done = await get(key, sending);
  expect(done.stats.sent).toBeLessThan(N);
  expect(mailsTo(emails)).toHaveLength(done.stats.sent);
  await sleep(800);
  expect(mailsTo(emails)).toHaveLength(done.stats.sent);
  expect((await get(key, sending)).stats).toEqual(done.stats);
  expect(await CampaignRecipient.count({ where: { campaignId: sending, status: 'sent' } })).toBe(done.stats.sent);
  expect(await CampaignRecipient.count({ where: { campaignId: scheduled } })).toBe(0);
});

it('pauses within a batch, sends nothing while paused, and resumes where it stopped: everyone once', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  // Enough for the rate to be measured (between progress writes a second apart) well before the end.
  const N = 400;
  const { listId, emails } = await seedList(app.sequelize, tenant.id, N);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  slowSink(25);
  await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
  await waitFor(async () => (await get(key, id)).stats.sent >= 20, { what: '20 sent', intervalMs: 50 });
  // While it sends: the current rate, and an ETA that is the pending recipients at that rate. The sink takes 25 ms a
  // message on each of the worker's 2 connections, so no honest rate exceeds 4,800 a minute (1.5 × for the sampling).
  const sending = (await waitFor(async () => { const c = await get(key, id); return c.stats.ratePerMinute > 0 && c; }, { what: 'a current rate', intervalMs: 50 })).stats;
  expect(sending.ratePerMinute).toBeLessThanOrEqual(7_200);
  expect(sending.etaSeconds).toBe(Math.ceil((sending.pending / sending.ratePerMinute) * 60));
  const paused = await app.call('post', `/v1/campaigns/${id}/pause`, key).expect(200);
  expect(paused.body.status).toBe('paused');
  // Paused, nothing is sending: no current rate and no ETA.
  expect(paused.body.stats).toMatchObject({ ratePerMinute: 0, etaSeconds: null });
  expect((await app.call('post', `/v1/campaigns/${id}/pause`, key).expect(409)).body.code).toBe('INVALID_STATE');
  // Nothing goes out while paused: what the server has equals what the campaign counts, and both stand still.
  const atPause = mailsTo(emails).length;
  expect(atPause).toBe(paused.body.stats.sent);
  expect(atPause).toBeLessThan(N);
  await sleep(1_000);
  expect(mailsTo(emails)).toHaveLength(atPause);
  expect((await get(key, id)).stats.sent).toBe(atPause);
  expect((await app.client.workflow.getHandle(paused.body.workflowId).describe()).typedSearchAttributes.get(STATUS)).toBe('paused');
  expect((await app.call('post', `/v1/campaigns/${id}/resume`, key).expect(200)).body.status).toBe('running');
  smtp.onAccepted(undefined);
  const done = await ended(key, id);
  expect(done.stats).toMatchObject({ audienceSize: N, sent: N, failed: 0, skipped: 0, pending: 0 });
  const by = countByAddress(mailsTo(emails));
  expect(by.size).toBe(N);
  expect([...by.values()].every((n) => n === 1)).toBe(true);
  for (const action of ['campaigns.campaign.paused', 'campaigns.campaign.resumed']) {
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action, entityId: id } })).toBe(1);
  }
});

it('cancels a running campaign with exact counts: what it says went out is what the server got', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  const { listId, emails } = await seedList(app.sequelize, tenant.id, 100);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  slowSink(25);
  await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
  await waitFor(async () => (await get(key, id)).stats.sent >= 10, { what: '10 sent', intervalMs: 50 });
  const cancelled = (await app.call('post', `/v1/campaigns/${id}/cancel`, key).expect(200)).body;
  expect(cancelled.status).toBe('cancelled');
  await sleep(800);
  const got = mailsTo(emails);
  expect(got).toHaveLength(cancelled.stats.sent);
  expect(cancelled.stats.pending).toBe(100 - cancelled.stats.sent);
  expect(await CampaignRecipient.count({ where: { campaignId: id, status: 'sent' } })).toBe(cancelled.stats.sent);
  expect(await CampaignRecipient.count({ where: { campaignId: id, status: 'pending' } })).toBe(100 - cancelled.stats.sent);
  expect((await get(key, id)).stats).toEqual(cancelled.stats);
  const audit = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'campaigns.campaign.cancelled', entityId: id } });
  expect(audit!.after).toMatchObject({ sent: cancelled.stats.sent });
  expect((await app.call('post', `/v1/campaigns/${id}/resume`, key).expect(409)).body.code).toBe('INVALID_STATE');
});

it('shows retrying while the SMTP server is down, then resumes with nobody mailed twice', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  const { listId, emails } = await seedList(app.sequelize, tenant.id, 60);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  slowSink(20);
  await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
  await waitFor(async () => (await get(key, id)).stats.sent >= 10, { what: '10 sent', intervalMs: 50 });
  await proxy.cut();
  try {
    const down = await waitFor(async () => { const c = await get(key, id); return c.retrying && c; }, { what: 'retrying', timeoutMs: 20_000, intervalMs: 100 });
    expect(down).toMatchObject({ status: 'running', retrying: true, lastError: expect.any(String), stats: { ratePerMinute: 0 } });
    await waitFor(async () => (await app.client.workflow.getHandle(down.workflowId).describe()).typedSearchAttributes.get(STATUS) === 'retrying', { what: 'Status retrying' });
  } finally {
    await proxy.restore();
  }
  smtp.onAccepted(undefined);
  const done = await ended(key, id, 90_000);
  expect(done).toMatchObject({ status: 'finished', retrying: false, stats: { sent: 60, failed: 0 } });
  // A message the server took as the connection was cut may come twice (same Message-ID): no address a third time,
  // and every duplicate is one the dead connection could not have heard the 250 of.
  const mails = mailsTo(emails);
  const by = countByAddress(mails);
  expect(by.size).toBe(60);
  for (const [address, n] of by) {
    expect(n).toBeLessThanOrEqual(2);
    if (n === 2) expect(new Set(mails.filter((m) => m.to[0] === address).map((m) => m.headers['message-id'])).size).toBe(1);
  }
}, 120_000);

describe('unsubscribe', () => {
  it('shows a page on GET, unsubscribes on the one-click POST (audited, no login), and the link is bound to its subscriber', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 2);
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
    await ended(key, id);
    const mail = mailsTo([emails[0]])[0];
    const url = new URL(mail.headers['list-unsubscribe'].slice(1, -1));
    const page = await app.call('get', url.pathname).expect(200);
    expect(page.text).toContain('Unsubscribe?');
    expect(page.text).toContain(emails[0]);
    // The page renders nothing (it needs no login): a templated subject is neither rendered nor shown as a template.
    expect(mail.subject).toMatch(/^Hello Sub \d+$/);
    expect(page.text).toContain('Stop these emails to');
    expect(page.text).not.toContain('Hello');
    expect((await Subscriber.findOne({ where: { tenantId: tenant.id, email: emails[0] } }))!.status).toBe('active');
    // RFC 8058: the mail client POSTs List-Unsubscribe=One-Click, without cookies or credentials.
    const done = await app.call('post', url.pathname).type('form').send('List-Unsubscribe=One-Click').expect(200);
    expect(done.text).toContain('You are unsubscribed');
    const sub = (await Subscriber.findOne({ where: { tenantId: tenant.id, email: emails[0] } }))!;
    expect(sub.status).toBe('unsubscribed');
    expect((await Subscriber.findOne({ where: { tenantId: tenant.id, email: emails[1] } }))!.status).toBe('active');
    const audit = await AuditEvent.findAll({ where: { tenantId: tenant.id, action: 'audience.subscriber.unsubscribed', entityId: sub.id } });
    expect(audit.map((a) => a.after)).toEqual([expect.objectContaining({ campaignId: id })]);
    // Again: the same answer, nothing new.
    await app.call('post', url.pathname).type('form').send('List-Unsubscribe=One-Click').expect(200);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audience.subscriber.unsubscribed', entityId: sub.id } })).toBe(1);
    // A tampered token (one character of its MAC, or another subscriber's id) is not a link.
    const token = url.pathname.split('/').pop()!;
    const flipped = token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1);
    await app.call('get', `/v1/unsubscribe/${flipped}`).expect(404);
    await app.call('post', `/v1/unsubscribe/${flipped}`).expect(404);
    await app.call('post', '/v1/unsubscribe/nonsense').expect(404);
  });

  it('names a plain subject on the page, and keeps working after its campaign is deleted', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 1);
    const id = await createCampaign(app, key, { subject: 'Our spring news', audience: { listIds: [listId] } });
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
    await ended(key, id);
    const url = new URL(mailsTo([emails[0]])[0].headers['list-unsubscribe'].slice(1, -1));
    expect((await app.call('get', url.pathname).expect(200)).text).toContain('Stop emails like “Our spring news” to');
    await app.call('delete', `/v1/campaigns/${id}`, key).expect(204);
    expect((await app.call('get', url.pathname).expect(200)).text).toContain('Stop these emails to');
    await app.call('post', url.pathname).type('form').send('List-Unsubscribe=One-Click').expect(200);
    const sub = (await Subscriber.findOne({ where: { tenantId: tenant.id, email: emails[0] } }))!;
    expect(sub.status).toBe('unsubscribed');
    const audit = await AuditEvent.findAll({ where: { tenantId: tenant.id, action: 'audience.subscriber.unsubscribed', entityId: sub.id } });
    expect(audit.map((a) => a.after)).toEqual([expect.objectContaining({ campaignId: id })]);
  });

  it('skips a recipient who unsubscribed after the snapshot', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.read']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 40);
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    slowSink(25);
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
    await waitFor(async () => (await get(key, id)).stats.audienceSize === 40, { what: 'snapshot', intervalMs: 50 });
    const last = (await Subscriber.findOne({ where: { tenantId: tenant.id, email: emails[39] } }))!;
    const [row] = await CampaignRecipient.findAll({ where: { campaignId: id, subscriberId: last.id } });
    expect(row.status).toBe('pending');
    const token = new UnsubscribeLinks(app.config.linkSecret, app.config.publicUrl).token({ tenantId: tenant.id, campaignId: id, subscriberId: last.id });
    await app.call('post', `/v1/unsubscribe/${token}`).expect(200);
    smtp.onAccepted(undefined);
    const done = await ended(key, id);
    expect(done.stats).toMatchObject({ audienceSize: 40, sent: 39, skipped: 1 });
    expect(mailsTo([emails[39]])).toHaveLength(0);
    expect((await app.call('get', `/v1/campaigns/${id}/deliveries?status=skipped`, key).expect(200)).body.items).toEqual([expect.objectContaining({ email: emails[39], status: 'skipped' })]);
  });
});

describe('test sends', () => {
  it('sends the current content to given addresses with sample data or a subscriber\'s, and refuses bad input', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.read']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 1);
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    const res = await app.call('post', `/v1/campaigns/${id}/test`, key).send({ emails: ['qa1@test.example', 'qa2@test.example'], sample: { name: 'Ada', attributes: { plan: 'gold' } } }).expect(200);
    expect(res.body.sent.map((s: { email: string }) => s.email).sort()).toEqual(['qa1@test.example', 'qa2@test.example']);
    expect(res.body.failed).toEqual([]);
    const qa = mailsTo(['qa1@test.example']);
    expect(qa).toHaveLength(1);
    expect(qa[0].subject).toBe('Hello Ada');
    expect(qa[0].html).toContain('Dear Ada (gold)');
    expect(qa[0].headers['message-id']).toBe(res.body.sent.find((s: { email: string }) => s.email === 'qa1@test.example').messageId);
    const sub = (await Subscriber.findOne({ where: { tenantId: tenant.id, email: emails[0] } }))!;
    await app.call('post', `/v1/campaigns/${id}/test`, key).send({ emails: ['qa3@test.example'], subscriberId: sub.id }).expect(200);
    const forSub = mailsTo(['qa3@test.example'])[0];
    expect(forSub.subject).toBe('Hello Sub 1');
    // Rendered for the subscriber, but its link is no link: whoever gets a test mail cannot unsubscribe them.
    expect(forSub.headers['list-unsubscribe']).toMatch(/\/v1\/unsubscribe\/test>$/);
    expect(forSub.html).not.toMatch(/\/v1\/unsubscribe\/[A-Za-z0-9_-]{86}/);
    // Without audience.read a caller sees no subscriber's data this way (sample data only).
    const sender = await buildCaller(['campaigns.*'], tenant);
    const refused = await app.call('post', `/v1/campaigns/${id}/test`, sender.key).send({ emails: ['qa5@test.example'], subscriberId: sub.id }).expect(403);
    expect(refused.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'audience.read' });
    expect(mailsTo(['qa5@test.example'])).toHaveLength(0);
    await app.call('post', `/v1/campaigns/${id}/test`, sender.key).send({ emails: ['qa5@test.example'], sample: { name: 'Ada' } }).expect(200);
    // Nothing of it is a delivery, and the draft stays a draft.
    expect(await CampaignRecipient.count({ where: { campaignId: id } })).toBe(0);
    expect((await get(key, id)).status).toBe('draft');
    expect((await app.call('post', `/v1/campaigns/${id}/test`, key).send({ emails: ['nope'] }).expect(422)).body).toMatchObject({ code: 'INVALID_ADDRESS', errors: [{ path: '/requestBody/emails/0' }] });
    await app.call('post', `/v1/campaigns/${id}/test`, key).send({ emails: Array.from({ length: 11 }, (_, i) => `q${i}@test.example`) }).expect(400);
    await app.call('post', `/v1/campaigns/${id}/test`, key).send({ emails: [] }).expect(400);
    const other = await buildCaller(['*']);
    const foreign = await seedList(app.sequelize, other.tenant.id, 1);
    const foreignSub = (await Subscriber.findOne({ where: { tenantId: other.tenant.id, email: foreign.emails[0] } }))!;
    await app.call('post', `/v1/campaigns/${id}/test`, key).send({ emails: ['qa4@test.example'], subscriberId: foreignSub.id }).expect(404);
  });

  it('counts test mails against the tenant\'s send limit: what finds no room within 10 s is not sent; none at all is 429 RATE_LIMITED', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    const { listId } = await seedList(app.sequelize, tenant.id, 1);
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    // One a minute.
    await setSendLimits(app.sequelize, tenant.id, 1, 5);
    const first = await app.call('post', `/v1/campaigns/${id}/test`, key).send({ emails: ['limit0@test.example', 'limit1@test.example'], sample: {} }).expect(200);
    expect(first.body.sent.map((s: { email: string }) => s.email)).toEqual(['limit0@test.example']);
    expect(first.body.failed).toEqual([{ email: 'limit1@test.example', code: null, message: expect.stringMatching(/^No room in the tenant's send limit within 10 s/) }]);
    const refusedAt = Date.now();
    const res = await app.call('post', `/v1/campaigns/${id}/test`, key).send({ emails: ['limit2@test.example'], sample: {} }).expect(429);
    expect(res.body).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
    expect(res.headers['retry-after']).toBe('10');
    // It waited for room (10 s) before it gave up.
    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(9_000);
    expect(mailsTo(['limit0@test.example'])).toHaveLength(1);
    expect(mailsTo(['limit1@test.example', 'limit2@test.example'])).toEqual([]);
  });

  it('stops a test send at the first message the server fails without refusing it: the rest are answered not tried', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    const { listId } = await seedList(app.sequelize, tenant.id, 1);
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    const emails = ['first-ok@test.example', 'later@test.example', 'after@test.example'];
    const res = await app.call('post', `/v1/campaigns/${id}/test`, key).send({ emails, sample: {} }).expect(200);
    expect(res.body.sent.map((s: { email: string }) => s.email)).toEqual(['first-ok@test.example']);
    expect(res.body.failed).toEqual([
      { email: 'later@test.example', code: null, message: expect.stringMatching(/451/) },
      { email: 'after@test.example', code: null, message: expect.stringMatching(/^Not tried: the SMTP server failed the message before it \(.*451/) },
    ]);
    expect(mailsTo(['after@test.example'])).toEqual([]);
  });
});

it('paces the tenant\'s maxPerMinute across two campaigns sending at once: its rate all along, shared, not one burst', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  // 60 each: alone, the first campaign's 60 take ~5 s at this pace, far longer than the second one needs to start
  // sending (with 25 each it could be done first on a slow worker, and the test then showed no sharing).
  const a = await seedList(app.sequelize, tenant.id, 60);
  const b = await seedList(app.sequelize, tenant.id, 60);
  // 600 a minute: 10 a second, after a first burst of at most 11 (1 s worth, and one).
  await setSendLimits(app.sequelize, tenant.id, 600, 5);
  const ours = new Set([...a.emails, ...b.emails]);
  const at: number[] = [];
  smtp.onAccepted((m) => { if (ours.has(m.to[0])) at.push(Date.now()); });
  const ids = [await createCampaign(app, key, { audience: { listIds: [a.listId] } }), await createCampaign(app, key, { audience: { listIds: [b.listId] } })];
  for (const id of ids) await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
  const stats = await Promise.all(ids.map((id) => ended(key, id)));
  expect(stats.map((c) => c.stats.sent)).toEqual([60, 60]);
  expect(at).toHaveLength(120);
  // Unpaced, the 120 would go out within a second or two. Paced, they take at least (120 − 11) / 10 s,
  expect(at[119] - at[0]).toBeGreaterThanOrEqual(10_000);
  // and no second holds much more than its 10 and the first burst (grants are made a few at a time, half a
  // burst's worth, and sends trail them by a moment).
  for (const t of at) expect(at.filter((u) => u >= t && u < t + 1_000).length).toBeLessThanOrEqual(30);
  // The pace is the tenant's, shared: both campaigns are among the first 60 mails, not one after the other.
  const firstHalf = mailsTo([...ours]).slice(0, 60).map((m) => m.to[0]);
  expect(firstHalf.some((e) => a.emails.includes(e))).toBe(true);
  expect(firstHalf.some((e) => b.emails.includes(e))).toBe(true);
}, 90_000);

it('retries failed recipients as a new run: only they are sent, and the counts add up', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  const { listId, emails } = await seedList(app.sequelize, tenant.id, 8);
  refused.add(emails[1]);
  refused.add(emails[5]);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  expect((await app.call('post', `/v1/campaigns/${id}/retry-failed`, key).expect(409)).body.code).toBe('INVALID_STATE');
  await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
  const first = await ended(key, id);
  expect(first.stats).toMatchObject({ sent: 6, failed: 2 });
  refused.clear();
  const retriedAt = new Date();
  const retry = await app.call('post', `/v1/campaigns/${id}/retry-failed`, key).expect(202);
  expect(retry.body).toMatchObject({ requeued: 2, campaign: { status: 'running', stats: { sent: 6, failed: 0, pending: 2 } } });
  // The rate's window starts again with the run (the first run's mark counted the 2 requeued, so a rate measured
  // from it would come out negative): no mark, or one the new run wrote.
  const mark = (await Campaign.findOne({ where: { tenantId: tenant.id, id } }))!.progressAt;
  expect(mark === null || mark >= retriedAt).toBe(true);
  const done = await ended(key, id);
  expect(done).toMatchObject({ status: 'finished', stats: { audienceSize: 8, sent: 8, failed: 0, pending: 0 } });
  const by = countByAddress(mailsTo(emails));
  expect(by.size).toBe(8);
  expect([...by.values()].every((n) => n === 1)).toBe(true);
  expect((await app.call('post', `/v1/campaigns/${id}/retry-failed`, key).expect(409)).body.code).toBe('INVALID_STATE');
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'campaigns.campaign.finished', entityId: id } })).toBe(2);
});
