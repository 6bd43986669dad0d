// Webhook endpoints (domains/webhooks): CRUD, the secret shown once, and each endpoint's deliveries with their attempts.
import { DeliveryAttempt } from '../../db/models/deliveries';
import { WebhookEndpoint } from '../../db/models/webhooks';
import { eventCatalogue } from '../../domains/events/catalogue';
import * as webhooks from '../../domains/webhooks/commands';
import { webhookDeliveryPage } from '../../domains/webhooks/delivery-page';
import { presentWebhookDelivery, presentWebhookEndpoint, presentWebhookEndpointStats } from '../../domains/webhooks/presenters';
import { endpointStats } from '../../domains/webhooks/stats';
import { page, paginate, respond } from '../conventions';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function webhookRoutes(deps: RouteDeps) {
  const catalogue = eventCatalogue(deps.contract.definition);

  return {
    async listWebhookEndpoints({ query }, ctx) {
      const result = await paginate(WebhookEndpoint, {
        where: { tenantId: caller(ctx).tenant.id, reminderId: null }, limit: query.limit, cursor: query.cursor, order: [['createdAt', 'ASC'], ['id', 'ASC']],
      });
      ctx.body = page(result, presentWebhookEndpoint);
    },

    async createWebhookEndpoint({ body }, ctx) {
      const { endpoint, secret } = await webhooks.createEndpoint(deps, commandCaller(ctx), catalogue, body);
      respond(ctx, { ...presentWebhookEndpoint(endpoint), secret }, { status: 201, location: `/v1/webhook-endpoints/${endpoint.id}` });
    },

    async getWebhookEndpoint({ params }, ctx) {
      ctx.body = presentWebhookEndpoint(await webhooks.findEndpoint(caller(ctx).tenant.id, params.endpointId));
    },

    async updateWebhookEndpoint({ params, body }, ctx) {
      ctx.body = presentWebhookEndpoint(await webhooks.updateEndpoint(deps, commandCaller(ctx), catalogue, params.endpointId, body));
    },

    async deleteWebhookEndpoint({ params }, ctx) {
      await webhooks.deleteEndpoint(deps, commandCaller(ctx), params.endpointId);
      ctx.status = 204;
    },

    async listWebhookDeliveries({ params, query }, ctx) {
      const tenantId = caller(ctx).tenant.id;
      await webhooks.findEndpoint(tenantId, params.endpointId);
      ctx.body = await webhookDeliveryPage(tenantId, [params.endpointId], query);
    },

    async listTenantWebhookDeliveries({ query }, ctx) {
      const tenantId = caller(ctx).tenant.id;
      // The tenant's own endpoints (a reminder's are not: read through the reminder), or the one asked for.
      const endpointIds = query.endpointId
        ? [(await webhooks.findEndpoint(tenantId, query.endpointId)).id]
        : (await WebhookEndpoint.findAll({ attributes: ['id'], where: { tenantId, reminderId: null } })).map((e) => e.id);
      ctx.body = await webhookDeliveryPage(tenantId, endpointIds, query);
    },

    async getWebhookEndpointStats({ params, query }, ctx) {
      const tenantId = caller(ctx).tenant.id;
      // A reminder's endpoint is not one of these (findEndpoint): its stats are not read here either.
      const endpoint = await webhooks.findEndpoint(tenantId, params.endpointId);
      const stats = await endpointStats(deps.sequelize, tenantId, endpoint.id, query.days ?? 30);
      ctx.body = presentWebhookEndpointStats(endpoint.id, stats);
    },

    async testWebhookEndpoint({ params }, ctx) {
      ctx.body = await webhooks.testEndpoint(deps, commandCaller(ctx), params.endpointId);
    },

    async rotateWebhookSecret({ params, body }, ctx) {
      const { endpoint, secret } = await webhooks.rotateSecret(deps, commandCaller(ctx), params.endpointId, body?.overlapHours ?? 24);
      ctx.body = { ...presentWebhookEndpoint(endpoint), secret };
    },

    async replayWebhookEndpoint({ params, body }, ctx) {
      respond(ctx, { deliveries: await webhooks.replayEndpoint(deps, commandCaller(ctx), params.endpointId, body) }, { status: 202 });
    },

    async retryWebhookDelivery({ params }, ctx) {
      const delivery = await webhooks.retryDelivery(deps, commandCaller(ctx), params.deliveryId);
      const attempts = await DeliveryAttempt.findAll({ where: { tenantId: delivery.tenantId, deliveryKey: delivery.id }, order: [['attempt', 'ASC'], ['id', 'ASC']] });
      respond(ctx, presentWebhookDelivery(delivery, attempts), { status: 202 });
    },
  } satisfies RouteHandlers;
}
