// The reminder activities alone, against Postgres: an in-app delivery writes its delivery row, the
// notification and the attempt log together, once per natural key however often it is retried, and a
// recipient who is gone is refused for good with the failed attempt logged; a command's audit event is
// written with the state it produced, or not at all.
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createReminderActivities } from '../../activities/reminders';
import { AuditEvent, createSequelize, Delivery, DeliveryAttempt, DomainEvent, Notification, Reminder } from '../../db';
import { FINAL_DELIVERY_ERRORS, type DeliveryRef, type ReminderState } from '../../workflows/reminders.api';
import { buildTenant, buildUser } from '../helpers/factories';

const sequelize = createSequelize(process.env.DATABASE_URL!);
const activities = createReminderActivities({ email: { send: async () => ({ messageId: 'unused' }), close: async () => {} } });
afterAll(() => sequelize.close());

async function reminderFor(opts: { active?: boolean } = {}) {
  const tenant = await buildTenant();
  const user = await buildUser(tenant, { email: `u-${randomUUID().slice(0, 8)}@example.com`, active: opts.active ?? true });
  const id = randomUUID();
  const dueAt = new Date('2026-12-01T09:00:00Z');
  await Reminder.create({
    id, tenantId: tenant.id, subject: 'Renew the lease', message: 'Before Friday', objectType: 'contract', objectId: 'C-9', channels: ['in_app'],
    recipients: { users: [user.id], emails: [], webhooks: [] }, recipientUsers: [user.id], recipientEmails: [], dueAt, recurrence: null, offsets: [0], repeat: null,
    status: 'active', nextTriggerAt: dueAt, currentOccurrence: dueAt, snoozedUntil: null, acknowledgedAt: null,
    state: {} as Reminder['state'], stateVersion: 0, workflowId: `reminders:${tenant.id}:${id}`, createdBy: null,
  });
  const ref: DeliveryRef = { tenantId: tenant.id, reminderId: id, occurrence: dueAt.toISOString(), trigger: 'offset:0', channel: 'in_app', recipient: `user:${user.id}` };
  return { ref, user };
}

const deliver = (ref: DeliveryRef, attempt = 1) => new MockActivityEnvironment({ attempt }).run(activities.deliverReminder, ref);

it('an in-app delivery writes the notification, its sent delivery row and its attempt once, however often it is retried', async () => {
  const { ref, user } = await reminderFor();
  expect(await deliver(ref)).toBe('sent');
  expect(await deliver(ref, 2)).toBe('already_sent');

  const notes = await Notification.findAll({ where: { sourceId: ref.reminderId } });
  expect(notes.map((n) => ({ userId: n.userId, subject: n.subject, message: n.message, objectType: n.objectType, objectId: n.objectId, read: n.read })))
    .toEqual([{ userId: user.id, subject: 'Renew the lease', message: 'Before Friday', objectType: 'contract', objectId: 'C-9', read: false }]);
  const rows = await Delivery.findAll({ where: { subjectId: ref.reminderId } });
  expect(rows.map((r) => ({ status: r.status, attempts: r.attempts, channel: r.channel, key: r.key }))).toEqual([{ status: 'sent', attempts: 1, channel: 'in_app', key: notes[0].deliveryKey }]);
  const attempts = await DeliveryAttempt.findAll({ where: { subjectType: 'reminder', subjectId: ref.reminderId } });
  expect(attempts.map((a) => ({ status: a.status, attempt: a.attempt, recipient: a.recipient, trigger: a.detail!.trigger, occurrenceAt: a.detail!.occurrence })))
    .toEqual([{ status: 'sent', attempt: 1, recipient: user.id, trigger: 'offset:0', occurrenceAt: ref.occurrence }]);
  // Written together (one statement): the notification, the delivery row and the log carry one time.
  expect(new Set([notes[0].createdAt, rows[0].updatedAt, attempts[0].at].map((d) => d.getTime())).size).toBe(1);
});

it('a pending delivery row left by an earlier failed attempt is completed, not duplicated', async () => {
  const { ref } = await reminderFor();
  const key = `reminders:${ref.reminderId}:${ref.occurrence}:${ref.trigger}:${ref.channel}:${ref.recipient}`;
  await Delivery.create({ key, tenantId: ref.tenantId, channel: 'in_app', recipient: ref.recipient, subjectType: 'reminder', subjectId: ref.reminderId, status: 'pending', attempts: 1, error: 'boom', providerId: null });
  expect(await deliver(ref, 2)).toBe('sent');
  const row = (await Delivery.findByPk(key))!;
  expect({ status: row.status, attempts: row.attempts, error: row.error }).toEqual({ status: 'sent', attempts: 2, error: null });
  expect(await Notification.count({ where: { sourceId: ref.reminderId } })).toBe(1);
});

/** How Temporal will treat what the activity threw, under the workflow's delivery retry policy. */
function retried(err: unknown): boolean {
  if (err instanceof ApplicationFailure && err.nonRetryable) return false;
  const type = err instanceof ApplicationFailure ? err.type : (err as Error).name;
  return !FINAL_DELIVERY_ERRORS.includes(type ?? '');
}

it('an inactive recipient is refused for good, nothing is delivered and the failed attempt is logged', async () => {
  const { ref } = await reminderFor({ active: false });
  const err = await deliver(ref).catch((e: unknown) => e);
  expect(err).toMatchObject({ message: expect.stringMatching(/does not exist or is inactive/) });
  expect(retried(err)).toBe(false);
  expect(await Notification.count({ where: { sourceId: ref.reminderId } })).toBe(0);
  expect((await DeliveryAttempt.findAll({ where: { subjectType: 'reminder', subjectId: ref.reminderId } })).map((a) => a.status)).toEqual(['failed']);
});

it('a reminder whose row is not visible yet is retried, not refused', async () => {
  const { ref } = await reminderFor();
  const err = await deliver({ ...ref, reminderId: randomUUID() }).catch((e: unknown) => e);
  expect(err).toMatchObject({ message: expect.stringMatching(/has no row \(yet\)/) });
  expect(retried(err)).toBe(true);
});

describe('a command is audited with the state it produced', () => {
  const by = (requestId: string) => ({ actor: { type: 'user' as const, id: 'u-1' }, requestId });
  async function pausedState(ref: DeliveryRef) {
    const r = (await Reminder.findByPk(ref.reminderId))!;
    const state: ReminderState = {
      status: 'paused', schedule: { dueAt: r.dueAt!.toISOString() }, occurrence: ref.occurrence, lastOccurrence: null, handled: [], snoozedUntil: null,
      notBefore: new Date().toISOString(), nextTriggerAt: null, occurrenceCount: 0, acknowledgedAt: null, version: 1,
    };
    return state;
  }
  const persist = (i: Parameters<typeof activities.persistReminder>[0]) => new MockActivityEnvironment().run(activities.persistReminder, i) as Promise<DeliveryRef[]>;
  const eventsOf = (id: string) => AuditEvent.findAll({ where: { entityType: 'reminder', entityId: id } });

  it('writes the event in the write of the state, once however often the write is retried', async () => {
    const { ref } = await reminderFor();
    const state = await pausedState(ref);
    const write = { tenantId: ref.tenantId, reminderId: ref.reminderId, state, audits: [{ action: 'reminders.reminder.paused' as const, by: by('req-1'), version: 1, before: { status: 'active' as const } }] };
    await persist(write);
    await persist(write); // a retry after a crash that came after the commit
    expect((await Reminder.findByPk(ref.reminderId))!.status).toBe('paused');
    const events = await eventsOf(ref.reminderId);
    expect(events.map((e) => ({ action: e.action, actorId: e.actorId, requestId: e.requestId, before: e.before, status: (e.after as { status: string }).status })))
      .toEqual([{ action: 'reminders.reminder.paused', actorId: 'u-1', requestId: 'req-1', before: { status: 'active' }, status: 'paused' }]);
  });

  it('writes neither the state nor the event when the event cannot be written', async () => {
    const { ref } = await reminderFor();
    const state = await pausedState(ref);
    // A request id longer than its column: the event's insert fails, and the state's update goes with it.
    await expect(persist({ tenantId: ref.tenantId, reminderId: ref.reminderId, state, audits: [{ action: 'reminders.reminder.paused', by: by('r'.repeat(101)), version: 1, before: {} }] })).rejects.toThrow();
    const r = (await Reminder.findByPk(ref.reminderId))!;
    expect({ status: r.status, stateVersion: r.stateVersion }).toEqual({ status: 'active', stateVersion: 0 });
    expect(await eventsOf(ref.reminderId)).toHaveLength(0);
  });
});

describe('a firing is written with the state that records it', () => {
  const persist = (i: Parameters<typeof activities.persistReminder>[0]) => new MockActivityEnvironment().run(activities.persistReminder, i) as Promise<DeliveryRef[]>;
  const completed = (ref: DeliveryRef, version: number): ReminderState => ({
    status: 'completed', schedule: { dueAt: ref.occurrence }, occurrence: null, lastOccurrence: ref.occurrence, handled: [], snoozedUntil: null,
    notBefore: ref.occurrence, nextTriggerAt: null, occurrenceCount: 1, acknowledgedAt: null, version,
  });

  it('writes the state, reminder.fired with what the reminder says, and the completion once, however often it is retried; an older state changes nothing', async () => {
    const { ref } = await reminderFor();
    const write = { tenantId: ref.tenantId, reminderId: ref.reminderId, state: completed(ref, 3), fired: [{ occurrence: ref.occurrence, trigger: ref.trigger }] };
    await persist(write);
    await persist(write); // a retry after a crash that came after the commit
    // An attempt that lost its way and lands after the newer write: the row keeps the newer state.
    await persist({ ...write, state: { ...completed(ref, 2), status: 'active', occurrenceCount: 0 } });
    const r = (await Reminder.findByPk(ref.reminderId))!;
    expect({ status: r.status, stateVersion: r.stateVersion, occurrenceCount: r.occurrenceCount, nextTriggerAt: r.nextTriggerAt, currentOccurrence: r.currentOccurrence })
      .toEqual({ status: 'completed', stateVersion: 3, occurrenceCount: 1, nextTriggerAt: null, currentOccurrence: null });
    const events = await DomainEvent.findAll({ where: { subjectType: 'reminder', subjectId: ref.reminderId } });
    expect(events.map((e) => ({ type: e.type, tenantId: e.tenantId, data: e.data }))).toEqual([{
      type: 'reminder.fired', tenantId: ref.tenantId,
      data: { reminderId: ref.reminderId, occurrence: ref.occurrence, trigger: ref.trigger, subject: 'Renew the lease', message: 'Before Friday', object: { type: 'contract', id: 'C-9' } },
    }]);
    expect((await AuditEvent.findAll({ where: { entityType: 'reminder', entityId: ref.reminderId } })).map((e) => [e.action, e.actorType]))
      .toEqual([['reminders.reminder.completed', 'system']]);
  });

  it('a last firing\'s in-app deliveries go with the write; one that cannot be delivered at once is answered back and nothing is written', async () => {
    const { ref, user } = await reminderFor();
    const write = { tenantId: ref.tenantId, reminderId: ref.reminderId, state: completed(ref, 3), fired: [{ occurrence: ref.occurrence, trigger: ref.trigger }], deliverInApp: [ref] };
    expect(await persist(write)).toEqual([]);
    expect((await Notification.findAll({ where: { sourceId: ref.reminderId } })).map((n) => n.userId)).toEqual([user.id]);
    expect((await Reminder.findByPk(ref.reminderId))!.status).toBe('completed');

    const other = await reminderFor({ active: false });
    const gone = { ...write, tenantId: other.ref.tenantId, reminderId: other.ref.reminderId, deliverInApp: [other.ref] };
    expect(await persist(gone)).toEqual([other.ref]);
    expect(await Notification.count({ where: { sourceId: other.ref.reminderId } })).toBe(0);
    const r = (await Reminder.findByPk(other.ref.reminderId))!;
    expect({ status: r.status, stateVersion: r.stateVersion }).toEqual({ status: 'active', stateVersion: 0 });
    expect(await DomainEvent.count({ where: { subjectType: 'reminder', subjectId: other.ref.reminderId } })).toBe(0);
  });

  it('a reminder without a row writes nothing and is retried', async () => {
    const { ref } = await reminderFor();
    const missing = { ...ref, reminderId: randomUUID() };
    const err = await persist({ tenantId: ref.tenantId, reminderId: missing.reminderId, state: completed(missing, 1), fired: [{ occurrence: ref.occurrence, trigger: ref.trigger }] }).catch((e: unknown) => e);
    // events.data refuses the firing's event without the reminder's words; the audit event of its completion rolls back with it.
    expect(err).toMatchObject({ message: expect.stringMatching(/null value in column "data"/) });
    expect(retried(err)).toBe(true);
    expect(await AuditEvent.count({ where: { entityType: 'reminder', entityId: missing.reminderId } })).toBe(0);
    expect(await DomainEvent.count({ where: { subjectType: 'reminder', subjectId: missing.reminderId } })).toBe(0);
  });
});
