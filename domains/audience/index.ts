// Audience: subscribers and lists (what campaigns send to), with filters, bulk members and erase.
import { audienceRoutes } from '../../api/routes/audience';
import { initAudienceModels } from '../../db/models/audience';
import { defineDomain } from '../module';

export const audience = defineDomain({
  name: 'audience',
  models: initAudienceModels,
  routes: audienceRoutes,
});
