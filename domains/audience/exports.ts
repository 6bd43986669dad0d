// Subscriber exports: the audience, or the part of it GET /v1/subscribers' filters pick, written to a CSV by a
// workflow (activities/audience.ts). Anyone who may page through the subscribers may export them: it shows nothing more.
import type { Transaction } from 'sequelize';
import { SubscriberExport, SubscriberList } from '../../db/models/audience';
import { StoredFile } from '../../db/models/files';
import { recordAudit } from '../../lib/audit';
import { deleteFile, fileDependents } from '../../lib/files';
import { ApiError, notFound, validationFailed } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { SUBSCRIBER_EXPORT_PATCHES, SUBSCRIBER_EXPORTS_DOMAIN, SUBSCRIBER_EXPORTS_TASK_QUEUE, type SubscriberFilters } from '../../workflows/audience.api';
import { auditBy, Caller, CommandDeps } from '../command';
import { ExportKind, presentExport, requestExport } from '../export-jobs';
import type { Schemas } from '../schemas';
import { attributeFilter } from './commands';
import { compileSegment, type SegmentRule, type SegmentRules } from './segments';
import { normalizeEmail } from './subscribers';

export const SUBSCRIBER_EXPORT: ExportKind = {
  model: SubscriberExport, domain: SUBSCRIBER_EXPORTS_DOMAIN, workflowType: 'subscriberExportWorkflow', taskQueue: SUBSCRIBER_EXPORTS_TASK_QUEUE,
  entityType: 'subscriber_export', requested: 'audience.export.requested', patches: SUBSCRIBER_EXPORT_PATCHES,
};

/**
 * The filters of GET /v1/subscribers as segment rules, so the worker reads the export with the segments' SQL compiler
 * (one parameterised query, erased subscribers left out): the address prefix in lower case as the list's filter takes
 * it, and an attribute equal to its text or to the number or boolean it reads as.
 */
export function exportRules(f: SubscriberFilters): SegmentRules {
  const all: SegmentRule[] = [];
  if (f.status) all.push({ field: 'status', op: 'eq', value: f.status });
  if (f.listId) all.push({ field: 'list', op: 'in', value: [f.listId] });
  // Blank once trimmed: every address, as the list's filter reads it.
  const prefix = normalizeEmail(f.emailPrefix ?? '');
  if (prefix) all.push({ field: 'email', op: 'prefix', value: prefix });
  for (const pair of f.attribute ?? []) {
    const { name, values } = attributeFilter(pair);
    all.push({ any: values.map((value) => ({ field: `attributes.${name}` as const, op: 'eq' as const, value })) });
  }
  return { all };
}

/** Starts an export of the subscribers matching `filters`; its row is readable (queued) before the workflow runs. */
export async function requestSubscriberExport(deps: CommandDeps, c: Caller, filters: SubscriberFilters): Promise<SubscriberExport> {
  // A list of another tenant (or none) would export nobody without saying why.
  if (filters.listId && !(await SubscriberList.findOne({ where: { tenantId: c.tenantId, id: filters.listId }, attributes: ['id'] }))) {
    throw new ApiError(422, 'UNKNOWN_LIST', `No list ${filters.listId} in this tenant`, { errors: [{ path: '/requestBody/listId', message: `no list ${filters.listId}` }] });
  }
  // The worker compiles the filters again; what it could not compile is refused here, before anything is written.
  try {
    compileSegment(exportRules(filters), { tenantId: c.tenantId });
  } catch (err) {
    throw validationFailed([{ path: '/requestBody', message: `a filter cannot be compared: ${(err as Error).message}` }]);
  }
  return requestExport<SubscriberFilters, SubscriberExport>(deps, c, SUBSCRIBER_EXPORT, filters);
}

export const presentSubscriberExport = (x: SubscriberExport): Schemas['SubscriberExport'] => presentExport(x, `/v1/subscriber-exports/${x.id}/download`);

/**
 * Deletes a finished export with its CSV (the bytes too, just after, if no other file holds them: see deleteFile); a
 * queued or running one is refused.
 * Also the audience.files_purge job's (activities/jobs.ts), which has no Temporal client: hence only what it uses.
 */
export async function deleteSubscriberExport(deps: Pick<CommandDeps, 'blobs' | 'sequelize'>, c: Caller, id: string): Promise<{ bytesRemoved: Promise<boolean> }> {
  const x = await findInTenant(SubscriberExport, c.tenantId, id, 'Subscriber export');
  if (x.status === 'queued' || x.status === 'running') throw new ApiError(409, 'EXPORT_RUNNING', `The export is ${x.status}; delete it once it is ready or failed`);
  // Its file by the origin key, not only file_id: a file stored by an attempt whose export then failed is the export's too.
  const file = await StoredFile.findOne({ where: { tenantId: c.tenantId, originKey: `subscriber-export:${x.id}` } });
  const remove = async (transaction: Transaction) => {
    // Deleted by the row's own lock: of two deletes at once, the second finds nothing (404) and writes nothing.
    if (!(await SubscriberExport.destroy({ where: { tenantId: c.tenantId, id: x.id }, transaction }))) throw notFound(`Subscriber export ${x.id}`);
    // An import still reading the CSV keeps it (its bytes must stay until they are staged).
    const using = file ? await fileDependents(file, transaction) : { count: 0, what: [] };
    if (using.count) throw new ApiError(409, 'DEPENDENCY_EXISTS', `The export's CSV is used by ${using.what.join(', ')}; delete the export once they have ended`, { count: using.count });
    await recordAudit({ ...auditBy(c), action: 'audience.export.deleted', entityType: 'subscriber_export', entityId: x.id, before: { filters: x.filters, rows: x.rowsWritten, fileId: x.fileId } }, transaction);
  };
  if (file) return deleteFile(deps.blobs, file, remove);
  await deps.sequelize.transaction(remove);
  return { bytesRemoved: Promise.resolve(false) };
}
