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
  // Their workflows' retry policies bound them (a delivery gives up after WEBHOOK_GIVE_UP_HOURS; the relay never does).
  attempts: { attemptWebhookDelivery: 0, relayWebhookEvents: 0 },
  routes: webhookRoutes,
});
