// Reminder activities: expand recurrences, persist the read model, and deliver one (channel,
// recipient) per activity — idempotent per natural key, every attempt logged.
import { createHash, randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { Op, QueryTypes } from 'sequelize';
import { NotificationDelivery } from '../db/models/approvals';
import { User } from '../db/models/identity';
import { Notification, Reminder, ReminderDeliveryAttempt } from '../db/models/reminders';
import { recordAudit } from '../lib/audit';
import type { EmailSender } from '../lib/notify/email';
import { sendWebhook } from '../lib/notify/webhook';
import { openSecret } from '../lib/secrets';
import { isUuid } from '../lib/uuid';
import { nextOccurrence, Recurrence, RecurrenceError } from '../lib/recurrence';
import type { DeliveryRef, ReminderState } from '../workflows/reminders.api';

export interface ReminderActivityDeps {
  email: EmailSender;
  /** Opens the webhook secrets the API stored sealed. */
  secretsKey: Buffer;
  webhookTimeoutMs?: number;
  allowPrivateNetworks: boolean;
}

/** The recipient no longer exists (user deleted or deactivated): retrying cannot help. */
export class RecipientGoneError extends Error {
  override readonly name = 'RecipientGoneError';
}

/** One row per (reminder, occurrence, trigger, channel, recipient); long keys are hashed to fit. */
export function reminderDeliveryKey(ref: DeliveryRef): string {
  const key = `reminders:${ref.reminderId}:${ref.occurrence}:${ref.trigger}:${ref.channel}:${ref.recipient}`;
  return key.length <= 400 ? key : `reminders:${ref.reminderId}:${createHash('sha256').update(key).digest('hex')}`;
}

const when = (iso: string) => new Date(iso).toUTCString();

/**
 * An in-app delivery — the delivery row (sent), the notification and the attempt log — in ONE statement,
 * when the reminder row is there, the user is active and the delivery was not sent yet. Firing lateness
 * is what this path costs: one round trip instead of about nine (find the reminder, find-or-create the
 * delivery in its transaction, find the user, insert, update, log), and the three rows commit together.
 * Answers false when it wrote nothing; the general path then finds out why (not visible yet, recipient
 * gone, already sent) and answers as it always did. The natural keys (delivery key, the notification's
 * delivery_key) keep it idempotent: a retry after a crash sends nothing twice.
 */
async function deliverInAppAtOnce(ref: DeliveryRef, key: string, attempt: number): Promise<boolean> {
  const userId = ref.recipient.startsWith('user:') ? ref.recipient.slice(5) : '';
  if (!isUuid(userId) || !isUuid(ref.reminderId)) return false;
  const rows = await Reminder.sequelize!.query<{ n: number }>(`
    WITH src AS (
      SELECT r.subject, r.message, r.object_type, r.object_id, u.id AS user_id FROM reminders r
      JOIN users u ON u.id = $4::uuid AND u.tenant_id = r.tenant_id AND u.active
      WHERE r.id = $2::uuid AND r.tenant_id = $1::uuid),
    d AS (
      INSERT INTO notification_deliveries (key, tenant_id, channel, recipient, subject_type, subject_id, status, attempts, error, provider_id, created_at, updated_at)
      SELECT $3, $1::uuid, 'in_app', $5, 'reminder', $2, 'sent', 1, NULL, NULL, $8::timestamptz, $8::timestamptz FROM src
      ON CONFLICT (key) DO UPDATE SET status = 'sent', attempts = notification_deliveries.attempts + 1, error = NULL, updated_at = EXCLUDED.updated_at
        WHERE notification_deliveries.status <> 'sent'
      RETURNING key),
    n AS (
      INSERT INTO notifications (id, tenant_id, user_id, delivery_key, source_type, source_id, subject, message, object_type, object_id, read, read_at, created_at)
      SELECT $9::uuid, $1::uuid, src.user_id, d.key, 'reminder', $2, src.subject, src.message, src.object_type, src.object_id, false, NULL, $8::timestamptz FROM src, d
      ON CONFLICT (delivery_key) DO NOTHING),
    a AS (
      INSERT INTO reminder_delivery_attempts (tenant_id, reminder_id, delivery_key, occurrence_at, trigger, channel, recipient, attempt, status, error, at)
      SELECT $1::uuid, $2::uuid, d.key, $6::timestamptz, $7, 'in_app', $4, $10::int, 'sent', NULL, $8::timestamptz FROM d)
    SELECT count(*)::int AS n FROM d`, {
    bind: [ref.tenantId, ref.reminderId, key, userId, ref.recipient.slice(0, 320), new Date(ref.occurrence), ref.trigger, new Date(), randomUUID(), attempt],
    type: QueryTypes.SELECT,
  });
  return rows[0].n === 1;
}

export function createReminderActivities(deps: ReminderActivityDeps) {
  async function target(reminder: Reminder, ref: DeliveryRef): Promise<{ display: string; user?: User; url?: string; secret?: string; email?: string }> {
    const [kind, value] = [ref.recipient.slice(0, ref.recipient.indexOf(':')), ref.recipient.slice(ref.recipient.indexOf(':') + 1)];
    if (kind === 'user') {
      const user = await User.findOne({ where: { id: value, tenantId: ref.tenantId, active: true } });
      if (!user) throw new RecipientGoneError(`user ${value} does not exist or is inactive`);
      return { display: ref.channel === 'email' ? user.email : user.id, user, email: user.email };
    }
    if (kind === 'email') return { display: value, email: value };
    const hook = reminder.recipients.webhooks[Number(value)];
    if (!hook) throw new RecipientGoneError(`webhook ${value} is no longer configured`);
    return { display: hook.url, url: hook.url, secret: openSecret(hook.secret, deps.secretsKey) };
  }

  return {
    /** The next occurrence; none (the reminder completes) when the rule has ended or the next one is beyond the search caps. */
    async nextOccurrence(i: { recurrence: Recurrence; after: string }): Promise<string | null> {
      try {
        return nextOccurrence(i.recurrence, new Date(i.after))?.toISOString() ?? null;
      } catch (err) {
        // The API refused rules without an occurrence, so this is a rule whose next occurrence is further away than
        // RECURRENCE_LIMITS lets a search go: retrying would only search as far again.
        if (err instanceof RecurrenceError) return null;
        throw err;
      }
    },

    /** Writes the newest state (an older version never overwrites a newer one). */
    async persistReminder(i: { tenantId: string; reminderId: string; state: ReminderState }): Promise<void> {
      const s = i.state;
      const date = (v: string | null) => (v ? new Date(v) : null);
      const [changed] = await Reminder.update({
        status: s.status, nextTriggerAt: date(s.nextTriggerAt), currentOccurrence: date(s.occurrence), snoozedUntil: date(s.snoozedUntil),
        occurrenceCount: s.occurrenceCount, acknowledgedAt: date(s.acknowledgedAt), state: s, stateVersion: s.version,
        dueAt: date(s.schedule.dueAt ?? null), recurrence: s.schedule.recurrence ?? null,
      }, { where: { id: i.reminderId, tenantId: i.tenantId, stateVersion: { [Op.lte]: s.version } } });
      // A row that is not there (yet) is retried rather than silently not written.
      if (!changed && !(await Reminder.count({ where: { id: i.reminderId, tenantId: i.tenantId } }))) throw new Error(`reminder ${i.reminderId} has no row (yet)`);
      if (changed && s.status === 'completed') {
        await recordAudit({
          tenantId: i.tenantId, actor: { type: 'system', id: null }, action: 'reminders.reminder.completed', entityType: 'reminder',
          entityId: i.reminderId, after: { status: s.status, occurrenceCount: s.occurrenceCount }, eventKey: `reminders:${i.reminderId}:completed`,
        });
      }
    },

    /** Sends one delivery unless it was sent already (a retry or a replay never sends twice). */
    async deliverReminder(ref: DeliveryRef): Promise<'sent' | 'already_sent'> {
      const key = reminderDeliveryKey(ref);
      const attempt = Context.current().info.attempt;
      if (ref.channel === 'in_app' && await deliverInAppAtOnce(ref, key, attempt)) return 'sent';
      const reminder = await Reminder.findOne({ where: { id: ref.reminderId, tenantId: ref.tenantId } });
      // Retried, not final: the row may not be visible yet (see persistReminder).
      if (!reminder) throw new Error(`reminder ${ref.reminderId} has no row (yet)`);
      const [delivery] = await NotificationDelivery.findOrCreate({
        where: { key },
        defaults: { key, tenantId: ref.tenantId, channel: ref.channel, recipient: ref.recipient.slice(0, 320), subjectType: 'reminder', subjectId: ref.reminderId, status: 'pending', error: null, providerId: null },
      });
      if (delivery.status === 'sent') return 'already_sent';
      const log = (status: 'sent' | 'failed', display: string, error: string | null) => ReminderDeliveryAttempt.create({
        tenantId: ref.tenantId, reminderId: ref.reminderId, deliveryKey: key, occurrenceAt: new Date(ref.occurrence), trigger: ref.trigger,
        channel: ref.channel, recipient: display.slice(0, 1000), attempt, status, error, at: new Date(),
      });
      let display = ref.recipient;
      try {
        const to = await target(reminder, ref);
        display = to.display;
        let providerId: string | null = null;
        const object = reminder.objectType ? { type: reminder.objectType, id: reminder.objectId } : null;
        if (ref.channel === 'email') {
          const text = [reminder.message, '', `When: ${when(ref.occurrence)}`, ...(object ? [`About: ${object.type} ${object.id}`] : [])].join('\n');
          providerId = (await deps.email.send({ to: to.email!, subject: `Reminder: ${reminder.subject}`, text, idempotencyKey: key })).messageId;
        } else if (ref.channel === 'webhook') {
          const body = {
            type: 'reminder.triggered', deliveryId: key, occurrence: ref.occurrence, trigger: ref.trigger, sentAt: new Date().toISOString(),
            reminder: { id: reminder.id, subject: reminder.subject, message: reminder.message, object },
          };
          const res = await sendWebhook({ url: to.url!, secret: to.secret!, body, deliveryId: key, timeoutMs: deps.webhookTimeoutMs, allowPrivateNetworks: deps.allowPrivateNetworks }, Context.current().cancellationSignal);
          providerId = `HTTP ${res.status}`;
        } else {
          await Notification.bulkCreate([{
            id: randomUUID(), tenantId: ref.tenantId, userId: to.user!.id, deliveryKey: key, sourceType: 'reminder', sourceId: reminder.id,
            subject: reminder.subject, message: reminder.message, objectType: reminder.objectType, objectId: reminder.objectId, readAt: null,
          }], { ignoreDuplicates: true });
        }
        await delivery.update({ status: 'sent', providerId, attempts: delivery.attempts + 1, error: null });
        await log('sent', display, null);
        return 'sent';
      } catch (err) {
        const message = (err as Error).message.slice(0, 1000);
        await delivery.update({ attempts: delivery.attempts + 1, error: message });
        await log('failed', display, message);
        throw err;
      }
    },

    /** The workflow gave up on a delivery (retries exhausted or a final refusal): the row says so. */
    async recordDeliveryFailure(i: DeliveryRef & { error: string }): Promise<void> {
      await NotificationDelivery.update({ status: 'failed', error: i.error.slice(0, 1000) }, { where: { key: reminderDeliveryKey(i), status: { [Op.ne]: 'sent' } } });
    },
  };
}

export type ReminderActivities = ReturnType<typeof createReminderActivities>;
