// Purchasing: purchase orders, approved through an approval flow, with their PDF once approved.
import { purchasingRoutes } from '../../api/routes/purchasing';
import { initPurchasingModels } from '../../db/models/purchasing';
import { defineDomain } from '../module';

export const purchasing = defineDomain({ name: 'purchasing', models: initPurchasingModels, routes: purchasingRoutes });
