// The import commands the API carries out: request a run (checked, recorded, its workflow started), cancel it,
// revert it, and read the options. The routes stay thin: they pass the body and the caller.
import { randomUUID } from 'node:crypto';
import { StoredFile } from '../../db/models/files';
import { ImportRun, ImportTemplate } from '../../db/models/imports';
import { createWithAudit, destroyWithAudit } from '../../lib/audit';
import { ownerOf } from '../../lib/files';
import { ApiError, notFound, permissionDenied } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { recordStartIntent, StartBusinessWorkflow, startBusinessWorkflow, startIntent, startOrUndo, workflowRunState } from '../../lib/temporal';
import { executeCommand } from '../../lib/updates';
import type { WorkflowHandle } from '@temporalio/client';
import type { importRevertWorkflow, importWorkflow } from '../../workflows/imports';
import { type CallerPermissions, cancelImportUpdate, IMPORT_PATCHES, IMPORT_REVERTS_DOMAIN, IMPORTS_DOMAIN, IMPORTS_TASK_QUEUE, type ImportRevertOutcome } from '../../workflows/imports.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { auditBy, Caller, CommandDeps, commandAuthor } from '../command';
import { ImportError } from './errors';
import { bindMapping, mappingProblems } from './mapping/compile';
import { type RevertResult, whyNotRevertible } from './revert';
import { detectSource, sniffSource } from './source';
import { IMPORT_TARGETS, importTarget } from './targets';
import { DELIMITERS, ENCODINGS, MERGE_STRATEGIES, type ColumnMapping, type MergeStrategy, type RowErrorPolicy, type SourceOptions } from './types';

export interface ImportLimits {
  maxFileBytes: number;
  maxUncompressedBytes: number;
}

export interface ImportRequest {
  fileId: string;
  target: string;
  templateId?: string;
  source?: SourceOptions;
  columns?: ColumnMapping[];
  keyField?: string;
  mergeStrategy?: MergeStrategy;
  dryRun?: boolean;
  onRowError?: RowErrorPolicy;
}

export const FINAL_PHASES = ['finished', 'failed', 'cancelled'] as const;

/** The requester's permissions as a workflow's input carries them (the worker narrows them by their standing then). */
const callerPermissions = (c: Caller): CallerPermissions => ({ fromRoles: [...c.permissions.fromRoles], scopes: c.permissions.scopes ? [...c.permissions.scopes] : null });

/** An ImportError as the API answers it (its status, its code; the columns it names as field errors). */
export function importProblem(err: ImportError): ApiError {
  const columns = err.details?.columns;
  const errors = Array.isArray(columns) ? columns.map((c) => ({ path: '/columns', message: `source column "${String(c)}" is not in the file's header` })) : undefined;
  return new ApiError(err.status, err.code, err.message, errors ? { errors } : {});
}

async function asProblem<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ImportError) throw importProblem(err);
    throw err;
  }
}

/** The mapping a run uses: the template's current version, or the inline one (never both). */
async function resolveMapping(tenantId: string, body: ImportRequest) {
  if (body.templateId && body.columns) throw new ApiError(422, 'INVALID_MAPPING', 'Give either templateId or columns, not both');
  if (body.templateId) {
    const t = await ImportTemplate.findOne({ where: { tenantId, id: body.templateId } });
    if (!t) throw new ApiError(422, 'UNKNOWN_TEMPLATE', `No mapping template ${body.templateId}`, { errors: [{ path: '/requestBody/templateId', message: 'no such template' }] });
    if (t.target !== body.target) throw new ApiError(422, 'INVALID_MAPPING', `Template "${t.name}" maps to ${t.target}, not ${body.target}`);
    return {
      templateId: t.id, templateVersion: t.version, source: { ...t.source, ...(body.source ?? {}) }, columns: t.columns, keyField: t.keyField,
      mergeStrategy: body.mergeStrategy ?? t.mergeStrategy,
    };
  }
  if (!body.columns) throw new ApiError(422, 'INVALID_MAPPING', 'Give templateId or columns', { errors: [{ path: '/requestBody/columns', message: 'is required without templateId' }] });
  const target = importTarget(body.target);
  return { templateId: null, templateVersion: null, source: body.source ?? {}, columns: body.columns, keyField: body.keyField ?? target.key, mergeStrategy: body.mergeStrategy ?? 'merge' };
}

/** A mapping's problems as a 422 naming each (INVALID_MAPPING), or nothing. */
export function assertMapping(targetName: string, m: { columns: ColumnMapping[]; keyField?: string; mergeStrategy?: MergeStrategy; source?: SourceOptions }): void {
  const problems = mappingProblems(importTarget(targetName), { columns: m.columns, keyField: m.keyField, mergeStrategy: m.mergeStrategy, source: m.source ?? {} });
  if (problems.length) {
    throw new ApiError(422, 'INVALID_MAPPING', problems.map((p) => p.message).join('; '), { errors: problems.map((p) => ({ path: `/requestBody${p.path}`, message: p.message })) });
  }
}

/**
 * Checks everything that can be checked before any work — the target's permission, the mapping, the file's
 * size, its format by content and (CSV) that the mapped columns are in its header — then records the run with its
 * audit event and its workflow's start intent (one statement), and starts `imports:<tenant>:<id>`. A start Temporal
 * refuses takes the row and event back; a process that dies before the start leaves the intent to the start
 * reconciler (domains/imports/index.ts declares when a run still waits for its workflow).
 */
/** How far into a CSV the API looks for its header row (the run reads the rest). */
export const HEADER_SCAN_BYTES = 4 * 1024 * 1024;

export async function requestImport(deps: CommandDeps, c: Caller, body: ImportRequest): Promise<ImportRun> {
  const limits = deps.config.imports;
  const target = importTarget(body.target);
  if (!c.permissions.has(target.permission)) {
    throw permissionDenied(`Importing into ${target.name} needs the permission '${target.permission}'`, target.permission);
  }
  const mapping = await resolveMapping(c.tenantId, body);
  assertMapping(target.name, mapping);
  const file = await findInTenant(StoredFile, c.tenantId, body.fileId, 'File');
  const owner = ownerOf(file);
  if (owner && !c.permissions.has(owner.permission)) {
    throw permissionDenied(`This file was made by ${owner.what}; reading it needs the permission '${owner.permission}'`, owner.permission);
  }
  if (Number(file.size) > limits.maxFileBytes) throw new ApiError(413, 'FILE_TOO_LARGE', `Imports take files of at most ${limits.maxFileBytes} bytes; this one has ${file.size}`);
  if (Number(file.size) === 0) throw new ApiError(422, 'EMPTY_FILE', 'The file is empty');
  const source = { open: (start = 0) => deps.blobs.open(file.sha256, start) };
  await asProblem(async () => {
    // The first bytes say what the file is; a CSV's header is usually in them too (looked for in the first
    // HEADER_SCAN_BYTES only: a header row far down, past long records, is work the file decides). An XLSX's header,
    // and a CSV's not found there, wait for the workflow, which fails the run with MISSING_COLUMNS.
    const sniffed = await sniffSource(source, mapping.source);
    if (sniffed.format === 'csv') {
      const detected = await detectSource(source, mapping.source, { maxUncompressedBytes: limits.maxUncompressedBytes, headerScanBytes: HEADER_SCAN_BYTES });
      if (detected) bindMapping(target, mapping.columns, detected.header);
    }
  });

  const id = randomUUID();
  const workflowId = businessWorkflowId({ domain: IMPORTS_DOMAIN, tenantId: c.tenantId, entityId: id });
  const start: StartBusinessWorkflow<typeof importWorkflow> = {
    workflowType: 'importWorkflow', taskQueue: IMPORTS_TASK_QUEUE, domain: IMPORTS_DOMAIN, tenantId: c.tenantId,
    entityType: 'import', entityId: id, initialStatus: 'parsing',
    args: [{
      tenantId: c.tenantId, importId: id, by: commandAuthor(c),
      caller: callerPermissions(c),
      ...(owner ? { fileNeeds: [owner.permission] } : {}),
      patches: IMPORT_PATCHES,
    }],
  };
  const run = await createWithAudit(ImportRun, {
    tenantId: c.tenantId, id, target: target.name, fileId: file.id, fileSha256: file.sha256, fileName: file.filename, fileSize: Number(file.size),
    ...mapping, dryRun: body.dryRun ?? false, onRowError: body.onRowError ?? 'skip', workflowId, createdBy: c.actor.id,
  }, {
    ...auditBy(c), action: 'imports.import.requested', entityType: 'import', entityId: id, workflowId,
    after: { fileId: file.id, fileName: file.filename, target: target.name, templateId: mapping.templateId, templateVersion: mapping.templateVersion, mergeStrategy: mapping.mergeStrategy, dryRun: body.dryRun ?? false },
  }, [startIntent(start)]);
  await startOrUndo(
    () => startBusinessWorkflow(deps.temporal.client, start),
    () => destroyWithAudit(run, { tenantId: c.tenantId, action: 'imports.import.requested', entityType: 'import', entityId: id }),
  );
  deps.metrics.workflowStarts.inc({ workflow_type: 'importWorkflow' });
  return run;
}

export const findImport = (tenantId: string, id: string): Promise<ImportRun> => findInTenant(ImportRun, tenantId, id, 'Import');

/**
 * Cancels a running import through its workflow's Update, which answers once the cancel is written (phase, counts,
 * audit event). Refused with 409 IMPORT_FINISHED once it ended.
 */
export async function cancelImport(deps: CommandDeps, c: Caller, id: string): Promise<ImportRun> {
  const run = await findImport(c.tenantId, id);
  const finished = () => new ApiError(409, 'IMPORT_FINISHED', `The import is ${run.phase}; only a running import can be cancelled`);
  if ((FINAL_PHASES as readonly string[]).includes(run.phase)) throw finished();
  // Ended meanwhile (the workflow closed, or the batch kit refused the cancel with BATCH_FINISHED): answered with the phase it ended in.
  const ended = new ApiError(409, 'IMPORT_FINISHED', 'The import has ended');
  try {
    await executeCommand(deps.temporal.client.workflow.getHandle(run.workflowId), cancelImportUpdate, [{ by: commandAuthor(c) }], {
      statuses: { BATCH_FINISHED: 409 }, closed: () => ended,
    });
  } catch (err) {
    if (err === ended || (err instanceof ApiError && err.code === 'BATCH_FINISHED')) {
      await run.reload();
      throw finished();
    }
    throw err;
  }
  return run.reload();
}

/** Why an import cannot be reverted now, answered before anything is asked of the worker (the run's row locked). */
function refuseRevert(run: ImportRun): void {
  const refusal = whyNotRevertible({ dryRun: run.dryRun, reverted: Boolean(run.revertedAt), phase: run.phase });
  if (refusal) throw new ApiError(409, 'IMPORT_NOT_REVERTIBLE', refusal);
  if (run.revertRequestedAt && !run.revertOutcome) throw new ApiError(409, 'IMPORT_REVERT_RUNNING', 'A revert of this import is running; its outcome will be in the import\'s revert');
}

/**
 * Takes back a revert request whose workflow could not be started: only this request's, only if nothing came of it,
 * and never waiting on a revert that did start after all (it holds the run locked; it will write its own outcome).
 */
async function undoRevertRequest(deps: CommandDeps, tenantId: string, id: string, asked: { previous: Partial<ImportRun>; requestedAt: Date }): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const row = await ImportRun.findOne({ where: { tenantId, id }, lock: transaction.LOCK.UPDATE, skipLocked: true, transaction });
    if (row && row.revertRequestedAt?.getTime() === asked.requestedAt.getTime() && !row.revertOutcome && !row.revertedAt) await row.update(asked.previous, { transaction });
  });
}

/**
 * The workflow's outcome if it comes within `ms`; undefined otherwise (or if Temporal cannot say: the row will). A
 * deadline, not an abort signal: the native connection does not cancel a call on one, and the long poll would stay.
 */
async function outcomeWithin(deps: CommandDeps, handle: WorkflowHandle<typeof importRevertWorkflow>, ms: number): Promise<ImportRevertOutcome | undefined> {
  if (ms <= 0) return undefined;
  return deps.temporal.client.withDeadline(Date.now() + ms, () => handle.result()).catch(() => undefined);
}

/**
 * Asks for an import's revert (the target's permission too). What can be judged from the run is refused at once (409);
 * otherwise the request is recorded on the run with its workflow's start intent and `import-reverts:<tenant>:<id>` is
 * started: one transaction in the worker, seconds for a million rows, so not the request's. The request waits up to
 * IMPORT_REVERT_WAIT_MS for the outcome: the counts, or the refusal as its problem (409 IMPORT_CHANGED_SINCE, 403
 * PERMISSION_ESCALATION, 409 LAST_ADMIN …). Still running then: no result, and the run's `revert` will say how it ended.
 */
export async function revertImportRun(deps: CommandDeps, c: Caller, id: string): Promise<{ run: ImportRun; result?: RevertResult }> {
  const run = await findImport(c.tenantId, id);
  const target = importTarget(run.target);
  if (!c.permissions.has(target.permission)) {
    throw permissionDenied(`Reverting an import into ${target.name} needs the permission '${target.permission}'`, target.permission);
  }
  const start: StartBusinessWorkflow<typeof importRevertWorkflow> = {
    workflowType: 'importRevertWorkflow', taskQueue: IMPORTS_TASK_QUEUE, domain: IMPORT_REVERTS_DOMAIN, tenantId: c.tenantId,
    entityType: 'import', entityId: id, initialStatus: 'reverting',
    args: [{
      tenantId: c.tenantId, importId: id, by: commandAuthor(c),
      caller: callerPermissions(c),
    }],
  };
  const before = await deps.sequelize.transaction(async (transaction) => {
    const where = { tenantId: c.tenantId, id };
    // A revert running holds the run locked for its whole transaction: answered from what the row says, not waited for.
    const locked = await ImportRun.findOne({ where, lock: transaction.LOCK.UPDATE, skipLocked: true, transaction });
    const current = locked ?? await ImportRun.findOne({ where, transaction });
    if (!current) throw notFound('Import');
    refuseRevert(current);
    if (!locked) throw new ApiError(409, 'IMPORT_REVERT_RUNNING', 'The import is being reverted');
    // A refused revert writes its outcome a moment before its workflow closes. Asked again in that moment, this start
    // would join the closing run and take its outcome for its own, so it waits until the run has closed. Judged with
    // the run locked: no other request can start one meanwhile.
    if (locked.revertRequestedAt && await workflowRunState(deps.temporal.client, businessWorkflowId(start)) === 'running') {
      throw new ApiError(409, 'IMPORT_REVERT_RUNNING', 'The last revert of this import is finishing; ask again in a moment');
    }
    const previous = { revertRequestedAt: locked.revertRequestedAt, revertRequestedBy: locked.revertRequestedBy, revertOutcome: locked.revertOutcome };
    const requestedAt = new Date();
    await locked.update({ revertRequestedAt: requestedAt, revertRequestedBy: c.actor.id, revertOutcome: null }, { transaction });
    await recordStartIntent(start, transaction);
    return { previous, requestedAt };
  });
  let handle!: WorkflowHandle<typeof importRevertWorkflow>;
  await startOrUndo(
    async () => { handle = await startBusinessWorkflow(deps.temporal.client, start); },
    () => undoRevertRequest(deps, c.tenantId, id, before),
  );
  deps.metrics.workflowStarts.inc({ workflow_type: 'importRevertWorkflow' });
  const outcome = await outcomeWithin(deps, handle, deps.config.imports.revertWaitMs);
  if (outcome?.error) {
    const { status, code, message, details } = outcome.error;
    const permission = typeof details?.permission === 'string' ? details.permission : undefined;
    throw new ApiError(status, code, message, permission ? { permission } : {});
  }
  return { run: await run.reload(), ...(outcome ? { result: { deleted: outcome.deleted, restored: outcome.restored } } : {}) };
}

/** What imports accept: targets with their fields, formats, encodings, delimiters, strategies, transforms, limits. */
export function importOptions(limits: ImportLimits) {
  return {
    targets: Object.values(IMPORT_TARGETS).map((t) => ({
      name: t.name, description: t.description, key: t.key, attributes: Boolean(t.attributes),
      fields: t.fields.map((f) => ({
        name: f.name, type: f.type, required: Boolean(f.required), description: f.description,
        ...(f.maxLength !== undefined ? { maxLength: f.maxLength } : {}), ...(f.values ? { values: [...f.values] } : {}),
      })),
    })),
    formats: ['csv', 'tsv', 'xlsx'],
    encodings: [...ENCODINGS],
    delimiters: [...DELIMITERS],
    mergeStrategies: [...MERGE_STRATEGIES],
    transforms: ['trim', 'lower', 'upper', 'default', 'date', 'split', 'map', 'number', 'boolean'],
    maxFileBytes: limits.maxFileBytes,
    maxUncompressedBytes: limits.maxUncompressedBytes,
  };
}
