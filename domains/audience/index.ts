// Audience: subscribers and lists (what campaigns send to), with filters, bulk members, erase and exports.
import { createAudienceActivities } from '../../activities/audience';
import { audienceRoutes } from '../../api/routes/audience';
import { initAudienceModels } from '../../db/models/audience';
import { defineDomain } from '../module';

export const audience = defineDomain({
  name: 'audience',
  models: initAudienceModels,
  // Its export runs on the imports queue (workflows/audience.api.ts), so it declares no queue of its own.
  activities: createAudienceActivities,
  attempts: { writeSubscriberExport: 20 },
  startIntents: { subscriberExportWorkflow: { table: 'subscriber_exports', entityType: 'subscriber_export', waiting: "status = 'queued'" } },
  routes: audienceRoutes,
});
