// Shared definitions of the audience's workflow (a subscriber export), imported by the API, the worker and the workflow.
import { CANCELLED_WRITE_PATCH, STATUS_UPSERT_PATCH } from './patches';

/** Exports run on the imports queue: its workers are the ones that read and write the audience's files. */
export { IMPORTS_TASK_QUEUE as SUBSCRIBER_EXPORTS_TASK_QUEUE } from './imports.api';
export const SUBSCRIBER_EXPORTS_DOMAIN = 'subscriber-exports';

/** The patches the API's code has, named in every subscriber export's input (workflows/patches.ts). */
export const SUBSCRIBER_EXPORT_PATCHES = [STATUS_UPSERT_PATCH, CANCELLED_WRITE_PATCH];

/** Which subscribers an export writes: the filters of GET /v1/subscribers (erased subscribers never). */
export interface SubscriberFilters {
  status?: 'active' | 'unsubscribed' | 'blocklisted' | 'bounced';
  listId?: string;
  emailPrefix?: string;
  /** `name:value` pairs: attributes equal to each. */
  attribute?: string[];
}

export interface SubscriberExportInput {
  exportId: string;
  tenantId: string;
  filters: SubscriberFilters;
  /** The patches the starting code had (SUBSCRIBER_EXPORT_PATCHES). */
  patches?: string[];
}

export interface SubscriberExportResult {
  status: 'ready' | 'failed';
  rows: number;
  fileId?: string;
  error?: string;
}
