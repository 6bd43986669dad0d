// Shared definitions of the audience's workflow (a subscriber export), imported by the API, the worker and the workflow.

/** Exports run on the imports queue: its workers are the ones that read and write the audience's files. */
export { IMPORTS_TASK_QUEUE as SUBSCRIBER_EXPORTS_TASK_QUEUE } from './imports.api';
export const SUBSCRIBER_EXPORTS_DOMAIN = 'subscriber-exports';

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
}

export interface SubscriberExportResult {
  status: 'ready' | 'failed';
  rows: number;
  fileId?: string;
  error?: string;
}
