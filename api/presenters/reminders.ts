// Reminders, delivery attempts, notifications, job schedules and runs → API JSON (webhook secrets never leave).
import { DeliveryAttempt, JobRun, JobSchedule, Notification, Reminder } from '../../db';
import { Schemas } from '../schemas';

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

export const presentJobSchedule = (s: JobSchedule, nextRunTimes?: Date[]): Schemas['JobSchedule'] => ({
  id: s.id, name: s.name, jobType: s.jobType, params: s.params, cron: s.cron, runAt: iso(s.runAt), timezone: s.timezone, paused: s.paused,
  overlapPolicy: s.overlapPolicy, catchupWindowSeconds: s.catchupWindowSeconds, retry: s.retry, temporalScheduleId: s.temporalScheduleId,
  ...(nextRunTimes ? { nextRunTimes: nextRunTimes.map((d) => d.toISOString()) } : {}),
  createdAt: s.createdAt.toISOString(), updatedAt: s.updatedAt.toISOString(),
});

export const presentJobRun = (r: JobRun): Schemas['JobRun'] => ({
  id: r.id, scheduleId: r.scheduleId, jobType: r.jobType, status: r.status, startedAt: r.startedAt.toISOString(), finishedAt: iso(r.finishedAt),
  durationMs: r.durationMs, error: r.error, result: r.result, workflowId: r.workflowId,
});
