// Events: the outbox of domain events every change writes with itself (lib/events.ts), and its catalogue.
import { eventRoutes } from '../../api/routes/events';
import { initEventModels } from '../../db/models/events';
import { defineDomain } from '../module';

export const events = defineDomain({
  name: 'events',
  models: initEventModels,
  routes: eventRoutes,
});
