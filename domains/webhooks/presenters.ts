// Webhook endpoints and deliveries → API JSON (and the page of deliveries an endpoint's and a reminder's logs show).
// The signing secret never leaves (only create and rotate show one).
import { DeliveryAttempt } from '../../db/models/deliveries';
import { WebhookDelivery, type WebhookDeliveryStatus, type WebhookEndpoint } from '../../db/models/webhooks';
import { page, paginate } from '../../api/conventions';
import type { Schemas } from '../schemas';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const presentWebhookEndpoint = (e: WebhookEndpoint): Schemas['WebhookEndpoint'] => ({
  id: e.id, url: e.url, description: e.description, eventTypes: e.eventTypes, enabled: e.enabled, disabledReason: e.disabledReason,
  secretRotatingUntil: e.previousSecretExpiresAt && e.previousSecretExpiresAt > new Date() ? e.previousSecretExpiresAt.toISOString() : null,
  createdAt: e.createdAt.toISOString(), updatedAt: e.updatedAt.toISOString(),
});

const presentAttempt = (a: DeliveryAttempt): Schemas['WebhookAttempt'] => ({
  attempt: a.attempt, at: a.at.toISOString(), outcome: a.status === 'sent' ? 'delivered' : 'failed',
  statusCode: (a.detail?.statusCode as number | null | undefined) ?? null, durationMs: a.durationMs,
  response: (a.detail?.response as string | null | undefined) ?? null, error: a.error,
});

export const presentWebhookDelivery = (d: WebhookDelivery, attempts: DeliveryAttempt[]): Schemas['WebhookDelivery'] => ({
  id: d.id, endpointId: d.endpointId, eventId: d.eventId, eventType: d.eventType, status: d.status, attempts: d.attempts,
  lastAttemptAt: iso(d.lastAttemptAt), lastStatusCode: d.lastStatusCode ?? null, deliveredAt: iso(d.deliveredAt), createdAt: d.createdAt.toISOString(),
  attemptLog: attempts.map(presentAttempt),
});

/** The deliveries of some endpoints, newest first, each with its attempts (an endpoint's log; a reminder's webhooks'). */
export async function webhookDeliveryPage(tenantId: string, endpointIds: string[], query: { limit?: number; cursor?: string; status?: WebhookDeliveryStatus }) {
  const result = await paginate(WebhookDelivery, {
    where: { tenantId, endpointId: endpointIds, ...(query.status ? { status: query.status } : {}) },
    limit: query.limit, cursor: query.cursor, order: [['id', 'DESC']],
  });
  const attempts = result.items.length
    ? await DeliveryAttempt.findAll({ where: { tenantId, deliveryKey: result.items.map((d) => d.id) }, order: [['attempt', 'ASC'], ['id', 'ASC']] })
    : [];
  return page(result, (d) => presentWebhookDelivery(d, attempts.filter((a) => a.deliveryKey === d.id)));
}
