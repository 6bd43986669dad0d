// Webhook endpoint commands: register (the secret shown once), change, remove — each audited — and wake the
// tenant's relay so it reads the outbox for the endpoint.
import { v7 as uuidv7 } from 'uuid';
import { WebhookEndpoint } from '../../db/models/webhooks';
import { createWithAudit, destroyWithAudit, recordAudit } from '../../lib/audit';
import { assertPublicDestination, OutboundBlockedError } from '../../lib/notify/outbound';
import { newWebhookSecret } from '../../lib/notify/standard-webhooks';
import { ApiError } from '../../lib/problems';
import { sealSecret } from '../../lib/secrets';
import { startOrUndo } from '../../lib/temporal';
import { findInTenant } from '../../lib/tenancy';
import type { webhookRelayWorkflow } from '../../workflows/webhooks';
import { pokeRelay, RELAY_ENTITY_ID, WEBHOOKS_DOMAIN, WEBHOOKS_TASK_QUEUE, type WebhookRetrySchedule } from '../../workflows/webhooks.api';
import { businessWorkflowId, ENTITY_ID, ENTITY_TYPE, STATUS, TENANT_ID } from '../../workflows/search-attributes';
import { auditBy, Caller, CommandDeps } from '../command';
import { typesMatching } from '../events/catalogue';
import type { Schemas } from '../schemas';
import { presentWebhookEndpoint } from './presenters';

export function retrySchedule(deps: CommandDeps): WebhookRetrySchedule {
  const w = deps.config.webhooks;
  return { initialIntervalMs: w.retryInitialMs, maxIntervalMs: w.retryMaxMs, giveUpAfterMs: w.giveUpHours * 3600_000, attemptTimeoutMs: deps.config.webhookTimeoutMs };
}

/**
 * https only (http where private networks are allowed, i.e. development), and never a private, loopback or
 * link-local destination: asked of the SSRF classifier the deliveries go through (lib/notify/outbound.ts), which
 * connects to nothing. Each delivery checks again on the address it connects to (DNS may change).
 */
export async function checkEndpointUrl(deps: CommandDeps, url: string): Promise<void> {
  const allowPrivate = deps.config.outboundAllowPrivateNetworks;
  const scheme = new URL(url).protocol;
  if (scheme !== 'https:' && !(scheme === 'http:' && allowPrivate)) {
    throw new ApiError(422, 'URL_NOT_ALLOWED', 'The URL must be https (http only where OUTBOUND_ALLOW_PRIVATE_NETWORKS=true, for development)', { errors: [{ path: '/requestBody/url', message: 'must be https' }] });
  }
  if (allowPrivate) return;
  try {
    await assertPublicDestination(url);
  } catch (err) {
    const why = err instanceof OutboundBlockedError ? err.message : `its host could not be resolved (${(err as Error).message})`;
    throw new ApiError(422, 'URL_NOT_ALLOWED', `The URL is not a public destination: ${why}`, { errors: [{ path: '/requestBody/url', message: why }] });
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
  const ref = { domain: WEBHOOKS_DOMAIN, tenantId, entityId: RELAY_ENTITY_ID };
  await deps.temporal.client.workflow.signalWithStart<typeof webhookRelayWorkflow, []>('webhookRelayWorkflow', {
    workflowId: businessWorkflowId(ref), taskQueue: WEBHOOKS_TASK_QUEUE, signal: pokeRelay, signalArgs: [],
    args: [{ tenantId, everyMs: deps.config.webhooks.relayEveryMs, retry: retrySchedule(deps) }],
    typedSearchAttributes: [{ key: TENANT_ID, value: tenantId }, { key: ENTITY_TYPE, value: 'webhook_relay' }, { key: ENTITY_ID, value: RELAY_ENTITY_ID }, { key: STATUS, value: 'running' }],
  });
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
    const row = await findInTenant(WebhookEndpoint, c.tenantId, id, 'Webhook endpoint', { transaction, lock: transaction.LOCK.UPDATE });
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
    const row = await findInTenant(WebhookEndpoint, c.tenantId, id, 'Webhook endpoint', { transaction, lock: transaction.LOCK.UPDATE });
    await recordAudit({ ...auditBy(c), action: 'webhooks.endpoint.deleted', entityType: 'webhook_endpoint', entityId: id, before: presentWebhookEndpoint(row) }, transaction);
    // Its deliveries go with it (ON DELETE CASCADE); their workflows find nothing to send and end.
    await row.destroy({ transaction });
  });
}
