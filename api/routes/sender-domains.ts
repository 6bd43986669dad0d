// Sender domains (domains/campaigns/sender-domains.ts): add a domain, publish its TXT record, verify it; campaigns
// send From verified domains only.
import type { WhereOptions } from 'sequelize';
import { SenderDomain } from '../../db/models/sender-domains';
import {
  createSenderDomain, deleteSenderDomain, findSenderDomain, presentSenderDomain, verifySenderDomain,
} from '../../domains/campaigns/sender-domains';
import { page, paginate, respond } from '../conventions';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function senderDomainRoutes(deps: RouteDeps) {
  return {
    async listSenderDomains({ query }, ctx) {
      const tenantId = caller(ctx).tenant.id;
      const where: WhereOptions = query.status ? { tenantId, status: query.status } : { tenantId };
      ctx.body = page(await paginate(SenderDomain, { where, limit: query.limit, cursor: query.cursor }), presentSenderDomain);
    },
    async createSenderDomain({ body }, ctx) {
      const d = await createSenderDomain(deps, commandCaller(ctx), body);
      respond(ctx, presentSenderDomain(d), { status: 201, location: `/v1/sender-domains/${d.id}` });
    },
    async getSenderDomain({ params }, ctx) {
      ctx.body = presentSenderDomain(await findSenderDomain(caller(ctx).tenant.id, params.senderDomainId));
    },
    async verifySenderDomain({ params }, ctx) {
      ctx.body = presentSenderDomain(await verifySenderDomain(deps, commandCaller(ctx), params.senderDomainId));
    },
    async deleteSenderDomain({ params }, ctx) {
      await deleteSenderDomain(deps, commandCaller(ctx), params.senderDomainId);
      ctx.status = 204;
    },
  } satisfies RouteHandlers;
}
