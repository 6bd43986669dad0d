// Subscribers and lists (domains/audience): filters, pages, bulk members, erase.
import { Subscriber, SubscriberList } from '../../db/models/audience';
import * as audience from '../../domains/audience/commands';
import { presentList, presentSubscriber } from '../../domains/audience/presenters';
import { page, paginate, respond } from '../conventions';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function audienceRoutes(deps: RouteDeps) {
  return {
    async listSubscribers({ query }, ctx) {
      // `attribute` repeats (explode): one or several name:value pairs, a single one possibly not in an array.
      const attribute = [query.attribute ?? []].flat();
      const where = audience.subscriberWhere(deps.sequelize, caller(ctx).tenant.id, { status: query.status, listId: query.listId, emailPrefix: query.emailPrefix, attribute });
      ctx.body = page(await paginate(Subscriber, { where, limit: query.limit, cursor: query.cursor }), presentSubscriber);
    },
    async createSubscriber({ body }, ctx) {
      const s = await audience.createSubscriber(deps, commandCaller(ctx), body);
      respond(ctx, presentSubscriber(s), { status: 201, location: `/v1/subscribers/${s.id}` });
    },
    async getSubscriber({ params }, ctx) {
      ctx.body = presentSubscriber(await audience.findSubscriber(caller(ctx).tenant.id, params.subscriberId));
    },
    async updateSubscriber({ params, body }, ctx) {
      ctx.body = presentSubscriber(await audience.updateSubscriber(deps, commandCaller(ctx), params.subscriberId, body));
    },
    async deleteSubscriber({ params }, ctx) {
      await audience.deleteSubscriber(deps, commandCaller(ctx), params.subscriberId);
      ctx.status = 204;
    },
    async eraseSubscriber({ params }, ctx) {
      ctx.body = presentSubscriber(await audience.eraseSubscriberData(deps, commandCaller(ctx), params.subscriberId));
    },
    async listLists({ query }, ctx) {
      const where = audience.listWhere(caller(ctx).tenant.id, { namePrefix: query.namePrefix });
      const lists = await paginate(SubscriberList, { where, limit: query.limit, cursor: query.cursor, order: [['name', 'ASC'], ['id', 'ASC']], attributes: audience.LIST_ATTRIBUTES });
      ctx.body = page(lists, presentList);
    },
    async createList({ body }, ctx) {
      const l = await audience.createList(deps, commandCaller(ctx), body);
      respond(ctx, presentList(l), { status: 201, location: `/v1/lists/${l.id}` });
    },
    async getList({ params }, ctx) {
      ctx.body = presentList(await audience.findList(caller(ctx).tenant.id, params.listId));
    },
    async updateList({ params, body }, ctx) {
      ctx.body = presentList(await audience.updateList(deps, commandCaller(ctx), params.listId, body));
    },
    async deleteList({ params }, ctx) {
      await audience.deleteList(deps, commandCaller(ctx), params.listId);
      ctx.status = 204;
    },
    async addListMembers({ params, body }, ctx) {
      ctx.body = await audience.addListMembers(deps, commandCaller(ctx), params.listId, body);
    },
    async removeListMembers({ params, body }, ctx) {
      ctx.body = await audience.removeListMembers(deps, commandCaller(ctx), params.listId, body);
    },
  } satisfies RouteHandlers;
}
