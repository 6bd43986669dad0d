// A page of webhook deliveries with their attempts: an endpoint's log (GET /v1/webhook-endpoints/{id}/deliveries),
// the tenant's across its endpoints (GET /v1/webhook-deliveries) and a reminder's webhooks' (GET /v1/reminders/{id}/webhook-deliveries).
import { page, paginate } from '../../api/conventions';
import { DeliveryAttempt } from '../../db/models/deliveries';
import { WebhookDelivery, type WebhookDeliveryStatus } from '../../db/models/webhooks';
import { presentWebhookDelivery } from './presenters';

/** The deliveries of some endpoints, newest first, each with its attempts (an endpoint's log; a reminder's webhooks'). */
export async function webhookDeliveryPage(tenantId: string, endpointIds: string[], query: { limit?: number; cursor?: string; status?: WebhookDeliveryStatus; eventType?: string }) {
  const result = await paginate(WebhookDelivery, {
    where: { tenantId, endpointId: endpointIds, ...(query.status ? { status: query.status } : {}), ...(query.eventType ? { eventType: query.eventType } : {}) },
    limit: query.limit, cursor: query.cursor, order: [['id', 'DESC']],
  });
  const attempts = result.items.length
    ? await DeliveryAttempt.findAll({ where: { tenantId, deliveryKey: result.items.map((d) => d.id) }, order: [['attempt', 'ASC'], ['id', 'ASC']] })
    : [];
  return page(result, (d) => presentWebhookDelivery(d, attempts.filter((a) => a.deliveryKey === d.id)));
}
