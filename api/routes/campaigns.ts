// Campaigns (domains/campaigns): CRUD of drafts, send or schedule, pause/resume/cancel, retry failed, test sends,
// per-recipient deliveries, and the public one-click unsubscribe page and POST.
import type { WhereOptions } from 'sequelize';
import { Campaign, CampaignRecipient } from '../../db/models/campaigns';
import {
  controlCampaign, createCampaign, deleteCampaign, findCampaign, openUnsubscribe, plainSubject, retryFailed, sendCampaign, testSend, unsubscribeByLink, updateCampaign,
} from '../../domains/campaigns/commands';
import { presentCampaign, presentDelivery, SUBSCRIBER_DATA_PERMISSION } from '../../domains/campaigns/presenters';
import { accepted } from '../async-jobs';
import { ifMatch, page, paginate, respond, versionEtag } from '../conventions';
import { esc, htmlPage } from '../pages';
import { caller, commandCaller, linkUse, RouteDeps, RouteHandlers } from '../types';

export function campaignRoutes(deps: RouteDeps) {
  const show = (c: Campaign) => ({ body: presentCampaign(c), etag: versionEtag(c.version) });

  return {
    async listCampaigns({ query }, ctx) {
      const where: WhereOptions = query.status ? { tenantId: caller(ctx).tenant.id, status: query.status } : { tenantId: caller(ctx).tenant.id };
      ctx.body = page(await paginate(Campaign, { where, limit: query.limit, cursor: query.cursor }), presentCampaign);
    },
    async createCampaign({ body }, ctx) {
      const c = await createCampaign(deps, commandCaller(ctx), body);
      respond(ctx, presentCampaign(c), { status: 201, location: `/v1/campaigns/${c.id}`, etag: versionEtag(c.version) });
    },
    async getCampaign({ params }, ctx) {
      const { body, etag } = show(await findCampaign(caller(ctx).tenant.id, params.campaignId));
      respond(ctx, body, { etag });
    },
    async updateCampaign({ params, body }, ctx) {
      const { body: out, etag } = show(await updateCampaign(deps, commandCaller(ctx), params.campaignId, body, ifMatch(ctx)));
      respond(ctx, out, { etag });
    },
    async deleteCampaign({ params }, ctx) {
      await deleteCampaign(deps, commandCaller(ctx), params.campaignId, ifMatch(ctx));
      ctx.status = 204;
    },
    async sendCampaign({ params, body }, ctx) {
      const c = await sendCampaign(deps, commandCaller(ctx), params.campaignId, body ?? {}, ifMatch(ctx));
      accepted(ctx, presentCampaign(c), `/v1/campaigns/${c.id}`);
    },
    async pauseCampaign({ params }, ctx) {
      ctx.body = presentCampaign(await controlCampaign(deps, commandCaller(ctx), params.campaignId, 'pause'));
    },
    async resumeCampaign({ params }, ctx) {
      ctx.body = presentCampaign(await controlCampaign(deps, commandCaller(ctx), params.campaignId, 'resume'));
    },
    async cancelCampaign({ params }, ctx) {
      ctx.body = presentCampaign(await controlCampaign(deps, commandCaller(ctx), params.campaignId, 'cancel'));
    },
    async retryFailedCampaignRecipients({ params }, ctx) {
      const { campaign, requeued } = await retryFailed(deps, commandCaller(ctx), params.campaignId);
      accepted(ctx, { requeued, campaign: presentCampaign(campaign) }, `/v1/campaigns/${campaign.id}`);
    },
    async testCampaign({ params, body }, ctx) {
      ctx.body = await testSend(deps, commandCaller(ctx), params.campaignId, body);
    },
    async listCampaignDeliveries({ params, query }, ctx) {
      const auth = caller(ctx);
      const c = await findCampaign(auth.tenant.id, params.campaignId);
      const where: WhereOptions = query.status ? { campaignId: c.id, status: query.status } : { campaignId: c.id };
      // The recipients' addresses are subscriber data: only for a caller who may read subscribers (as a test send's merge data).
      const addresses = auth.permissions.has(SUBSCRIBER_DATA_PERMISSION);
      ctx.body = page(await paginate(CampaignRecipient, { where, limit: query.limit, cursor: query.cursor, order: [['n', 'ASC']] }), (r) => presentDelivery(r, { addresses }));
    },

    async viewUnsubscribe({ params }, ctx) {
      const link = await openUnsubscribe(deps, params.token, linkUse(ctx, params.token));
      if ('invalid' in link) return htmlPage(ctx, 404, 'This link is not valid', '<p>Check that the whole link was copied.</p>');
      if (!link.subscriber || link.subscriber.status !== 'active') return htmlPage(ctx, 200, 'You are unsubscribed', '<p>You will not receive these emails any more.</p>');
      const subject = plainSubject(link);
      htmlPage(ctx, 200, 'Unsubscribe?', `<p>Stop ${subject ? `emails like “${esc(subject)}”` : 'these emails'} to ${esc(link.subscriber.email)}.</p>`
        + '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><p><button type="submit">Unsubscribe</button></p></form>');
    },
    async confirmUnsubscribe({ params }, ctx) {
      const link = await openUnsubscribe(deps, params.token, linkUse(ctx, params.token));
      if ('invalid' in link) return htmlPage(ctx, 404, 'This link is not valid', '<p>Check that the whole link was copied.</p>');
      await unsubscribeByLink(deps, link);
      htmlPage(ctx, 200, 'You are unsubscribed', '<p>You will not receive these emails any more.</p>');
    },
  } satisfies RouteHandlers;
}
