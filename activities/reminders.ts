// Reminder activities: expand recurrences, persist the read model, and deliver one (channel,
// recipient) per activity — through the delivery ledger, idempotent per natural key, every attempt logged.
// Webhooks are the webhook relay's (the reminder's endpoints, 0024): a webhook delivery is handed over to it.
import { createHash, randomUUID } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { QueryTypes } from 'sequelize';
import { User } from '../db/models/identity';
import { Notification, Reminder } from '../db/models/reminders';
import { AuditInput, auditCtes } from '../lib/audit';
import { countedFailure } from '../lib/activity-retries';
import { claimDeliveries, giveUpDeliveries, recordDeliveryOutcomes } from '../lib/notify/deliveries';
import type { EmailSender } from '../lib/notify/email';
import { acquireOne, sharedSendLimiter, type SendLease, type SendLimiter } from '../lib/send-limiter';
import { type RelaySettings, signalRelay } from '../domains/webhooks/relay';
import { isUuid } from '../lib/uuid';
import { nextOccurrence, Recurrence, RecurrenceError } from '../lib/recurrence';
import { type DeliveryRef, type ReminderAudit, type ReminderState, REMINDERS_DOMAIN } from '../workflows/reminders.api';
import { businessWorkflowId } from '../workflows/search-attributes';

export interface ReminderActivityDeps {
  email: EmailSender;
  /** The tenants' send limits, shared with campaigns (made on the models' connection if absent). */
  sendLimiter?: SendLimiter;
  /** How the webhook relay runs, to wake it when a reminder's webhook is due (none: the API's wake at creation only). */
  webhookRelay?: RelaySettings;
}

/**
 * How long an email to an outside address waits for room in its tenant's send limit before its attempt is retried:
 * short, as a waiting delivery holds one of the worker's activity slots (other tenants' reminders need them) and the
 * wait counts toward the attempt's 30 s, with the SMTP exchange after it.
 */
export const REMINDER_SEND_WAIT_MS = 3_000;
/** The attempts a reminder's delivery gets for errors that are not outages (those found no room in the send limit are none). */
export const DELIVERY_ATTEMPTS = 8;
/** The type of the (retryable) failure of a delivery that found no room in the send limit: not a failed attempt. */
export const SEND_LIMITED = 'SEND_LIMITED';

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

/** What a reminder's attempt log shows besides the ledger's columns (GET /v1/reminders/{id}/deliveries). */
const attemptDetail = (ref: DeliveryRef) => ({ occurrence: ref.occurrence, trigger: ref.trigger });

/**
 * An in-app delivery — the ledger's delivery row (sent) and attempt row, and the notification — in ONE statement,
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
      INSERT INTO deliveries (key, tenant_id, channel, recipient, subject_type, subject_id, status, attempts, error, provider_id, last_attempt_at, created_at, updated_at)
      SELECT $3, $1::uuid, 'in_app', $5, 'reminder', $2, 'sent', 1, NULL, NULL, $8::timestamptz, $8::timestamptz, $8::timestamptz FROM src
      ON CONFLICT (key) DO UPDATE SET status = 'sent', attempts = deliveries.attempts + 1, error = NULL, last_attempt_at = EXCLUDED.updated_at, updated_at = EXCLUDED.updated_at
        WHERE deliveries.status <> 'sent'
      RETURNING key),
    n AS (
      INSERT INTO notifications (id, tenant_id, user_id, delivery_key, source_type, source_id, subject, message, object_type, object_id, read, read_at, created_at)
      SELECT $9::uuid, $1::uuid, src.user_id, d.key, 'reminder', $2, src.subject, src.message, src.object_type, src.object_id, false, NULL, $8::timestamptz FROM src, d
      ON CONFLICT (delivery_key) DO NOTHING),
    a AS (
      INSERT INTO delivery_attempts (tenant_id, delivery_key, subject_type, subject_id, channel, recipient, attempt, status, error, detail, at)
      SELECT $1::uuid, d.key, 'reminder', $2, 'in_app', $4, $7::int, 'sent', NULL, $6::jsonb, $8::timestamptz FROM d)
    SELECT count(*)::int AS n FROM d`, {
    bind: [ref.tenantId, ref.reminderId, key, userId, ref.recipient.slice(0, 320), JSON.stringify(attemptDetail(ref)), attempt, new Date(), randomUUID()],
    type: QueryTypes.SELECT,
  });
  return rows[0].n === 1;
}

export function createReminderActivities(deps: ReminderActivityDeps) {
  // The process's one limiter (sharedSendLimiter keeps it per pool), unless the caller gave one.
  const limiterOf = () => deps.sendLimiter ?? sharedSendLimiter(Reminder.sequelize!);
  async function target(ref: DeliveryRef): Promise<{ display: string; user?: User; email?: string }> {
    const [kind, value] = [ref.recipient.slice(0, ref.recipient.indexOf(':')), ref.recipient.slice(ref.recipient.indexOf(':') + 1)];
    if (kind === 'user') {
      const user = await User.findOne({ where: { id: value, tenantId: ref.tenantId, active: true } });
      if (!user) throw new RecipientGoneError(`user ${value} does not exist or is inactive`);
      return { display: ref.channel === 'email' ? user.email : user.id, user, email: user.email };
    }
    return { display: value, email: value };
  }

  /**
   * A webhook delivery is the relay's: it reads the reminder.fired event persistReminder wrote with this firing and
   * delivers it to the reminder's endpoints (Standard Webhooks, retried for days, logged — GET
   * /v1/reminders/{id}/webhook-deliveries) — to the endpoints the reminder has then, however many (its webhooks may have
   * been replaced since the workflow started: `webhook:<i>` refs only say that it delivers by webhook). Here the relay
   * is only woken, so nothing is POSTed twice, and the ledger keeps no row of it.
   */
  async function handOverWebhook(ref: DeliveryRef): Promise<'sent'> {
    if (deps.webhookRelay) await signalRelay(Context.current().client, ref.tenantId, deps.webhookRelay);
    return 'sent';
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

    /**
     * Writes the newest state (an older version never overwrites a newer one) and, in the same statement, the audit
     * events of the commands that produced it and of the reminder's completion, and the reminder.fired events of the
     * triggers it records. With `deliverInApp` (a last firing's in-app deliveries), those are delivered first, each in
     * one statement; any that cannot be (deliverInAppAtOnce answers false) are answered back and nothing is written,
     * so the workflow sends them the general way before it writes its final state.
     */
    async persistReminder(i: {
      tenantId: string; reminderId: string; state: ReminderState; audits?: ReminderAudit[]; fired?: { occurrence: string; trigger: string }[]; deliverInApp?: DeliveryRef[];
    }): Promise<DeliveryRef[]> {
      if (i.deliverInApp?.length) {
        const attempt = Context.current().info.attempt;
        const undelivered: DeliveryRef[] = [];
        for (const ref of i.deliverInApp) if (!(await deliverInAppAtOnce(ref, reminderDeliveryKey(ref), attempt))) undelivered.push(ref);
        if (undelivered.length) return undelivered;
      }
      const s = i.state;
      const date = (v: string | null) => (v ? new Date(v) : null);
      const after = { status: s.status, schedule: s.schedule, occurrence: s.occurrence, snoozedUntil: s.snoozedUntil, acknowledgedAt: s.acknowledgedAt, nextTriggerAt: s.nextTriggerAt };
      const workflowId = businessWorkflowId({ domain: REMINDERS_DOMAIN, tenantId: i.tenantId, entityId: i.reminderId });
      // Every event is keyed: a write retried after a crash (or a stale attempt landing after a newer write) writes none twice.
      const audited: AuditInput[] = (i.audits ?? []).map((a) => ({
        tenantId: i.tenantId, actor: a.by.actor, requestId: a.by.requestId, action: a.action, entityType: 'reminder', entityId: i.reminderId,
        before: a.before, after: { ...after, ...(a.command === undefined ? {} : { command: a.command }) }, workflowId,
        eventKey: `reminders:${i.reminderId}:${a.version}:${a.action}`,
      }));
      if (s.status === 'completed') {
        audited.push({
          tenantId: i.tenantId, actor: { type: 'system', id: null }, action: 'reminders.reminder.completed', entityType: 'reminder',
          entityId: i.reminderId, after: { status: s.status, occurrenceCount: s.occurrenceCount }, workflowId, eventKey: `reminders:${i.reminderId}:completed`,
        });
      }
      const fired = (i.fired ?? []).map((f) => ({
        tenantId: i.tenantId, type: 'reminder.fired' as const, subjectType: 'reminder', subjectId: i.reminderId,
        data: { reminderId: i.reminderId, occurrence: f.occurrence, trigger: f.trigger },
        eventKey: `reminders:${i.reminderId}:${f.occurrence}:${f.trigger}:fired`,
      }));
      // One statement (a data-modifying CTE is atomic on its own) instead of BEGIN / UPDATE / INSERT … / COMMIT through
      // Sequelize: every firing waits for this write, and its worker CPU is most of what a firing costs (bench/README, reminders).
      const bind: unknown[] = [];
      const $ = (v: unknown) => { bind.push(v); return `$${bind.length}`; };
      const json = (v: unknown) => (v === null ? null : JSON.stringify(v));
      const row = `id = ${$(i.reminderId)}::uuid AND tenant_id = ${$(i.tenantId)}::uuid`;
      const parts = [`updated AS (UPDATE reminders SET status = ${$(s.status)}, next_trigger_at = ${$(date(s.nextTriggerAt))}::timestamptz,
        current_occurrence = ${$(date(s.occurrence))}::timestamptz, snoozed_until = ${$(date(s.snoozedUntil))}::timestamptz,
        occurrence_count = ${$(s.occurrenceCount)}, acknowledged_at = ${$(date(s.acknowledgedAt))}::timestamptz, state = ${$(json(s))}::jsonb,
        state_version = ${$(s.version)}, due_at = ${$(date(s.schedule.dueAt ?? null))}::timestamptz, recurrence = ${$(json(s.schedule.recurrence ?? null))}::jsonb,
        updated_at = now()
        WHERE ${row} AND state_version <= ${$(s.version)} RETURNING 1)`];
      // A cancelled reminder's webhooks receive nothing more: deliveries still retrying end (the endpoint is disabled).
      if (s.status === 'cancelled') {
        parts.push(`disabled AS (UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'The reminder was cancelled', updated_at = now()
          WHERE tenant_id = ${$(i.tenantId)}::uuid AND reminder_id = ${$(i.reminderId)}::uuid AND enabled)`);
      }
      // A firing's event carries what the reminder says (its webhook receivers had it in the body before 0024); no
      // reminder audit event is a domain event, so the fired ones are all this merges into. Without the row it merges
      // NULL, which events.data refuses: the write fails and is retried, as below.
      parts.push(...auditCtes(audited, bind, {
        also: fired,
        mergeData: () => `(SELECT jsonb_build_object('subject', subject, 'message', message, 'object',
          CASE WHEN object_type IS NOT NULL AND object_id IS NOT NULL THEN jsonb_build_object('type', object_type, 'id', object_id) END)
          FROM reminders WHERE ${row})`,
      }));
      // Nothing updated is normal when a newer version is written already; a row that is not there (yet) is retried
      // rather than silently not written (with a firing to record, events.data refuses it first, above). Command audit
      // events are keyed, so a retry writes none twice; the API writes a reminder's row before it starts its workflow
      // and never deletes it, so a write without its row is not expected to happen at all.
      const [{ present }] = await Reminder.sequelize!.query<{ present: boolean }>(
        `WITH ${parts.join(',\n')} SELECT EXISTS (SELECT 1 FROM reminders WHERE ${row}) AS present`, { bind, type: QueryTypes.SELECT },
      );
      if (!present) throw new Error(`reminder ${i.reminderId} has no row (yet)`);
      return [];
    },

    /** Sends one delivery unless it was sent already (a retry or a replay never sends twice). */
    async deliverReminder(ref: DeliveryRef): Promise<'sent' | 'already_sent'> {
      const key = reminderDeliveryKey(ref);
      if (ref.channel === 'webhook') return handOverWebhook(ref);
      if (ref.channel === 'in_app' && await deliverInAppAtOnce(ref, key, Context.current().info.attempt)) return 'sent';
      const reminder = await Reminder.findOne({ where: { id: ref.reminderId, tenantId: ref.tenantId } });
      // Retried, not final: the row may not be visible yet (see persistReminder).
      if (!reminder) throw new Error(`reminder ${ref.reminderId} has no row (yet)`);
      const unsent = await claimDeliveries([{ key, tenantId: ref.tenantId, channel: ref.channel, recipient: ref.recipient, subjectType: 'reminder', subjectId: ref.reminderId }]);
      if (!unsent.has(key)) return 'already_sent';
      // The ledger counts the attempts, not Temporal: a retry that found no room in the send limit (below) sent nothing.
      const attempt = unsent.get(key)! + 1;
      // An email to an address the creator named (not one of the tenant's users) counts against the tenant's send limit,
      // as its campaigns' mail does: a reminder mails up to 100 addresses of anyone's choosing, as often as every
      // minute, through the same relay. No room within the wait: the attempt fails as SEND_LIMITED (retryable, so the
      // delivery's backoff runs; nothing is recorded against the delivery) and a later one sends it, as its attempt 1.
      let lease: SendLease | null = null;
      if (ref.channel === 'email' && !ref.recipient.startsWith('user:')) {
        lease = await acquireOne(limiterOf(), ref.tenantId, AbortSignal.timeout(REMINDER_SEND_WAIT_MS));
        if (!lease) throw ApplicationFailure.retryable(`The tenant's send limit had no room within ${REMINDER_SEND_WAIT_MS / 1000} s; sent when it has`, SEND_LIMITED);
      }
      const log = (shownAs: string) => ({ attempt, shownAs, detail: attemptDetail(ref) });
      let display = ref.recipient;
      try {
        const to = await target(ref);
        display = to.display;
        let providerId: string | null = null;
        const object = reminder.objectType ? { type: reminder.objectType, id: reminder.objectId } : null;
        if (ref.channel === 'email') {
          const text = [reminder.message, '', `When: ${when(ref.occurrence)}`, ...(object ? [`About: ${object.type} ${object.id}`] : [])].join('\n');
          providerId = (await deps.email.send({ to: to.email!, subject: `Reminder: ${reminder.subject}`, text, idempotencyKey: key })).messageId;
        } else {
          await Notification.bulkCreate([{
            id: randomUUID(), tenantId: ref.tenantId, userId: to.user!.id, deliveryKey: key, sourceType: 'reminder', sourceId: reminder.id,
            subject: reminder.subject, message: reminder.message, objectType: reminder.objectType, objectId: reminder.objectId, readAt: null,
          }], { ignoreDuplicates: true });
        }
        await recordDeliveryOutcomes([{ key, providerId, log: log(display) }]);
        return 'sent';
      } catch (err) {
        await recordDeliveryOutcomes([{ key, error: (err as Error).message, log: log(display) }]);
        throw countedFailure(err, attempt, DELIVERY_ATTEMPTS);
      } finally {
        // A release that fails leaves the slot to expire (leaseMs); the outcome is what counts.
        await lease?.release().catch(() => undefined);
      }
    },

    /** The workflow gave up on a delivery (retries exhausted or a final refusal): the ledger says so. */
    async recordDeliveryFailure(i: DeliveryRef & { error: string }): Promise<void> {
      await giveUpDeliveries([reminderDeliveryKey(i)], i.error);
    },
  };
}

export type ReminderActivities = ReturnType<typeof createReminderActivities>;
