// Subscribers and lists (domains/audience): filters, pages, bulk members, erase.
import * as audience from '../../domains/audience/commands';
import { presentList, presentSubscriber } from '../../domains/audience/presenters';
import { page, queryOf, respond } from '../conventions';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';

const queryList = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);

export function audienceRoutes(deps: RouteDeps): Handlers {
  const { sequelize } = deps;
  return {
    async listSubscribers(c, ctx) {
      const q = queryOf(c);
      const filters = { status: q.str('status'), listId: q.str('listId'), emailPrefix: q.str('emailPrefix'), attribute: queryList(c.request.query?.attribute) };
      ctx.body = page(await audience.listSubscribers(sequelize, caller(ctx).tenant.id, filters, { limit: q.int('limit'), cursor: q.str('cursor') }), presentSubscriber);
    },
    async createSubscriber(c, ctx) {
      const s = await audience.createSubscriber(sequelize, auditContext(ctx), c.request.requestBody as Schemas['SubscriberInput']);
      respond(ctx, presentSubscriber(s), { status: 201, location: `/v1/subscribers/${s.id}` });
    },
    async getSubscriber(c, ctx) {
      ctx.body = presentSubscriber(await audience.findSubscriber(caller(ctx).tenant.id, c.request.params.subscriberId as string));
    },
    async updateSubscriber(c, ctx) {
      ctx.body = presentSubscriber(await audience.updateSubscriber(sequelize, auditContext(ctx), c.request.params.subscriberId as string, c.request.requestBody as Schemas['SubscriberUpdate']));
    },
    async deleteSubscriber(c, ctx) {
      await audience.deleteSubscriber(sequelize, auditContext(ctx), c.request.params.subscriberId as string);
      ctx.status = 204;
    },
    async eraseSubscriber(c, ctx) {
      ctx.body = presentSubscriber(await audience.eraseSubscriberData(sequelize, auditContext(ctx), c.request.params.subscriberId as string));
    },
    async listLists(c, ctx) {
      const q = queryOf(c);
      ctx.body = page(await audience.listLists(caller(ctx).tenant.id, { namePrefix: q.str('namePrefix') }, { limit: q.int('limit'), cursor: q.str('cursor') }), presentList);
    },
    async createList(c, ctx) {
      const l = await audience.createList(sequelize, auditContext(ctx), c.request.requestBody as Schemas['SubscriberListInput']);
      respond(ctx, presentList(l), { status: 201, location: `/v1/lists/${l.id}` });
    },
    async getList(c, ctx) {
      ctx.body = presentList(await audience.findList(caller(ctx).tenant.id, c.request.params.listId as string));
    },
    async updateList(c, ctx) {
      ctx.body = presentList(await audience.updateList(sequelize, auditContext(ctx), c.request.params.listId as string, c.request.requestBody as Schemas['SubscriberListUpdate']));
    },
    async deleteList(c, ctx) {
      await audience.deleteList(sequelize, auditContext(ctx), c.request.params.listId as string);
      ctx.status = 204;
    },
    async addListMembers(c, ctx) {
      ctx.body = await audience.addListMembers(sequelize, auditContext(ctx), c.request.params.listId as string, c.request.requestBody as Schemas['ListMembersInput']);
    },
    async removeListMembers(c, ctx) {
      ctx.body = await audience.removeListMembers(sequelize, auditContext(ctx), c.request.params.listId as string, c.request.requestBody as Schemas['ListMembersInput']);
    },
  };
}
