// Files: the tenant's file store.
import { fileRoutes } from '../../api/routes/files';
import { initFileModels } from '../../db/models/files';
import { defineDomain } from '../module';

export const files = defineDomain({ name: 'files', models: initFileModels, routes: fileRoutes });
