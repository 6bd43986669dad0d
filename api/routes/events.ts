// Domain events: the catalogue (from the contract) and the tenant's events, filtered and paged.
import { Op, WhereOptions } from 'sequelize';
import { DomainEvent } from '../../db/models/events';
import { eventCatalogue, typesMatching } from '../../domains/events/catalogue';
import { presentEvent } from '../../domains/events/presenters';
import { ApiError, validationFailed } from '../../lib/problems';
import { page, paginate } from '../conventions';
import { caller, RouteDeps, RouteHandlers } from '../types';

export function eventRoutes(deps: RouteDeps) {
  const catalogue = eventCatalogue(deps.contract.definition);

  return {
    async listEventTypes(_input, ctx) {
      ctx.body = { items: catalogue };
    },

    async listEvents({ query }, ctx) {
      const where: Record<string | symbol, unknown> = { tenantId: caller(ctx).tenant.id };
      if (query.type) {
        const types = typesMatching(catalogue, query.type);
        if (!types.length) throw validationFailed([{ path: '/query/type', message: `names no event type (GET /v1/event-types lists them): ${query.type}` }]);
        where.type = types;
      }
      if (query.subjectId) where.subjectId = query.subjectId;
      if (query.since && query.until && new Date(query.since) >= new Date(query.until)) throw new ApiError(422, 'INVALID_RANGE', '`since` must be before `until`');
      if (query.since || query.until) {
        where.occurredAt = { ...(query.since ? { [Op.gte]: new Date(query.since) } : {}), ...(query.until ? { [Op.lt]: new Date(query.until) } : {}) };
      }
      const result = await paginate(DomainEvent, {
        where: where as WhereOptions, limit: query.limit, cursor: query.cursor, order: [['id', query.order === 'asc' ? 'ASC' : 'DESC']],
      });
      ctx.body = page(result, presentEvent);
    },
  } satisfies RouteHandlers;
}
