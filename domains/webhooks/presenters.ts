// Webhook endpoints and deliveries → API JSON. The signing secret never leaves (only create and rotate show one).
import type { DeliveryAttempt } from '../../db/models/deliveries';
import type { WebhookDelivery, WebhookEndpoint } from '../../db/models/webhooks';
import type { Schemas } from '../schemas';
import type { WebhookEndpointStats } from './stats';

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
  lastAttemptAt: iso(d.lastAttemptAt), lastStatusCode: d.lastStatusCode ?? null,
  nextAttemptAt: d.status === 'pending' || d.status === 'failed' ? iso(d.nextAttemptAt) : null, retryUntil: d.retryUntil.toISOString(), deliveredAt: iso(d.deliveredAt), createdAt: d.createdAt.toISOString(),
  attemptLog: attempts.map(presentAttempt),
});

export const presentWebhookEndpointStats = (endpointId: string, s: WebhookEndpointStats): Schemas['WebhookEndpointStats'] => ({
  endpointId, since: s.since.toISOString(), deliveries: s.deliveries, attempts: s.attempts,
  lastDeliveredAt: s.lastDeliveredAt ? new Date(s.lastDeliveredAt).toISOString() : null, lastFailedAt: s.lastFailedAt ? new Date(s.lastFailedAt).toISOString() : null,
});
