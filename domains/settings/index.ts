// Settings: the tenant's own knobs (sending limits, which every campaign sends within).
import { settingsRoutes } from '../../api/routes/settings';
import { initSettingsModels } from '../../db/models/settings';
import { defineDomain } from '../module';

export const settings = defineDomain({
  name: 'settings',
  models: initSettingsModels,
  routes: settingsRoutes,
});
