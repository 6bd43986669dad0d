// Reminders, delivery attempts and in-app notifications → API JSON (webhook secrets never leave).
import type { DeliveryAttempt } from '../../db/models/deliveries';
import type { Notification, Reminder } from '../../db/models/reminders';
import type { Schemas } from '../schemas';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const objectOf = (type: string | null, id: string | null) => (type && id ? { type, id } : null);

export const presentReminder = (r: Reminder): Schemas['Reminder'] => ({
  id: r.id, subject: r.subject, message: r.message, object: objectOf(r.objectType, r.objectId),
  recipients: { users: r.recipients.users, emails: r.recipients.emails, webhooks: r.recipients.webhooks.map((w) => ({ url: w.url })) },
  channels: r.channels, dueAt: iso(r.dueAt), recurrence: r.recurrence, offsets: r.offsets, repeat: r.repeat, status: r.status,
  nextTriggerAt: iso(r.nextTriggerAt), currentOccurrence: iso(r.currentOccurrence), snoozedUntil: iso(r.snoozedUntil),
  occurrenceCount: r.occurrenceCount, acknowledgedAt: iso(r.acknowledgedAt), workflowId: r.workflowId,
  createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString(),
});

/** A reminder's attempt, from the delivery ledger (its occurrence and trigger are in the attempt's detail). */
export const presentReminderDelivery = (a: DeliveryAttempt): Schemas['ReminderDelivery'] => ({
  id: String(a.id), occurrence: new Date(a.detail!.occurrence as string).toISOString(), trigger: a.detail!.trigger as string, channel: a.channel, recipient: a.recipient,
  attempt: a.attempt, status: a.status, error: a.error, at: a.at.toISOString(),
});

export const presentNotification = (n: Notification): Schemas['Notification'] => ({
  id: n.id, subject: n.subject, message: n.message, object: objectOf(n.objectType, n.objectId), sourceType: n.sourceType,
  sourceId: n.sourceId, read: n.read, readAt: iso(n.readAt), createdAt: n.createdAt.toISOString(),
});
