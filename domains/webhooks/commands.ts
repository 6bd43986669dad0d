// Webhook endpoint commands: register (the secret shown once), change, remove, rotate the secret, replay a range,
// retry a delivery — each audited — send a test event, and wake the tenant's relay so it reads the outbox.
import { Attributes, FindOptions, QueryTypes } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import { PATTERN_MATCH_SQL, wakeEndpointWorkflow } from '../../activities/webhooks';
import { WebhookDelivery, WebhookEndpoint } from '../../db/models/webhooks';
import { createWithAudit, destroyWithAudit, recordAudit } from '../../lib/audit';
import { assertPublicDestination, OutboundBlockedError } from '../../lib/notify/outbound';
import { activeSecrets, newWebhookSecret, sendStandardWebhook } from '../../lib/notify/standard-webhooks';
import { ApiError, notFound } from '../../lib/problems';
import { sealSecret } from '../../lib/secrets';
import { startOrUndo } from '../../lib/temporal';
import { findInTenant } from '../../lib/tenancy';
import type { WebhookRetrySchedule } from '../../workflows/webhooks.api';
import { auditBy, Caller, CommandDeps } from '../command';
import { typesMatching } from '../events/catalogue';
import type { Schemas } from '../schemas';
import { presentWebhookEndpoint } from './presenters';
import { relaySettings, signalRelay } from './relay';

/**
 * A tenant's endpoint of its own (not a reminder's webhook recipient, which is managed through its reminder): 404
 * otherwise, as for an id that does not exist.
 */
export const findEndpoint = (tenantId: string, id: string, opts: Omit<FindOptions<Attributes<WebhookEndpoint>>, 'where'> = {}) =>
  findInTenant(WebhookEndpoint, tenantId, { id, reminderId: null }, `Webhook endpoint ${id}`, opts);

export function retrySchedule(deps: Pick<CommandDeps, 'config'>): WebhookRetrySchedule {
  return relaySettings(deps.config).retry;
}

/**
 * https only (http where private networks are allowed, i.e. development), and never a private, loopback or
 * link-local destination: asked of the SSRF classifier the deliveries go through (lib/notify/outbound.ts), which
 * connects to nothing. Each delivery checks again on the address it connects to (DNS may change). `path` is where the
 * URL is in the request body (a reminder's webhooks are checked by the same rule: domains/reminders/commands.ts).
 */
export async function checkEndpointUrl(deps: Pick<CommandDeps, 'config'>, url: string, path = '/requestBody/url'): Promise<void> {
  const allowPrivate = deps.config.outboundAllowPrivateNetworks;
  // The contract's `uri` format is looser than WHATWG's (e.g. a port over 65535): what cannot be parsed is refused here.
  const scheme = URL.canParse(url) ? new URL(url).protocol : null;
  if (scheme === null) {
    throw new ApiError(422, 'URL_NOT_ALLOWED', 'The URL cannot be parsed', { errors: [{ path, message: 'is not a URL a request can be sent to' }] });
  }
  if (scheme !== 'https:' && !(scheme === 'http:' && allowPrivate)) {
    throw new ApiError(422, 'URL_NOT_ALLOWED', 'The URL must be https (http only where OUTBOUND_ALLOW_PRIVATE_NETWORKS=true, for development)', { errors: [{ path, message: 'must be https' }] });
  }
  if (allowPrivate) return;
  try {
    await assertPublicDestination(url);
  } catch (err) {
    const why = err instanceof OutboundBlockedError ? err.message : `its host could not be resolved (${(err as Error).message})`;
    throw new ApiError(422, 'URL_NOT_ALLOWED', `The URL is not a public destination: ${why}`, { errors: [{ path, message: why }] });
  }
}

/** Each pattern is `*`, or names at least one type of the catalogue (itself or as `prefix.*`). */
export function checkEventTypes(catalogue: readonly { type: string }[], patterns: string[]): string[] {
  const unknown = patterns.filter((p) => p !== '*' && !typesMatching(catalogue, p).length);
  if (unknown.length) {
    throw new ApiError(422, 'UNKNOWN_EVENT_TYPE', `Names no event type of the catalogue (GET /v1/event-types): ${unknown.join(', ')}`,
      { errors: unknown.map((p) => ({ path: `/requestBody/eventTypes/${patterns.indexOf(p)}`, message: `names no event type: ${p}` })) });
  }
  return [...new Set(patterns)];
}

/** Starts the tenant's relay, or wakes the running one (signal-with-start: one relay per tenant). */
export async function wakeRelay(deps: CommandDeps, tenantId: string): Promise<void> {
  await signalRelay(deps.temporal.client, tenantId, relaySettings(deps.config));
}

export async function createEndpoint(deps: CommandDeps, c: Caller, catalogue: readonly { type: string }[], input: Schemas['WebhookEndpointInput']) {
  await checkEndpointUrl(deps, input.url);
  const eventTypes = checkEventTypes(catalogue, input.eventTypes);
  const secret = newWebhookSecret();
  const id = uuidv7();
  const audit = { ...auditBy(c), action: 'webhooks.endpoint.created' as const, entityType: 'webhook_endpoint', entityId: id };
  const endpoint = await createWithAudit(WebhookEndpoint, {
    id, tenantId: c.tenantId, url: input.url, description: input.description ?? null, eventTypes, enabled: input.enabled ?? true,
    disabledReason: null, secret: sealSecret(secret, deps.config.secretsKey), previousSecret: null, previousSecretExpiresAt: null,
  }, (row) => ({ ...audit, after: presentWebhookEndpoint(row) }));
  // Without its relay the endpoint would get nothing: if Temporal refuses, the endpoint was never created.
  await startOrUndo(() => wakeRelay(deps, c.tenantId), () => destroyWithAudit(endpoint, audit));
  return { endpoint, secret };
}

export async function updateEndpoint(deps: CommandDeps, c: Caller, catalogue: readonly { type: string }[], id: string, patch: Schemas['WebhookEndpointPatch']) {
  if (patch.url !== undefined) await checkEndpointUrl(deps, patch.url);
  const eventTypes = patch.eventTypes && checkEventTypes(catalogue, patch.eventTypes);
  const endpoint = await deps.sequelize.transaction(async (transaction) => {
    const row = await findEndpoint(c.tenantId, id, { transaction, lock: transaction.LOCK.UPDATE });
    const before = presentWebhookEndpoint(row);
    row.set({
      ...(patch.url !== undefined ? { url: patch.url } : {}), ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(eventTypes ? { eventTypes } : {}), ...(patch.enabled !== undefined ? { enabled: patch.enabled, disabledReason: null } : {}),
    });
    await row.save({ transaction });
    await recordAudit({ ...auditBy(c), action: 'webhooks.endpoint.updated', entityType: 'webhook_endpoint', entityId: id, before, after: presentWebhookEndpoint(row) }, transaction);
    return row;
  });
  if (endpoint.enabled) await wakeRelay(deps, c.tenantId);
  return endpoint;
}

export async function deleteEndpoint(deps: CommandDeps, c: Caller, id: string): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const row = await findEndpoint(c.tenantId, id, { transaction, lock: transaction.LOCK.UPDATE });
    await recordAudit({ ...auditBy(c), action: 'webhooks.endpoint.deleted', entityType: 'webhook_endpoint', entityId: id, before: presentWebhookEndpoint(row) }, transaction);
    // Its deliveries go with it (ON DELETE CASCADE); its delivery workflow finds it gone and ends.
    await row.destroy({ transaction });
  });
}

/** One signed POST of a synthetic `webhook.test` event, now, from the API: its outcome, not retried, not logged as a delivery. */
export async function testEndpoint(deps: CommandDeps, c: Caller, id: string): Promise<Schemas['WebhookTestResult']> {
  const endpoint = await findEndpoint(c.tenantId, id);
  const webhookId = uuidv7();
  const sent = await sendStandardWebhook({
    url: endpoint.url, secrets: activeSecrets(endpoint, deps.config.secretsKey), id: webhookId, type: 'webhook.test', timestamp: new Date(),
    data: { endpointId: endpoint.id }, timeoutMs: deps.config.webhookTimeoutMs, allowPrivateNetworks: deps.config.outboundAllowPrivateNetworks,
  });
  return { webhookId, delivered: sent.delivered, statusCode: sent.statusCode, durationMs: sent.durationMs, response: sent.response, error: sent.error };
}

/** A new secret; the previous one signs too for `overlapHours` (both signatures in webhook-signature). */
export async function rotateSecret(deps: CommandDeps, c: Caller, id: string, overlapHours: number) {
  const secret = newWebhookSecret();
  const endpoint = await deps.sequelize.transaction(async (transaction) => {
    const row = await findEndpoint(c.tenantId, id, { transaction, lock: transaction.LOCK.UPDATE });
    row.set({
      previousSecret: overlapHours > 0 ? row.secret : null, previousSecretExpiresAt: overlapHours > 0 ? new Date(Date.now() + overlapHours * 3600_000) : null,
      secret: sealSecret(secret, deps.config.secretsKey),
    });
    await row.save({ transaction });
    await recordAudit({ ...auditBy(c), action: 'webhooks.endpoint.secret_rotated', entityType: 'webhook_endpoint', entityId: id, after: { overlapHours } }, transaction);
    return row;
  });
  return { endpoint, secret };
}

export const REPLAY_MAX_DAYS = 31;
export const REPLAY_MAX_EVENTS = 10_000;

/**
 * New deliveries (keyed by the replay, so they do not collide with the first ones) of the endpoint's matching
 * events in [since, until), bounded in time and count, due now; the endpoint's delivery workflow is woken for them
 * (should that wake be lost, the relay wakes it when it sees them overdue).
 */
export async function replayEndpoint(deps: CommandDeps, c: Caller, id: string, range: { since: string; until: string }): Promise<number> {
  const since = new Date(range.since);
  const until = new Date(range.until);
  if (since >= until) throw new ApiError(422, 'INVALID_RANGE', '`since` must be before `until`');
  if (until.getTime() - since.getTime() > REPLAY_MAX_DAYS * 86_400_000) throw new ApiError(422, 'RANGE_TOO_LARGE', `A replay covers at most ${REPLAY_MAX_DAYS} days`);
  const replayId = uuidv7();
  const count = await deps.sequelize.transaction(async (transaction) => {
    const endpoint = await findEndpoint(c.tenantId, id, { transaction, lock: transaction.LOCK.SHARE });
    if (!endpoint.enabled) throw new ApiError(409, 'INVALID_STATE', 'The endpoint is disabled: enable it first');
    // One more than allowed tells "too many" without reading them all.
    const events = await deps.sequelize.query<{ id: string; type: string }>(
      `SELECT e.id, e.type FROM events e, (SELECT $2::text[] AS event_types) ep
       WHERE e.tenant_id = $1 AND e.occurred_at >= $3 AND e.occurred_at < $4 AND ${PATTERN_MATCH_SQL} ORDER BY e.id LIMIT ${REPLAY_MAX_EVENTS + 1}`,
      { bind: [c.tenantId, endpoint.eventTypes, since, until], type: QueryTypes.SELECT, transaction },
    );
    if (events.length > REPLAY_MAX_EVENTS) throw new ApiError(422, 'RANGE_TOO_LARGE', `The range holds over ${REPLAY_MAX_EVENTS} matching events: replay a shorter one`);
    const now = new Date();
    const retryUntil = new Date(now.getTime() + retrySchedule(deps).giveUpAfterMs);
    await WebhookDelivery.bulkCreate(events.map((e) => ({
      id: uuidv7(), tenantId: c.tenantId, endpointId: id, eventId: e.id, eventType: e.type, deliveryKey: `${id}:${e.id}:${replayId}`, status: 'pending' as const,
      nextAttemptAt: now, retryUntil, createdAt: now, updatedAt: now,
    })), { transaction });
    await recordAudit({ ...auditBy(c), action: 'webhooks.endpoint.replayed', entityType: 'webhook_endpoint', entityId: id, after: { since: range.since, until: range.until, deliveries: events.length } }, transaction);
    return events.length;
  });
  if (count) await wakeEndpointWorkflow(deps.temporal.client, c.tenantId, id, retrySchedule(deps), true);
  return count;
}

/**
 * A failed (still retrying) or dead delivery tried again at once with a fresh schedule (retried until WEBHOOK_GIVE_UP_HOURS
 * from now): due now, and its endpoint's delivery workflow woken (a lost wake: the relay wakes it when overdue).
 */
export async function retryDelivery(deps: CommandDeps, c: Caller, id: string): Promise<WebhookDelivery> {
  const retry = retrySchedule(deps);
  const delivery = await deps.sequelize.transaction(async (transaction) => {
    const row = await findInTenant(WebhookDelivery, c.tenantId, id, 'Webhook delivery', { transaction, lock: transaction.LOCK.UPDATE });
    // A reminder's webhook delivery is not the tenant's endpoints' to retry.
    await findEndpoint(c.tenantId, row.endpointId, { transaction }).catch(() => { throw notFound(`Webhook delivery ${id}`); });
    if (row.status !== 'failed' && row.status !== 'dead') throw new ApiError(409, 'INVALID_STATE', `The delivery is ${row.status}: only a failed or dead one is retried`);
    const now = new Date();
    await row.update({ status: 'pending', nextAttemptAt: now, retryUntil: new Date(now.getTime() + retry.giveUpAfterMs) }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'webhooks.delivery.retried', entityType: 'webhook_delivery', entityId: id, after: { endpointId: row.endpointId, eventId: row.eventId } }, transaction);
    return row;
  });
  await wakeEndpointWorkflow(deps.temporal.client, c.tenantId, delivery.endpointId, retry, true);
  return delivery;
}
