// Webhook activities: the relay (new events → deliveries, their endpoints' workflows woken) and an endpoint's round of
// due deliveries (signed POSTs, each logged in the ledger's delivery_attempts with status code, duration and the
// answer's first KB, and scheduled again with backoff when it failed).
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { QueryTypes } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import type { Client } from '@temporalio/client';
import { WebhookDelivery, WebhookEndpoint, type WebhookDeliveryStatus } from '../db/models/webhooks';
import { DomainEvent } from '../db/models/events';
import { forEachConcurrently } from '../lib/concurrency';
import { recordAudit } from '../lib/audit';
import type { EmailSender } from '../lib/notify/email';
import { activeSecrets, sendStandardWebhook } from '../lib/notify/standard-webhooks';
import { uuidV7Floor } from '../lib/uuid';
import { localTime, tenantDefaults } from '../domains/notifications/render';
import { businessWorkflowId, ENTITY_ID, ENTITY_TYPE, OBJECT_ID, STATUS, TENANT_ID } from '../workflows/search-attributes';
import {
  backoffMs, claimLeaseMs, pokeEndpoint, SEND_BATCH, SEND_CONCURRENCY, SEND_WINDOW_MS, WEBHOOKS_DOMAIN, WEBHOOKS_TASK_QUEUE,
  type WebhookEndpointInput, type WebhookRetrySchedule, type WebhookSendRound,
} from '../workflows/webhooks.api';
import type { webhookEndpointWorkflow } from '../workflows/webhooks';

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
 * Each read looks RELAY_SHORT_SAFETY_MS back; one every RELAY_DEEP_EVERY_MS the whole RELAY_SAFETY_MS — at 10,000
 * events a minute to 5 endpoints a minute's re-read checks 50,000 pairs (~0.3 s of Postgres), too much every second.
 */
export const RELAY_SAFETY_MS = 60_000;
export const RELAY_SHORT_SAFETY_MS = 5_000;
export const RELAY_DEEP_EVERY_MS = 30_000;
/** (Endpoint, event) pairs made into deliveries per query, and queries per relay read (at most 20,000 a read). */
const RELAY_BATCH = 2_000;
const RELAY_READS = 10;
/** Deliveries due this long without being claimed mean their endpoint's workflow was never woken: the relay wakes it. */
const OVERDUE_MS = 90_000;

/** A delivery as a round claimed it. */
interface ClaimedDelivery { id: string; attempts: number; retry_until: Date }

/** One attempt's outcome as logged (the delivery's new state and its delivery_attempts row). */
interface AttemptRow {
  id: string; status: WebhookDeliveryStatus; at: Date; status_code: number | null; error: string | null; delivered_at: Date | null;
  next_attempt_at: Date | null; attempt: number; outcome: 'sent' | 'failed'; duration_ms: number; detail: { statusCode: number | null; response: string | null };
}

/**
 * Starts the endpoint's delivery workflow, or pokes the running one (signal-with-start: one per endpoint). Its id is
 * webhooks:<tenant>:<endpoint>, and it carries EntityType webhook_endpoint and EntityId/ObjectId the endpoint's id.
 */
export async function wakeEndpointWorkflow(client: Client, tenantId: string, endpointId: string, retry: WebhookRetrySchedule, urgent = false): Promise<void> {
  await client.workflow.signalWithStart<typeof webhookEndpointWorkflow, [{ urgent?: boolean }?]>('webhookEndpointWorkflow', {
    workflowId: businessWorkflowId({ domain: WEBHOOKS_DOMAIN, tenantId, entityId: endpointId }), taskQueue: WEBHOOKS_TASK_QUEUE,
    signal: pokeEndpoint, signalArgs: [{ urgent }], args: [{ tenantId, endpointId, retry } satisfies WebhookEndpointInput],
    typedSearchAttributes: [
      { key: TENANT_ID, value: tenantId }, { key: ENTITY_TYPE, value: 'webhook_endpoint' }, { key: ENTITY_ID, value: endpointId },
      { key: OBJECT_ID, value: endpointId }, { key: STATUS, value: 'running' },
    ],
  });
}

/** The SQL test that an event type matches one of an endpoint's patterns (a type, a `prefix.*`, or `*`). */
export const PATTERN_MATCH_SQL = `EXISTS (SELECT 1 FROM unnest(ep.event_types) p
  WHERE p = '*' OR p = e.type OR (right(p, 2) = '.*' AND left(e.type, length(p) - 1) = left(p, length(p) - 1)))`;

/** The relay's read: (enabled endpoint, event since $2) pairs of tenant $1 that match and have no delivery yet, $3 at most. */
export const RELAY_PAIRS_SQL = `SELECT ep.id AS endpoint_id, e.id AS event_id, e.type FROM events e
    JOIN webhook_endpoints ep ON ep.tenant_id = e.tenant_id AND ep.enabled AND e.occurred_at >= ep.created_at
  WHERE e.tenant_id = $1 AND e.id >= $2 AND ${PATTERN_MATCH_SQL}
    -- A reminder's webhook (0024) gets its own reminder's events only.
    AND (ep.reminder_id IS NULL OR ep.reminder_id::text = e.data->>'reminderId')
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.delivery_key = ep.id || ':' || e.id)
  ORDER BY e.id LIMIT $3`;

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
      const admins = await sequelize().query<{ id: string; email: string; time_zone: string | null }>(
        `SELECT DISTINCT u.id, u.email, u.time_zone FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
          WHERE u.tenant_id = $1 AND u.active AND u.email IS NOT NULL AND r.permissions @> '["*"]'::jsonb`,
        { bind: [endpoint.tenantId], type: QueryTypes.SELECT, transaction },
      );
      const defaults = await tenantDefaults(endpoint.tenantId);
      // A reminder's endpoint (0024) is managed through its reminder.
      const fix = endpoint.reminderId
        ? `Fix the receiver, then set the reminder's webhooks again (PUT ${deps.publicUrl}/v1/reminders/${endpoint.reminderId}/webhooks).`
        : `Fix the receiver, then enable it again (PATCH ${deps.publicUrl}/v1/webhook-endpoints/${endpoint.id} {"enabled": true}) and replay what it missed (POST …/replay).`;
      for (const a of admins) {
        // The time as this administrator reads it (their zone, else the tenant's, else UTC), like every notice.
        const text = `Docket disabled the webhook endpoint ${endpoint.url} (${endpoint.id}): every delivery attempt failed since `
          + `${String(localTime(since, a.time_zone ?? defaults.timeZone))}.\n\n${fix}`;
        await deps.email.send({ to: a.email, subject: 'Webhook endpoint disabled', text, idempotencyKey: `webhook-auto-disabled:${endpoint.id}:${since.toISOString()}:${a.id}` });
      }
    });
  }

  /**
   * One attempt: the event as `{type, timestamp, data}`, its id as `webhook-id` (the same on every attempt), signed
   * with the endpoint's secrets (the current one, and the previous during a rotation's overlap). Answers what to log:
   * with a schedule a failure is `failed` until the next attempt (the backoff doubles from the first retry up to the
   * longest), or `dead` when that would be after retry_until; without one (the pre-0023 workflow) Temporal's retry
   * policy schedules it.
   */
  async function attempt(endpoint: WebhookEndpoint, secrets: string[], event: DomainEvent, d: ClaimedDelivery, retry: WebhookRetrySchedule | null, timeoutMs: number): Promise<AttemptRow> {
    const now = new Date();
    const sent = await sendStandardWebhook({
      url: endpoint.url, secrets, id: event.id, type: event.type, timestamp: event.occurredAt, data: event.data,
      timeoutMs, allowPrivateNetworks: deps.allowPrivateNetworks, signal: Context.current().cancellationSignal, now,
    });
    const { statusCode, response, error, durationMs } = sent;
    const ok = error === null;
    let status: WebhookDeliveryStatus = ok ? 'delivered' : 'failed';
    let nextAttemptAt: Date | null = null;
    if (!ok && retry) {
      nextAttemptAt = new Date(Date.now() + backoffMs(retry, d.attempts + 1));
      if (nextAttemptAt > d.retry_until) [status, nextAttemptAt] = ['dead', null];
    }
    return {
      id: d.id, status, at: now, status_code: statusCode, error, delivered_at: ok ? now : null, next_attempt_at: nextAttemptAt,
      attempt: d.attempts + 1, outcome: ok ? 'sent' : 'failed', duration_ms: durationMs, detail: { statusCode, response },
    };
  }

  /** Attempts of one endpoint logged in one statement: each delivery's new state and its row in the ledger's delivery_attempts. */
  async function logAttempts(endpoint: WebhookEndpoint, rows: AttemptRow[]): Promise<void> {
    await sequelize().query(
      `WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, status text, at timestamptz, status_code int, error text,
           delivered_at timestamptz, next_attempt_at timestamptz, attempt int, outcome text, duration_ms int, detail jsonb)),
         d AS (UPDATE webhook_deliveries w SET status = v.status, attempts = w.attempts + 1, last_attempt_at = v.at, last_status_code = v.status_code,
             last_error = v.error, delivered_at = v.delivered_at, next_attempt_at = v.next_attempt_at, updated_at = now()
           FROM v WHERE w.id = v.id AND w.status IN ('pending', 'failed', 'dead') RETURNING w.id, w.attempts)
       INSERT INTO delivery_attempts (tenant_id, delivery_key, subject_type, subject_id, channel, recipient, attempt, status, error, duration_ms, detail, at)
       SELECT $2, v.id::text, 'webhook_endpoint', $3, 'webhook', $4, COALESCE(d.attempts, v.attempt), v.outcome, v.error, v.duration_ms, v.detail, v.at
       FROM v LEFT JOIN d ON d.id = v.id ORDER BY v.at`,
      { bind: [JSON.stringify(rows), endpoint.tenantId, endpoint.id, endpoint.url] },
    );
  }

  /**
   * Logs each attempt as soon as it ends, and those that ended while the previous write ran together with it (a group
   * commit): the caller's promise resolves once its row is written, so a round never moves on from an unlogged attempt.
   */
  function attemptLogger(endpoint: WebhookEndpoint): (row: AttemptRow) => Promise<void> {
    let queued: AttemptRow[] = [];
    let writing: Promise<void> | null = null;
    const drain = async () => {
      try {
        while (queued.length) {
          const rows = queued;
          queued = [];
          await logAttempts(endpoint, rows);
        }
      } finally {
        writing = null;
      }
    };
    return (row) => {
      queued.push(row);
      writing ??= drain();
      return writing;
    };
  }

  return {
    /**
     * Makes the deliveries of the tenant's events since its cursor (less the safety window) for each enabled
     * endpoint whose filter matches and that existed when the event occurred — due now — and wakes the delivery
     * workflows of the endpoints that got some (and of any whose deliveries are long overdue: a wake was lost).
     * Answers whether the relay should go on.
     */
    async relayWebhookEvents(input: { tenantId: string; retry: WebhookRetrySchedule }): Promise<{ active: boolean; created: number; woken: number }> {
      const { tenantId } = input;
      const readAt = Date.now();
      const [cursor] = await sequelize().query<{ read_until: Date; deep_read_at: Date | null }>(
        'SELECT read_until, deep_read_at FROM webhook_relay_cursors WHERE tenant_id = $1', { bind: [tenantId], type: QueryTypes.SELECT });
      const deep = !cursor?.deep_read_at || readAt - cursor.deep_read_at.getTime() >= RELAY_DEEP_EVERY_MS;
      const from = (cursor?.read_until.getTime() ?? readAt) - (deep ? RELAY_SAFETY_MS : RELAY_SHORT_SAFETY_MS);
      const endpoints = new Set<string>();
      let created = 0;
      for (let read = 0; read < RELAY_READS; read++) {
        const pairs = await sequelize().query<{ endpoint_id: string; event_id: string; type: string }>(
          RELAY_PAIRS_SQL, { bind: [tenantId, uuidV7Floor(from), RELAY_BATCH], type: QueryTypes.SELECT },
        );
        if (pairs.length) {
          const now = new Date();
          const retryUntil = new Date(now.getTime() + input.retry.giveUpAfterMs);
          await WebhookDelivery.bulkCreate(pairs.map((p) => ({
            id: uuidv7(), tenantId, endpointId: p.endpoint_id, eventId: p.event_id, eventType: p.type, deliveryKey: `${p.endpoint_id}:${p.event_id}`,
            status: 'pending' as const, nextAttemptAt: now, retryUntil, createdAt: now, updatedAt: now,
          })), { ignoreDuplicates: true });
          for (const p of pairs) endpoints.add(p.endpoint_id);
          created += pairs.length;
        }
        // Only a read that was not cut short moves the cursor: the next goes on from the same place (made pairs are skipped).
        if (pairs.length < RELAY_BATCH) {
          await sequelize().query(`INSERT INTO webhook_relay_cursors (tenant_id, read_until, deep_read_at) VALUES ($1, $2, $3)
            ON CONFLICT (tenant_id) DO UPDATE SET read_until = GREATEST(webhook_relay_cursors.read_until, EXCLUDED.read_until),
              deep_read_at = COALESCE(EXCLUDED.deep_read_at, webhook_relay_cursors.deep_read_at)`, { bind: [tenantId, new Date(readAt), deep ? new Date(readAt) : null] });
          break;
        }
      }
      // A wake lost (the relay died between making deliveries and signalling) shows as deliveries long overdue.
      const overdue = await sequelize().query<{ id: string }>(
        `SELECT ep.id FROM webhook_endpoints ep WHERE ep.tenant_id = $1 AND EXISTS (SELECT 1 FROM webhook_deliveries d
           WHERE d.endpoint_id = ep.id AND d.status IN ('pending', 'failed') AND d.next_attempt_at < $2)`,
        { bind: [tenantId, new Date(readAt - OVERDUE_MS)], type: QueryTypes.SELECT },
      );
      for (const o of overdue) endpoints.add(o.id);
      const client = Context.current().client;
      await Promise.all([...endpoints].map((endpointId) => wakeEndpointWorkflow(client, tenantId, endpointId, input.retry)));
      // The tenant's own endpoints keep the relay reading; a reminder's (0024) only while the reminder may still fire,
      // and a couple of minutes past its last change (its final firing's event may commit after this read) — else a
      // completed reminder's endpoints would keep it polling for good.
      const [{ enabled }] = await sequelize().query<{ enabled: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM webhook_endpoints ep LEFT JOIN reminders r ON r.id = ep.reminder_id
           WHERE ep.tenant_id = $1 AND ep.enabled AND (ep.reminder_id IS NULL OR r.status IN ('active', 'paused') OR r.updated_at > now() - interval '2 minutes')) AS enabled`,
        { bind: [tenantId], type: QueryTypes.SELECT },
      );
      return { active: enabled, created, woken: endpoints.size };
    },

    /**
     * One round of an endpoint's delivery workflow. While its window lasts it claims the endpoint's due deliveries a
     * batch at a time — pushing their next_attempt_at ahead by a lease, under SKIP LOCKED, so no other round (a
     * retried or zombie activity) can take them while any POST started for them may still run — and POSTs them,
     * SEND_CONCURRENCY at once (a probe round, for an endpoint whose last rounds all failed, claims only that many
     * once: a receiver that is down costs a few attempts per backoff, not its whole backlog's). Each attempt is logged as it ends and the delivery set `delivered`, `failed` with its
     * next attempt after an exponential backoff, or `dead` when that would fall after its retry_until. A disabled
     * endpoint's pending deliveries end dead (a dead letter, retried by hand); a deleted one's went with it.
     */
    async sendDueWebhookDeliveries(input: { tenantId: string; endpointId: string; retry: WebhookRetrySchedule; probe?: boolean }): Promise<WebhookSendRound> {
      const { tenantId, endpointId, retry } = input;
      // An endpoint whose last rounds only failed gets a probe: one claim of SEND_CONCURRENCY, not batches for a while.
      const limit = input.probe ? SEND_CONCURRENCY : SEND_BATCH;
      const ctx = Context.current();
      const deadline = Date.now() + SEND_WINDOW_MS;
      const beat = setInterval(() => ctx.heartbeat(), 2_000);
      let sent = 0;
      let failed = 0;
      try {
        while (Date.now() < deadline) {
          const endpoint = await WebhookEndpoint.findOne({ where: { id: endpointId, tenantId } });
          if (!endpoint) return { sent, failed, nextDueAt: null, stop: true };
          if (!endpoint.enabled) {
            await WebhookDelivery.update({ status: 'dead' }, { where: { endpointId, tenantId, status: ['pending', 'failed'] } });
            return { sent, failed, nextDueAt: null, stop: true };
          }
          const claimedAt = new Date();
          const leasedUntil = new Date(claimedAt.getTime() + claimLeaseMs(retry));
          const [claimed] = await sequelize().query(
            `UPDATE webhook_deliveries SET next_attempt_at = $4 WHERE id IN (
               SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND tenant_id = $2 AND status IN ('pending', 'failed') AND next_attempt_at <= $3
               ORDER BY next_attempt_at, id LIMIT ${limit} FOR UPDATE SKIP LOCKED)
             RETURNING id, event_id, attempts, retry_until`,
            { bind: [endpointId, tenantId, claimedAt, leasedUntil] },
          ) as [(ClaimedDelivery & { event_id: string })[], unknown];
          if (!claimed.length) break;
          claimed.sort((a, b) => (a.id < b.id ? -1 : 1));
          const events = new Map((await DomainEvent.findAll({ where: { tenantId, id: claimed.map((c) => c.event_id) } })).map((e) => [e.id, e]));
          const unsent: string[] = [];
          let batchFailed = 0;
          const secrets = activeSecrets(endpoint, deps.secretsKey);
          const log = attemptLogger(endpoint);
          await forEachConcurrently(claimed, SEND_CONCURRENCY, async (d) => {
            const event = events.get(d.event_id);
            if (!event) {
              await WebhookDelivery.update({ status: 'dead', lastError: 'the event is gone' }, { where: { id: d.id } });
              return;
            }
            // Past the window a POST could outlive the lease: it waits for the next round instead.
            if (Date.now() >= deadline || ctx.cancellationSignal.aborted) {
              unsent.push(d.id);
              return;
            }
            const row = await attempt(endpoint, secrets, event, d, retry, retry.attemptTimeoutMs);
            await log(row);
            if (row.outcome === 'sent') sent++;
            else batchFailed++;
          });
          if (unsent.length) {
            await WebhookDelivery.update({ nextAttemptAt: new Date() }, { where: { id: unsent, nextAttemptAt: leasedUntil, status: ['pending', 'failed'] } });
          }
          failed += batchFailed;
          if (batchFailed) await disableIfFailingTooLong(endpoint);
          if (input.probe || claimed.length < limit) break;
        }
        const [{ next }] = await sequelize().query<{ next: Date | null }>(
          `SELECT min(next_attempt_at) AS next FROM webhook_deliveries WHERE endpoint_id = $1 AND status IN ('pending', 'failed')`,
          { bind: [endpointId], type: QueryTypes.SELECT },
        );
        return { sent, failed, nextDueAt: next ? next.getTime() : null, stop: false };
      } finally {
        clearInterval(beat);
      }
    },

    /**
     * Before 0023 only: webhookDeliveryWorkflow's attempt (its Temporal retry policy schedules the next), kept for the
     * histories still running. A delivery the endpoint's workflow has taken over (it has a next_attempt_at: a manual
     * retry) is left to it.
     */
    async attemptWebhookDelivery(input: { tenantId: string; deliveryId: string }): Promise<'delivered' | 'handed_over'> {
      const delivery = await WebhookDelivery.findOne({ where: { id: input.deliveryId, tenantId: input.tenantId } });
      if (delivery?.status === 'delivered') return 'delivered';
      if (delivery?.nextAttemptAt) return 'handed_over';
      const endpoint = delivery && await WebhookEndpoint.findOne({ where: { id: delivery.endpointId, tenantId: input.tenantId } });
      const event = delivery && await DomainEvent.findOne({ where: { id: delivery.eventId, tenantId: input.tenantId } });
      if (!delivery || !endpoint || !event) throw ApplicationFailure.nonRetryable('the delivery, its endpoint or its event is gone', 'WebhookDeliveryGone');
      if (!endpoint.enabled) throw ApplicationFailure.nonRetryable('the endpoint is disabled', 'WebhookDeliveryGone');
      const row = await attempt(endpoint, activeSecrets(endpoint, deps.secretsKey), event, { id: delivery.id, attempts: delivery.attempts, retry_until: delivery.retryUntil },
        null, Context.current().info.startToCloseTimeoutMs - 5_000);
      await logAttempts(endpoint, [row]);
      if (row.outcome !== 'sent') {
        await disableIfFailingTooLong(endpoint);
        throw new Error('webhook delivery failed');
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
