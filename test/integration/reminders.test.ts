// Reminders end to end through the real API, Postgres, Temporal, an SMTP sink and a webhook receiver:
// a reminder delivers once by email, in-app and a Standard-Webhooks-signed webhook (through the webhook relay,
// verified with the `standardwebhooks` package); the preview follows DST; every
// command and every refusal answers synchronously.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { AuditEvent, Delivery, Reminder, WebhookEndpoint, WorkflowStartIntent } from '../../db';
import { createDueSoon } from '../helpers/due';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { TestApp } from '../helpers/app';
import { Stack, startStack } from '../helpers/stack';
import type { SmtpSink } from '../helpers/smtp-sink';
import type { ReceivedWebhook, WebhookReceiver } from '../helpers/webhook-receiver';
import { waitFor } from '../helpers/wait';
import { setSendLimits } from '../helpers/campaigns';
import { Op } from 'sequelize';
import { REMINDER_SEND_WAIT_MS } from '../../activities/reminders';

let stack: Stack;
let app: TestApp;
let hooks: WebhookReceiver;
let smtp: SmtpSink;
const SECRET = 'whsec_test_0123456789abcdef';
// The webhook relay reads often and retries fast here (production: every second, first retry after 30 s). The webhooks
// go to a receiver on loopback, which the API accepts only with the development switch (as for webhook endpoints).
beforeAll(async () => { ({ app, hooks, smtp } = stack = await startStack({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RELAY_EVERY_MS: '200', WEBHOOK_RETRY_INITIAL_MS: '1000', WEBHOOK_RETRY_MAX_MS: '2000' })); });
afterAll(() => stack.close());

const headersOf = (h: ReceivedWebhook) => ({ 'webhook-id': String(h.headers['webhook-id']), 'webhook-timestamp': String(h.headers['webhook-timestamp']), 'webhook-signature': String(h.headers['webhook-signature']) });
/** What a receiver of a reminder's webhook does: verify with the reminder's secret as raw key bytes. */
const verify = (secret: string, h: ReceivedWebhook) => new Webhook(secret, { format: 'raw' }).verify(h.body, headersOf(h));

const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
const inDays = (d: number) => inSeconds(d * 86_400);

async function team() {
  const { tenant, user: admin, key } = await buildCaller(['*']);
  const ada = await buildUser(tenant, { name: 'Ada', email: `ada-${randomUUID().slice(0, 6)}@example.com` });
  return { tenant, admin, key, ada, adaKey: await buildApiKey(ada) };
}

function create(key: string, over: Record<string, unknown> = {}) {
  return app.call('post', '/v1/reminders', key).send({ subject: 'Renew the contract', message: 'It expires soon.', channels: ['email'], recipients: { emails: ['ops@example.com'] }, dueAt: inDays(2), ...over });
}

/** A reminder due a moment from now (see createDueSoon): the test waits for its delivery, not for a fixed time. */
async function createDueNow(key: string, over: Record<string, unknown>) {
  const res = await createDueSoon((dueAt) => create(key, { ...over, dueAt }));
  expect([res.status, res.body.code]).toEqual([201, undefined]);
  return res;
}

describe('delivery', () => {
  it('delivers a one-off reminder once by email, in-app and a signed webhook, then completes', async () => {
    const t = await team();
    const subject = `Pay invoice ${randomUUID().slice(0, 8)}`;
    const res = await createDueNow(t.key, {
      subject, object: { type: 'invoice', id: 'INV-7' }, channels: ['email', 'in_app', 'webhook'],
      recipients: { users: [t.ada.id], emails: ['billing@example.com'], webhooks: [{ url: `${hooks.url}/one`, secret: SECRET }] },
    });
    expect(res.headers.location).toBe(`/v1/reminders/${res.body.id}`);
    expect(res.body).toMatchObject({ status: 'active', nextTriggerAt: res.body.dueAt, recipients: { webhooks: [{ url: `${hooks.url}/one` }] } });
    expect(JSON.stringify(res.body)).not.toContain(SECRET);
    // The webhook is a reminder endpoint holding the secret sealed; the reminder row keeps the URL only.
    expect((await Reminder.findByPk(res.body.id))!.recipients.webhooks).toEqual([{ url: `${hooks.url}/one` }]);
    const endpoints = await WebhookEndpoint.findAll({ where: { reminderId: res.body.id } });
    expect(endpoints.map((e) => [e.url, e.eventTypes, e.recipientIndex, e.tenantId])).toEqual([[`${hooks.url}/one`, ['reminder.fired'], 0, t.tenant.id]]);
    expect(endpoints[0].secret).not.toContain(SECRET);
    expect(endpoints[0].secret.startsWith('enc:v1:')).toBe(true);
    expect(res.body.workflowId).toBe(`reminders:${t.tenant.id}:${res.body.id}`);
    // Written with the row in one statement: the event holds the reminder as the API answered it.
    const createdEvents = await AuditEvent.findAll({ where: { tenantId: t.tenant.id, entityId: res.body.id, action: 'reminders.reminder.created' } });
    expect(createdEvents.map((e) => e.after)).toEqual([res.body]);

    const done = await waitFor(async () => {
      const r = (await app.call('get', `/v1/reminders/${res.body.id}`, t.key).expect(200)).body;
      return r.status === 'completed' && r;
    }, { what: 'reminder completed' });
    expect(done).toMatchObject({ nextTriggerAt: null, occurrenceCount: 1 });
    await waitFor(async () => smtp.messages.filter((m) => m.subject.includes(subject)).length === 2, { what: 'two emails' });
    expect(smtp.messages.filter((m) => m.subject === `Reminder: ${subject}`).map((m) => m.to[0]).sort()).toEqual(['billing@example.com', t.ada.email].sort());

    // One POST, of the reminder.fired event, signed per Standard Webhooks with the reminder's secret as the key.
    const hook = await hooks.waitFor((h) => h.path === '/one', 30_000);
    expect(verify(SECRET, hook)).toEqual({ type: 'reminder.fired', timestamp: expect.any(String), data: { reminderId: res.body.id, occurrence: res.body.dueAt, trigger: 'before:0m', subject, message: 'It expires soon.', object: { type: 'invoice', id: 'INV-7' } } });
    expect(() => verify('another-secret-entirely', hook)).toThrow();
    expect(hook.headers['docket-signature']).toBeUndefined();
    const hookDeliveries = await waitFor(async () => {
      const items = (await app.call('get', `/v1/reminders/${res.body.id}/webhook-deliveries`, t.key).expect(200)).body.items;
      return items.length === 1 && items[0].status === 'delivered' && items;
    }, { what: 'the webhook delivery logged as delivered' });
    expect(hookDeliveries[0]).toMatchObject({ eventType: 'reminder.fired', eventId: hook.headers['webhook-id'], attempts: 1, attemptLog: [{ outcome: 'delivered', statusCode: 200 }] });

    const mine = (await app.call('get', '/v1/me/notifications', t.adaKey).expect(200)).body;
    expect(mine.unreadCount).toBe(1);
    expect(mine.items[0]).toMatchObject({ subject, read: false, sourceType: 'reminder', sourceId: res.body.id, object: { type: 'invoice', id: 'INV-7' } });

    const deliveries = (await app.call('get', `/v1/reminders/${res.body.id}/deliveries`, t.key).expect(200)).body.items;
    // The reminder's own ledger has the emails and the notice; its webhook is the webhook path's (above), sent once.
    expect(deliveries.map((d: { channel: string; status: string }) => `${d.channel}:${d.status}`).sort()).toEqual(['email:sent', 'email:sent', 'in_app:sent']);
    expect(await Delivery.count({ where: { subjectId: res.body.id, status: 'sent' } })).toBe(3);
    expect(hooks.received.filter((h) => h.path === '/one')).toHaveLength(1);
  });

  it('emails to outside addresses count against the tenant\'s send limit (paced, then sent, nothing failed, no attempt spent waiting); emails to its users do not', async () => {
    const t = await team();
    // 6 a minute: one every 10 s, longer than a delivery waits for room (REMINDER_SEND_WAIT_MS), so the second outside
    // address is retried before it is sent.
    await setSendLimits(app.sequelize, t.tenant.id, 6, 10);
    const subject = `Paced ${randomUUID().slice(0, 8)}`;
    const outside = [`o1-${randomUUID().slice(0, 6)}@example.com`, `o2-${randomUUID().slice(0, 6)}@example.com`];
    const res = await createDueNow(t.key, { subject, channels: ['email'], recipients: { users: [t.ada.id], emails: outside } });
    // When each address's email was first seen at the server (polled every 100 ms).
    const seen = new Map<string, number>();
    await waitFor(async () => {
      for (const m of smtp.messages) if (m.subject === `Reminder: ${subject}` && !seen.has(m.to[0])) seen.set(m.to[0], Date.now());
      return seen.size === 3;
    }, { what: 'all three emails', timeoutMs: 60_000, intervalMs: 100 });
    const [first, second] = outside.map((to) => seen.get(to)!).sort((a, b) => a - b);
    // The second outside address waited for the limit's next slot, through a retry; the user's email did not wait.
    expect(second - first).toBeGreaterThanOrEqual(8_000);
    expect(second - first).toBeGreaterThan(REMINDER_SEND_WAIT_MS);
    expect(seen.get(t.ada.email)!).toBeLessThan(second);
    const deliveries = (await app.call('get', `/v1/reminders/${res.body.id}/deliveries`, t.key).expect(200)).body.items as { status: string; attempt: number }[];
    // Waiting for room is not an attempt: each was sent on its first, none failed (a delivery gets 8 for SMTP errors).
    expect(deliveries.map((d) => [d.status, d.attempt])).toEqual([['sent', 1], ['sent', 1], ['sent', 1]]);
    expect(await Delivery.count({ where: { subjectId: res.body.id, error: { [Op.ne]: null } } })).toBe(0);
  });

  it('a failing webhook is retried with backoff by the webhook path (each attempt logged), never holding up the email', async () => {
    const t = await team();
    hooks.respondWith(500, 500);
    const res = await createDueNow(t.key, { channels: ['webhook', 'email'], recipients: { emails: ['x@example.com'], webhooks: [{ url: `${hooks.url}/flaky`, secret: SECRET }] } });
    const [delivery] = await waitFor(async () => {
      const list = (await app.call('get', `/v1/reminders/${res.body.id}/webhook-deliveries`, t.key).expect(200)).body.items;
      return list.length && list[0].status === 'delivered' && list;
    }, { what: 'webhook retried until it succeeded' });
    const log = delivery.attemptLog as { attempt: number; outcome: string; statusCode: number | null; at: string }[];
    expect(log.map((a) => [a.attempt, a.outcome, a.statusCode])).toEqual([[1, 'failed', 500], [2, 'failed', 500], [3, 'delivered', 200]]);
    // Backoff: the retries waited out the policy's intervals (1 s, then 2 s) instead of hammering the endpoint.
    const at = (d: { at: string }) => Date.parse(d.at);
    expect(at(log[1]) - at(log[0])).toBeGreaterThanOrEqual(900);
    expect(at(log[2]) - at(log[1])).toBeGreaterThanOrEqual(1900);
    // The reminder's activity did not retry it (its ledger has no webhook row); the email did not wait for it.
    const items = (await app.call('get', `/v1/reminders/${res.body.id}/deliveries`, t.key).expect(200)).body.items as { channel: string; status: string; at: string }[];
    expect(items.map((d) => `${d.channel}:${d.status}`)).toEqual(['email:sent']);
    expect(at(items[0])).toBeLessThan(at(log[1]));
    const received = hooks.received.filter((h) => h.path === '/flaky');
    // The same webhook-id on every retry, each validly signed: the receiver can drop a duplicate.
    expect(received).toHaveLength(3);
    expect(new Set(received.map((h) => h.headers['webhook-id'])).size).toBe(1);
    for (const h of received) expect(verify(SECRET, h)).toMatchObject({ type: 'reminder.fired', data: { reminderId: res.body.id } });
  });
});

describe('dispatch preview', () => {
  it('lists the next triggers of a weekly reminder with two offsets, 09:00 Berlin across the March DST change', async () => {
    const t = await team();
    const res = await create(t.key, {
      dueAt: undefined, offsets: [15, 1440],
      recurrence: { rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0', timezone: 'Europe/Berlin', start: '2027-03-15T00:00:00+01:00' },
    }).expect(201);
    expect(res.body.recurrence).toMatchObject({ timezone: 'Europe/Berlin' });
    expect(res.body.nextTriggerAt).toBe('2027-03-14T08:00:00.000Z');
    const preview = (await app.call('get', `/v1/reminders/${res.body.id}/preview?count=6`, t.key).expect(200)).body.items;
    expect(preview.map((p: { at: string; trigger: string }) => `${p.at} ${p.trigger}`)).toEqual([
      '2027-03-14T08:00:00.000Z before:1440m', '2027-03-15T07:45:00.000Z before:15m',
      '2027-03-21T08:00:00.000Z before:1440m', '2027-03-22T07:45:00.000Z before:15m',
      // 28 March: clocks go forward. Still 09:00 local (and 09:00 the day before), now 07:00Z.
      '2027-03-28T07:00:00.000Z before:1440m', '2027-03-29T06:45:00.000Z before:15m',
    ]);
    await app.call('get', `/v1/reminders/${res.body.id}/preview?count=0`, t.key).expect(400);
  });
});

describe('commands', () => {
  it('reschedules, snoozes, acknowledges, pauses, resumes and cancels, each at once and audited', async () => {
    const t = await team();
    const id = (await create(t.key, { dueAt: inDays(2) }).expect(201)).body.id;
    const url = `/v1/reminders/${id}`;
    const newDue = inDays(3);
    const rescheduled = (await app.call('post', `${url}/reschedule`, t.key).send({ dueAt: newDue }).expect(200)).body;
    expect(rescheduled).toMatchObject({ dueAt: newDue, nextTriggerAt: newDue });
    const snoozed = (await app.call('post', `${url}/snooze`, t.key).send({ minutes: 60 }).expect(200)).body;
    expect(Date.parse(snoozed.snoozedUntil) - Date.now()).toBeGreaterThan(59 * 60_000);
    expect(snoozed.nextTriggerAt).toBe(snoozed.snoozedUntil);
    expect((await app.call('post', `${url}/pause`, t.key).expect(200)).body).toMatchObject({ status: 'paused', nextTriggerAt: null });
    expect((await app.call('post', `${url}/pause`, t.key).expect(409)).body.code).toBe('REMINDER_PAUSED');
    expect((await app.call('post', `${url}/snooze`, t.key).send({ minutes: 5 }).expect(409)).body.code).toBe('REMINDER_PAUSED');
    expect((await app.call('post', `${url}/resume`, t.key).expect(200)).body.status).toBe('active');
    expect((await app.call('post', `${url}/resume`, t.key).expect(409)).body.code).toBe('REMINDER_NOT_PAUSED');
    const acked = (await app.call('post', `${url}/acknowledge`, t.key).expect(200)).body;
    // A one-off reminder acknowledged has nothing left to remind of.
    expect(acked).toMatchObject({ status: 'completed', nextTriggerAt: null });
    expect((await app.call('post', `${url}/cancel`, t.key).expect(409)).body.code).toBe('REMINDER_CLOSED');

    const other = (await create(t.key).expect(201)).body.id;
    expect((await app.call('post', `/v1/reminders/${other}/cancel`, t.key).expect(200)).body.status).toBe('cancelled');
    for (const verb of ['cancel', 'pause', 'acknowledge']) {
      expect((await app.call('post', `/v1/reminders/${other}/${verb}`, t.key).expect(409)).body.code).toBe('REMINDER_CLOSED');
    }
    expect((await app.call('post', `/v1/reminders/${other}/reschedule`, t.key).send({ dueAt: inDays(1) }).expect(409)).body.code).toBe('REMINDER_CLOSED');
    const actions = (await AuditEvent.findAll({ where: { tenantId: t.tenant.id, entityId: id }, order: [['id', 'ASC']] })).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['reminders.reminder.created', 'reminders.reminder.rescheduled', 'reminders.reminder.snoozed', 'reminders.reminder.paused', 'reminders.reminder.resumed', 'reminders.reminder.acknowledged']));
  });

  it('refuses bad commands synchronously with a stable code, changing nothing', async () => {
    const t = await team();
    const id = (await create(t.key).expect(201)).body.id;
    const url = `/v1/reminders/${id}`;
    expect((await app.call('post', `${url}/reschedule`, t.key).send({ dueAt: inSeconds(-60) }).expect(422)).body.code).toBe('TIME_IN_PAST');
    expect((await app.call('post', `${url}/reschedule`, t.key).send({}).expect(422)).body.code).toBe('INVALID_REMINDER');
    expect((await app.call('post', `${url}/reschedule`, t.key).send({ recurrence: { rrule: 'FREQ=SOMETIMES', timezone: 'UTC' } }).expect(422)).body.code).toBe('INVALID_RECURRENCE');
    expect((await app.call('post', `${url}/snooze`, t.key).send({ until: inSeconds(-5) }).expect(422)).body.code).toBe('TIME_IN_PAST');
    expect((await app.call('post', `${url}/snooze`, t.key).send({ until: inDays(1), minutes: 5 }).expect(422)).body.code).toBe('INVALID_REMINDER');
    expect((await app.call('post', `${url}/snooze`, t.key).send({ minutes: 0 }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await app.call('post', `${url}/resume`, t.key).expect(409)).body.code).toBe('REMINDER_NOT_PAUSED');
    const after = (await app.call('get', url, t.key).expect(200)).body;
    expect(after).toMatchObject({ status: 'active', snoozedUntil: null });
    expect((await app.call('post', `/v1/reminders/${randomUUID()}/snooze`, t.key).send({ minutes: 5 }).expect(404)).body.code).toBe('NOT_FOUND');
    await app.call('post', '/v1/reminders/not-a-uuid/cancel', t.key).expect(400);
    for (const bad of ['/v1/reminders/not-a-uuid', `${url}/preview?count=101`, `${url}/deliveries?cursor=garbage`, '/v1/reminders?dueFrom=yesterday', '/v1/reminders?limit=0']) {
      expect([bad, (await app.call('get', bad, t.key)).status]).toEqual([bad, 400]);
    }
    for (const verb of ['acknowledge', 'pause', 'resume', 'cancel']) {
      expect((await app.call('post', `/v1/reminders/${randomUUID()}/${verb}`, t.key).expect(404)).body.code).toBe('NOT_FOUND');
    }
    expect((await app.call('post', `/v1/reminders/${randomUUID()}/reschedule`, t.key).send({ dueAt: inDays(1) }).expect(404)).body.code).toBe('NOT_FOUND');
    const { key: readOnly } = await buildCaller(['reminders.read'], t.tenant);
    expect((await app.call('post', `${url}/pause`, readOnly).expect(403)).body.code).toBe('PERMISSION_DENIED');
  });
});

describe('create, read and list', () => {
  it('refuses bad reminders with a stable code and writes nothing', async () => {
    const t = await team();
    const stranger = (await team()).ada;
    const gone = await buildUser(t.tenant, { name: 'Gone', email: `gone-${randomUUID().slice(0, 6)}@example.com` });
    await gone.update({ active: false });
    const cases: [Record<string, unknown>, number, string][] = [
      [{ subject: undefined }, 400, 'VALIDATION_FAILED'],
      [{ channels: ['fax'] }, 400, 'VALIDATION_FAILED'],
      [{ recurrence: { rrule: 'FREQ=DAILY', timezone: 'UTC' } }, 422, 'INVALID_REMINDER'],
      [{ dueAt: undefined }, 422, 'INVALID_REMINDER'],
      [{ dueAt: inSeconds(-1) }, 422, 'TIME_IN_PAST'],
      [{ dueAt: inSeconds(600), offsets: [60] }, 422, 'TIME_IN_PAST'],
      [{ dueAt: undefined, recurrence: { rrule: 'FREQ=DAILY;BYHOUR=25', timezone: 'UTC' } }, 422, 'INVALID_RECURRENCE'],
      [{ dueAt: undefined, recurrence: { rrule: 'FREQ=DAILY', timezone: 'Mars/Olympus' } }, 422, 'INVALID_RECURRENCE'],
      [{ dueAt: undefined, recurrence: { rrule: 'FREQ=SECONDLY', timezone: 'UTC' } }, 422, 'INVALID_RECURRENCE'],
      [{ dueAt: undefined, recurrence: { rrule: 'FREQ=DAILY;COUNT=1', timezone: 'UTC', start: '2020-01-01T00:00:00Z' } }, 422, 'INVALID_RECURRENCE'],
      [{ channels: ['in_app'] }, 422, 'INVALID_REMINDER'],
      [{ channels: ['webhook'] }, 422, 'INVALID_REMINDER'],
      [{ recipients: { users: [randomUUID()] } }, 422, 'UNKNOWN_USER'],
      // Checked in the statement that writes the reminder: a refusal there takes every write back.
      [{ channels: ['in_app'], recipients: { users: [t.ada.id, randomUUID()] } }, 422, 'UNKNOWN_USER'],
      [{ channels: ['in_app'], recipients: { users: [t.ada.id, stranger.id] } }, 422, 'UNKNOWN_USER'],
      [{ channels: ['in_app'], recipients: { users: [gone.id] } }, 422, 'UNKNOWN_USER'],
      [{ channels: ['in_app'], recipients: { users: [`urn:uuid:${t.ada.id}`] } }, 400, 'VALIDATION_FAILED'],
      [{ recipients: { webhooks: [{ url: 'ftp://x', secret: SECRET }] }, channels: ['webhook'] }, 400, 'VALIDATION_FAILED'],
      [{ offsets: [-5] }, 400, 'VALIDATION_FAILED'],
    ];
    for (const [over, status, code] of cases) {
      const res = await create(t.key, over);
      expect([JSON.stringify(over), res.status, res.body.code]).toEqual([JSON.stringify(over), status, code]);
    }
    expect((await app.call('get', '/v1/reminders', t.key).expect(200)).body.items).toEqual([]);
    expect(await AuditEvent.count({ where: { tenantId: t.tenant.id, entityType: 'reminder' } })).toBe(0);
    expect(await WorkflowStartIntent.count({ where: { tenantId: t.tenant.id } })).toBe(0);
    // The same users, all known and active, are taken.
    expect((await create(t.key, { channels: ['in_app'], recipients: { users: [t.ada.id, t.admin.id, t.ada.id] } }).expect(201)).body.recipients.users.sort()).toEqual([t.ada.id, t.admin.id].sort());
    const { key: reader } = await buildCaller(['reminders.read'], t.tenant);
    expect((await create(reader).expect(403)).body.code).toBe('PERMISSION_DENIED');
  });

  it('returns the same reminder for a repeated Idempotency-Key', async () => {
    const t = await team();
    const body = { subject: 'Once', channels: ['email'], recipients: { emails: ['a@example.com'] }, dueAt: inDays(1) };
    const first = await app.call('post', '/v1/reminders', t.key).set('Idempotency-Key', 'rem-1').send(body).expect(201);
    const again = await app.call('post', '/v1/reminders', t.key).set('Idempotency-Key', 'rem-1').send(body).expect(201);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers['idempotent-replayed']).toBe('true');
  });

  it('lists by status, object, due range and recipient; another tenant sees nothing', async () => {
    const t = await team();
    const a = (await create(t.key, { object: { type: 'contract', id: 'C-1' }, dueAt: inDays(1), channels: ['email', 'in_app'], recipients: { users: [t.ada.id] } }).expect(201)).body;
    const b = (await create(t.key, { dueAt: inDays(10), recipients: { emails: ['Finance@Example.com'] } }).expect(201)).body;
    const c = (await create(t.key, { dueAt: inDays(20) }).expect(201)).body;
    await app.call('post', `/v1/reminders/${c.id}/cancel`, t.key).expect(200);
    const ids = async (q: string) => (await app.call('get', `/v1/reminders${q}`, t.key).expect(200)).body.items.map((r: { id: string }) => r.id);
    expect(await ids('?status=cancelled')).toEqual([c.id]);
    expect(await ids('?objectType=contract&objectId=C-1')).toEqual([a.id]);
    expect(await ids(`?recipient=${t.ada.id}`)).toEqual([a.id]);
    expect(await ids('?recipient=finance@example.com')).toEqual([b.id]);
    expect(await ids(`?dueFrom=${encodeURIComponent(inDays(5))}&dueTo=${encodeURIComponent(inDays(15))}`)).toEqual([b.id]);
    const page1 = (await app.call('get', '/v1/reminders?limit=2', t.key).expect(200)).body;
    expect(page1.items).toHaveLength(2);
    const page2 = (await app.call('get', `/v1/reminders?limit=2&cursor=${page1.nextCursor}`, t.key).expect(200)).body;
    expect(page2.items.map((r: { id: string }) => r.id)).toEqual([a.id]);
    await app.call('get', '/v1/reminders?status=sleeping', t.key).expect(400);
    const stranger = await buildCaller(['*']);
    expect((await app.call('get', `/v1/reminders/${a.id}`, stranger.key).expect(404)).body.code).toBe('NOT_FOUND');
    await app.call('get', `/v1/reminders/${a.id}/preview`, stranger.key).expect(404);
    await app.call('get', `/v1/reminders/${a.id}/deliveries`, stranger.key).expect(404);
    expect((await app.call('get', '/v1/reminders', stranger.key).expect(200)).body.items).toEqual([]);
  });

  it('refuses a recipient filter that is neither a user id nor an email address with 400, never a 500', async () => {
    const t = await team();
    const a = (await create(t.key, { channels: ['in_app'], recipients: { users: [t.ada.id] } }).expect(201)).body;
    // Shaped like a UUID (36 of [0-9a-f-]) without being one: Postgres would refuse it against the uuid[] column.
    for (const recipient of ['-'.repeat(36), 'a'.repeat(36), `${t.ada.id.slice(0, 35)}-`, 'ada', `urn:uuid:${t.ada.id}`]) {
      const res = await app.call('get', `/v1/reminders?recipient=${encodeURIComponent(recipient)}`, t.key).expect(400);
      expect([recipient, res.body.code, res.body.errors]).toEqual([recipient, 'VALIDATION_FAILED', [{ path: '/query/recipient', message: expect.any(String) }]]);
    }
    const ids = async (q: string) => (await app.call('get', `/v1/reminders${q}`, t.key).expect(200)).body.items.map((r: { id: string }) => r.id);
    expect(await ids(`?recipient=${t.ada.id.toUpperCase()}`)).toEqual([a.id]);
    expect(await ids(`?recipient=${t.admin.id}`)).toEqual([]);
    expect(await ids(`?recipient=${encodeURIComponent(t.ada.email)}`)).toEqual([]);
  });
});

describe('my notifications', () => {
  it('lists unread first, marks one read and then all read; another user\'s notification is not mine', async () => {
    const t = await team();
    for (const subject of ['first', 'second', 'third']) {
      await createDueNow(t.key, { subject, channels: ['in_app'], recipients: { users: [t.ada.id] } });
    }
    const list = await waitFor(async () => {
      const body = (await app.call('get', '/v1/me/notifications', t.adaKey).expect(200)).body;
      return body.items.length === 3 && body;
    }, { what: 'three notifications' });
    expect(list.unreadCount).toBe(3);
    const oldest = list.items.find((n: { subject: string }) => n.subject === 'first');
    const marked = (await app.call('post', `/v1/me/notifications/${oldest.id}/read`, t.adaKey).expect(200)).body;
    expect(marked).toMatchObject({ read: true });
    await app.call('post', `/v1/me/notifications/${oldest.id}/read`, t.adaKey).expect(200);
    const after = (await app.call('get', '/v1/me/notifications', t.adaKey).expect(200)).body;
    expect(after.unreadCount).toBe(2);
    expect(after.items.map((n: { read: boolean }) => n.read)).toEqual([false, false, true]);
    expect((await app.call('get', '/v1/me/notifications?unread=true', t.adaKey).expect(200)).body.items).toHaveLength(2);
    expect((await app.call('post', `/v1/me/notifications/${oldest.id}/read`, t.key).expect(404)).body.code).toBe('NOT_FOUND');
    expect((await app.call('post', '/v1/me/notifications/read-all', t.adaKey).expect(200)).body).toEqual({ marked: 2 });
    expect((await app.call('get', '/v1/me/notifications', t.adaKey).expect(200)).body.unreadCount).toBe(0);
    await app.call('post', '/v1/me/notifications/nope/read', t.adaKey).expect(400);
    await app.call('get', '/v1/me/notifications').expect(401);
  });
});
