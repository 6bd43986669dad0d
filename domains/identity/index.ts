// Identity: tenants, users, roles, API keys.
import { identityRoutes } from '../../api/routes/identity';
import { initIdentityModels } from '../../db/models/identity';
import { defineDomain } from '../module';

export const identity = defineDomain({ name: 'identity', models: initIdentityModels, routes: identityRoutes });
