// Subscribers, lists and segments (domains/audience): filters, pages, bulk members, erase, segment previews, exports.
import { Segment, Subscriber, SubscriberExport, SubscriberList } from '../../db/models/audience';
import * as audience from '../../domains/audience/commands';
import { deleteSubscriberExport, presentSubscriberExport, requestSubscriberExport } from '../../domains/audience/exports';
import { presentList, presentSegment, presentSegmentPreview, presentSubscriber } from '../../domains/audience/presenters';
import * as segments from '../../domains/audience/segments';
import { ApiError } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { accepted, downloadWhenReady } from '../async-jobs';
import { ifMatch, page, paginate, respond, versionEtag } from '../conventions';
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
      const s = await audience.eraseSubscriberData(deps, commandCaller(ctx), params.subscriberId);
      // A subscriber deleted earlier has no row left to show: what named it is erased all the same.
      if (s) ctx.body = presentSubscriber(s);
      else ctx.status = 204;
    },
    async createSubscriberExport({ body }, ctx) {
      const x = await requestSubscriberExport(deps, commandCaller(ctx), body ?? {});
      accepted(ctx, presentSubscriberExport(x), `/v1/subscriber-exports/${x.id}`);
    },
    async listSubscriberExports({ query }, ctx) {
      ctx.body = page(await paginate(SubscriberExport, { where: { tenantId: caller(ctx).tenant.id }, limit: query.limit, cursor: query.cursor }), presentSubscriberExport);
    },
    async deleteSubscriberExport({ params }, ctx) {
      await deleteSubscriberExport(deps, commandCaller(ctx), params.exportId);
      ctx.status = 204;
    },
    async getSubscriberExport({ params }, ctx) {
      ctx.body = presentSubscriberExport(await findInTenant(SubscriberExport, caller(ctx).tenant.id, params.exportId, 'Subscriber export'));
    },
    async downloadSubscriberExport({ params }, ctx) {
      const x = await findInTenant(SubscriberExport, caller(ctx).tenant.id, params.exportId, 'Subscriber export');
      await downloadWhenReady(ctx, deps.blobs, x, () => new ApiError(409, 'EXPORT_NOT_READY', `The export is ${x.status}; download it once it is ready`));
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

    async listSegments({ query }, ctx) {
      const where = audience.listWhere(caller(ctx).tenant.id, { namePrefix: query.namePrefix });
      ctx.body = page(await paginate(Segment, { where, limit: query.limit, cursor: query.cursor, order: [['name', 'ASC'], ['id', 'ASC']] }), presentSegment);
    },
    async createSegment({ body }, ctx) {
      const s = await segments.createSegment(deps, commandCaller(ctx), body);
      respond(ctx, presentSegment(s), { status: 201, location: `/v1/segments/${s.id}`, etag: versionEtag(s.version) });
    },
    async getSegment({ params }, ctx) {
      const s = await segments.findSegment(caller(ctx).tenant.id, params.segmentId);
      respond(ctx, presentSegment(s), { etag: versionEtag(s.version) });
    },
    async updateSegment({ params, body }, ctx) {
      const s = await segments.updateSegment(deps, commandCaller(ctx), params.segmentId, body, ifMatch(ctx));
      respond(ctx, presentSegment(s), { etag: versionEtag(s.version) });
    },
    async deleteSegment({ params }, ctx) {
      await segments.deleteSegment(deps, commandCaller(ctx), params.segmentId, ifMatch(ctx));
      ctx.status = 204;
    },
    async previewSegment({ params }, ctx) {
      const tenantId = caller(ctx).tenant.id;
      const s = await segments.findSegment(tenantId, params.segmentId);
      const preview = await segments.previewSegment(deps.sequelize, tenantId, segments.validateSegmentRules(s.rules), { budgetMs: deps.config.segments.previewBudgetMs });
      ctx.body = presentSegmentPreview(preview);
    },
    async previewSegmentRules({ body }, ctx) {
      const tenantId = caller(ctx).tenant.id;
      const rules = await segments.checkSegmentRules(deps.sequelize, tenantId, body.rules);
      const preview = await segments.previewSegment(deps.sequelize, tenantId, rules, { budgetMs: deps.config.segments.previewBudgetMs });
      ctx.body = presentSegmentPreview(preview);
    },
  } satisfies RouteHandlers;
}
