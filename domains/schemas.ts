// Request and response types, generated from openapi.yaml (npm run gen:types) — never written twice.
import type { components } from '../api/generated/openapi';

export type Schemas = components['schemas'];
