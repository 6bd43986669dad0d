// Notifications: the texts of the emails and in-app notices Docket sends — built-in defaults and a tenant's localized templates.
import { notificationRoutes } from '../../api/routes/notifications';
import { initNotificationModels } from '../../db/models/notifications';
import { defineDomain } from '../module';

export const notifications = defineDomain({
  name: 'notifications',
  models: initNotificationModels,
  routes: notificationRoutes,
});
