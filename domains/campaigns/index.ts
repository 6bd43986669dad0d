// Campaigns: one email to an audience (lists and segments minus exclusions), sent by a durable workflow per campaign
// with per-recipient bookkeeping, pause/resume/cancel, retries of failed recipients and one-click unsubscribe; and the
// sender domains its From addresses must be at.
import { createCampaignActivities } from '../../activities/campaigns';
import { campaignRoutes } from '../../api/routes/campaigns';
import { senderDomainRoutes } from '../../api/routes/sender-domains';
import { initCampaignModels } from '../../db/models/campaigns';
import { initSenderDomainModels } from '../../db/models/sender-domains';
import { CAMPAIGNS_TASK_QUEUE } from '../../workflows/campaigns.api';
import { defineDomain } from '../module';

export const campaigns = defineDomain({
  name: 'campaigns',
  models: (sequelize) => { initCampaignModels(sequelize); initSenderDomainModels(sequelize); },
  queues: { campaigns: CAMPAIGNS_TASK_QUEUE },
  activities: createCampaignActivities,
  attempts: { sendCampaignChunk: 20, snapshotCampaign: 20, endCampaign: 20, controlCampaign: 20 },
  // A run is recorded (send, schedule, retry failed) with its run_started_at unset; its workflow's first step sets it.
  // Retries are new runs of the same workflow id, so a closed earlier run does not count as this run's start.
  startIntents: { campaignWorkflow: { table: 'campaigns', entityType: 'campaign', waiting: "status IN ('scheduled', 'running') AND run_started_at IS NULL", runs: true } },
  routes: (deps) => ({ ...campaignRoutes(deps), ...senderDomainRoutes(deps) }),
});
