// Webhook activities: the relay (new events → deliveries, and their workflows started) and one delivery attempt
// (signed POST, logged in the ledger's delivery_attempts with status code, duration and the answer's first KB).
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { QueryTypes } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import { WebhookDelivery, WebhookEndpoint } from '../db/models/webhooks';
import { DomainEvent } from '../db/models/events';
import { DeliveryAttempt } from '../db/models/deliveries';
import { recordAudit } from '../lib/audit';
import type { EmailSender } from '../lib/notify/email';
import { activeSecrets, sendStandardWebhook } from '../lib/notify/standard-webhooks';
import { startBusinessWorkflow } from '../lib/temporal';
import { WEBHOOKS_DOMAIN, WEBHOOKS_TASK_QUEUE, type WebhookDeliveryInput, type WebhookRetrySchedule } from '../workflows/webhooks.api';
import type { webhookDeliveryWorkflow } from '../workflows/webhooks';

export interface WebhookActivityDeps {
  secretsKey: Buffer;
  allowPrivateNetworks: boolean;
  email: EmailSender;
  publicUrl: string;
  webhookAutoDisableAfterMs?: number;
}

/**
 * Events commit out of id order (a transaction that wrote its event a moment ago may commit after a later one):
 * the relay re-reads this far behind where it read up to, and the delivery key makes a re-read event count once.
 */
export const RELAY_SAFETY_MS = 60_000;
/** Deliveries made (and workflows started) per relay read. */
const RELAY_BATCH = 500;

/** The smallest UUIDv7 of a millisecond: events are keyed by v7 ids, so `id >=` this is "written at or after". */
export function uuidV7Floor(ms: number): string {
  const h = Math.max(0, ms).toString(16).padStart(12, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-7000-8000-000000000000`;
}

/** The SQL test that an event type matches one of an endpoint's patterns (a type, a `prefix.*`, or `*`). */
export const PATTERN_MATCH_SQL = `EXISTS (SELECT 1 FROM unnest(ep.event_types) p
  WHERE p = '*' OR p = e.type OR (right(p, 2) = '.*' AND left(e.type, length(p) - 1) = left(p, length(p) - 1)))`;

export function createWebhookActivities(deps: WebhookActivityDeps) {
  const sequelize = () => WebhookEndpoint.sequelize!;
  const disableAfterMs = deps.webhookAutoDisableAfterMs ?? 5 * 86_400_000;

  /**
   * Disables an endpoint whose attempts have all failed since at least `disableAfterMs` ago (the first failure after
   * its last success is that old), audits it, and emails the tenant's administrators — before the commit, so a crash
   * sends again rather than never (the mail's idempotency key makes its Message-ID the same).
   */
  async function disableIfFailingTooLong(endpoint: WebhookEndpoint): Promise<void> {
    const [{ failing_since: since }] = await sequelize().query<{ failing_since: Date | null }>(
      `SELECT min(at) AS failing_since FROM delivery_attempts
        WHERE tenant_id = $1 AND subject_type = 'webhook_endpoint' AND subject_id = $2
          AND at > COALESCE((SELECT max(at) FROM delivery_attempts WHERE tenant_id = $1 AND subject_type = 'webhook_endpoint' AND subject_id = $2 AND status = 'sent'), '-infinity')`,
      { bind: [endpoint.tenantId, endpoint.id], type: QueryTypes.SELECT },
    );
    if (!since || Date.now() - since.getTime() < disableAfterMs) return;
    const reason = `Every delivery attempt failed since ${since.toISOString()}`;
    await sequelize().transaction(async (transaction) => {
      const [changed] = await WebhookEndpoint.update({ enabled: false, disabledReason: reason }, { where: { id: endpoint.id, enabled: true }, transaction });
      if (!changed) return;
      await recordAudit({
        tenantId: endpoint.tenantId, actor: { type: 'system', id: null }, action: 'webhooks.endpoint.auto_disabled', entityType: 'webhook_endpoint',
        entityId: endpoint.id, after: { enabled: false, disabledReason: reason }, eventKey: `webhook-auto-disabled:${endpoint.id}:${since.toISOString()}`,
      }, transaction);
      const admins = await sequelize().query<{ id: string; email: string }>(
        `SELECT DISTINCT u.id, u.email FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
          WHERE u.tenant_id = $1 AND u.active AND u.email IS NOT NULL AND r.permissions @> '["*"]'::jsonb`,
        { bind: [endpoint.tenantId], type: QueryTypes.SELECT, transaction },
      );
      const text = `Docket disabled the webhook endpoint ${endpoint.url} (${endpoint.id}): ${reason.toLowerCase()}.\n\n`
        + `Fix the receiver, then enable it again (PATCH ${deps.publicUrl}/v1/webhook-endpoints/${endpoint.id} {"enabled": true}) and `
        + 'replay what it missed (POST …/replay).';
      for (const a of admins) {
        await deps.email.send({ to: a.email, subject: 'Webhook endpoint disabled', text, idempotencyKey: `webhook-auto-disabled:${endpoint.id}:${since.toISOString()}:${a.id}` });
      }
    });
  }

  return {
    /**
     * Makes the deliveries of the tenant's events since its cursor (less the safety window) for each enabled
     * endpoint whose filter matches and that existed when the event occurred, then starts the workflows of
     * every delivery not started yet (its own, a replay's, a retry's). Answers whether the relay should go on.
     */
    async relayWebhookEvents(input: { tenantId: string; retry: WebhookRetrySchedule }): Promise<{ active: boolean; created: number; started: number }> {
      const { tenantId } = input;
      const readAt = Date.now();
      const [cursor] = await sequelize().query<{ read_until: Date }>('SELECT read_until FROM webhook_relay_cursors WHERE tenant_id = $1', { bind: [tenantId], type: QueryTypes.SELECT });
      const from = (cursor?.read_until.getTime() ?? readAt) - RELAY_SAFETY_MS;
      const pairs = await sequelize().query<{ endpoint_id: string; event_id: string; type: string }>(
        `SELECT ep.id AS endpoint_id, e.id AS event_id, e.type FROM events e
           JOIN webhook_endpoints ep ON ep.tenant_id = e.tenant_id AND ep.enabled AND e.occurred_at >= ep.created_at
         WHERE e.tenant_id = $1 AND e.id >= $2 AND ${PATTERN_MATCH_SQL}
           -- A reminder's webhook (0024) gets its own reminder's events only.
           AND (ep.reminder_id IS NULL OR ep.reminder_id::text = e.data->>'reminderId')
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.delivery_key = ep.id || ':' || e.id)
         ORDER BY e.id LIMIT ${RELAY_BATCH}`,
        { bind: [tenantId, uuidV7Floor(from)], type: QueryTypes.SELECT },
      );
      if (pairs.length) {
        const now = new Date();
        await WebhookDelivery.bulkCreate(pairs.map((p) => ({
          id: uuidv7(), tenantId, endpointId: p.endpoint_id, eventId: p.event_id, eventType: p.type, deliveryKey: `${p.endpoint_id}:${p.event_id}`,
          status: 'pending' as const, createdAt: now, updatedAt: now,
        })), { ignoreDuplicates: true });
      }
      // A full batch leaves the cursor: the next read goes on from the same place (made pairs are skipped).
      if (pairs.length < RELAY_BATCH) {
        await sequelize().query(`INSERT INTO webhook_relay_cursors (tenant_id, read_until) VALUES ($1, $2)
          ON CONFLICT (tenant_id) DO UPDATE SET read_until = GREATEST(webhook_relay_cursors.read_until, EXCLUDED.read_until)`, { bind: [tenantId, new Date(readAt)] });
      }
      const unstarted = await WebhookDelivery.findAll({ where: { tenantId, started: false }, order: [['id', 'ASC']], limit: RELAY_BATCH });
      const client = Context.current().client;
      for (const d of unstarted) {
        await startBusinessWorkflow<typeof webhookDeliveryWorkflow>(client, {
          domain: WEBHOOKS_DOMAIN, tenantId, entityType: 'webhook_delivery', entityId: d.id, objectId: d.endpointId,
          workflowType: 'webhookDeliveryWorkflow', taskQueue: WEBHOOKS_TASK_QUEUE, initialStatus: 'pending',
          args: [{ tenantId, deliveryId: d.id, retry: input.retry } satisfies WebhookDeliveryInput],
        });
        await d.update({ started: true });
      }
      const enabled = await WebhookEndpoint.count({ where: { tenantId, enabled: true } });
      return { active: enabled > 0 || unstarted.length > 0, created: pairs.length, started: unstarted.length };
    },

    /**
     * One attempt: the event as `{type, timestamp, data}`, its id as `webhook-id` (the same on every retry), signed
     * with the endpoint's secret (and the previous one during a rotation's overlap). Logged; throws unless 2xx.
     */
    async attemptWebhookDelivery(input: { tenantId: string; deliveryId: string }): Promise<'delivered'> {
      const delivery = await WebhookDelivery.findOne({ where: { id: input.deliveryId, tenantId: input.tenantId } });
      // A second start of a finished delivery's workflow (the relay died before marking it started) sends nothing.
      if (delivery?.status === 'delivered') return 'delivered';
      const endpoint = delivery && await WebhookEndpoint.findOne({ where: { id: delivery.endpointId, tenantId: input.tenantId } });
      const event = delivery && await DomainEvent.findOne({ where: { id: delivery.eventId, tenantId: input.tenantId } });
      if (!delivery || !endpoint || !event) throw ApplicationFailure.nonRetryable('the delivery, its endpoint or its event is gone', 'WebhookDeliveryGone');
      if (!endpoint.enabled) throw ApplicationFailure.nonRetryable('the endpoint is disabled', 'WebhookDeliveryGone');
      const now = new Date();
      const sent = await sendStandardWebhook({
        url: endpoint.url, secrets: activeSecrets(endpoint, deps.secretsKey, now), id: event.id, type: event.type, timestamp: event.occurredAt, data: event.data,
        timeoutMs: Context.current().info.startToCloseTimeoutMs - 5_000, allowPrivateNetworks: deps.allowPrivateNetworks, signal: Context.current().cancellationSignal, now,
      });
      const { statusCode, response, error, durationMs } = sent;
      const ok = error === null;
      await sequelize().transaction(async (transaction) => {
        const [, rows] = await WebhookDelivery.update({
          status: ok ? 'delivered' : 'failed', lastAttemptAt: now, lastStatusCode: statusCode, lastError: error,
          deliveredAt: ok ? now : null, attempts: sequelize().literal('attempts + 1') as unknown as number,
        }, { where: { id: delivery.id, status: ['pending', 'failed', 'dead'] }, transaction, returning: true });
        const attempt = rows[0]?.attempts ?? delivery.attempts + 1;
        await DeliveryAttempt.create({
          tenantId: input.tenantId, deliveryKey: delivery.id, subjectType: 'webhook_endpoint', subjectId: endpoint.id, channel: 'webhook',
          recipient: endpoint.url, attempt, status: ok ? 'sent' : 'failed', error, durationMs, detail: { statusCode, response }, at: now,
        }, { transaction });
      });
      if (!ok) {
        await disableIfFailingTooLong(endpoint);
        throw new Error(`webhook delivery failed: ${error}`);
      }
      return 'delivered';
    },

    /** The retries are spent (or the endpoint went away): the delivery ends `dead`, kept as a dead letter. */
    async markWebhookDeliveryDead(input: { tenantId: string; deliveryId: string }): Promise<void> {
      await WebhookDelivery.update({ status: 'dead' }, { where: { id: input.deliveryId, tenantId: input.tenantId, status: ['pending', 'failed'] } });
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
