// Subscriber exports: the audience, or the part of it GET /v1/subscribers' filters pick, written to a CSV by a
// workflow (activities/audience.ts). Anyone who may page through the subscribers may export them: it shows nothing more.
import { SubscriberExport, SubscriberList } from '../../db/models/audience';
import { ApiError } from '../../lib/problems';
import { SUBSCRIBER_EXPORTS_DOMAIN, SUBSCRIBER_EXPORTS_TASK_QUEUE, type SubscriberFilters } from '../../workflows/audience.api';
import type { Caller, CommandDeps } from '../command';
import { ExportKind, presentExport, requestExport } from '../export-jobs';
import type { Schemas } from '../schemas';

export const SUBSCRIBER_EXPORT: ExportKind = {
  model: SubscriberExport, domain: SUBSCRIBER_EXPORTS_DOMAIN, workflowType: 'subscriberExportWorkflow', taskQueue: SUBSCRIBER_EXPORTS_TASK_QUEUE,
  entityType: 'subscriber_export', requested: 'audience.export.requested',
};

/** Starts an export of the subscribers matching `filters`; its row is readable (queued) before the workflow runs. */
export async function requestSubscriberExport(deps: CommandDeps, c: Caller, filters: SubscriberFilters): Promise<SubscriberExport> {
  // A list of another tenant (or none) would export nobody without saying why.
  if (filters.listId && !(await SubscriberList.findOne({ where: { tenantId: c.tenantId, id: filters.listId }, attributes: ['id'] }))) {
    throw new ApiError(422, 'UNKNOWN_LIST', `No list ${filters.listId} in this tenant`, { errors: [{ path: '/requestBody/listId', message: `no list ${filters.listId}` }] });
  }
  return requestExport<SubscriberFilters, SubscriberExport>(deps, c, SUBSCRIBER_EXPORT, filters);
}

export const presentSubscriberExport = (x: SubscriberExport): Schemas['SubscriberExport'] => presentExport(x, `/v1/subscriber-exports/${x.id}/download`);
