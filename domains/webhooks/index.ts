// Webhooks: endpoints that receive the tenant's domain events, signed (Standard Webhooks), retried and logged.
import { createWebhookActivities } from '../../activities/webhooks';
import { webhookRoutes } from '../../api/routes/webhooks';
import { initWebhookModels } from '../../db/models/webhooks';
import { WEBHOOKS_TASK_QUEUE } from '../../workflows/webhooks.api';
import { defineDomain } from '../module';

export const webhooks = defineDomain({
  name: 'webhooks',
  models: initWebhookModels,
  queues: { webhooks: WEBHOOKS_TASK_QUEUE },
  activities: createWebhookActivities,
  // Never given up by count: an endpoint's round and the relay are retried until they run (a delivery's own schedule
  // gives up after WEBHOOK_GIVE_UP_HOURS; the pre-0023 per-delivery workflow's retry policy bounds its attempt).
  attempts: { attemptWebhookDelivery: 0, relayWebhookEvents: 0, sendDueWebhookDeliveries: 0 },
  routes: webhookRoutes,
});
