// Shared definitions of the import workflow, imported by the API, the worker and the workflow.
import { defineUpdate } from '@temporalio/workflow';
import type { CommandAuthor } from '../lib/audit';
import type { BatchResume } from './batch';
import { CANCELLED_RUN_PATCH, STATUS_UPSERT_PATCH } from './patches';

export const IMPORTS_TASK_QUEUE = 'docket-imports';
export const IMPORTS_DOMAIN = 'imports';
/** An import's revert is its own workflow, `import-reverts:<tenant>:<import id>` (EntityId: the import's id, as the import's). */
export const IMPORT_REVERTS_DOMAIN = 'import-reverts';

/** Marks histories in which a cancel stopped a running staging chunk (before, a cancel waited for the chunk to end). */
export const CANCEL_STAGING_PATCH = 'imports-cancel-stops-staging';

/**
 * The patches the API's code has, named in every import's input (workflows/patches.ts): a new import takes their
 * paths without a marker or a TemporalChangeVersion write. Workers are deployed before an API that names a new one.
 */
export const IMPORT_PATCHES = [STATUS_UPSERT_PATCH, CANCEL_STAGING_PATCH, CANCELLED_RUN_PATCH];

/**
 * The importing credential's permissions, as the API resolved them. Each staging and merging activity narrows them
 * by the credential's standing then (domains/identity/standing.ts): the users target grants no more than that.
 */
export interface CallerPermissions {
  fromRoles: string[];
  scopes: string[] | null;
}

/**
 * Where staging stands (domains/imports/staging.ts StageCursor): the last row whose outcome is committed, the
 * byte after it (CSV), and the counts so far. Only positions and numbers: the history never carries rows.
 */
export interface ImportStageCursor {
  row: number;
  byte: number | null;
  read: number;
  valid: number;
  rejected: number;
  done?: boolean;
}

export interface ImportInput {
  tenantId: string;
  importId: string;
  /** Who asked (the end event names them). */
  by: CommandAuthor;
  caller: CallerPermissions;
  /**
   * What reading the file needed when the run was asked for (its maker's permission: a document needs
   * documents.read): still required once the file's row is deleted, mid-merge, and no longer says who made it.
   */
  fileNeeds?: string[];
  /** History events per run before continuing as new (the batch kit's default, 2,000, when absent). */
  historyBudget?: number;
  /** The patches the starting code had (IMPORT_PATCHES), handed on by continue-as-new. */
  patches?: string[];
  /** Set by continue-as-new: the phase the run was in and where its batch stands. */
  resume?: { phase: 'staging'; batch: BatchResume<ImportStageCursor> } | { phase: 'merging'; batch: BatchResume<null> };
}

export interface ImportOutcome {
  phase: 'finished' | 'failed' | 'cancelled';
  error?: { code: string; message: string };
}

/** Cancels the import between chunks: rows merged so far stay (revert undoes them). Refused with BATCH_FINISHED once it ended. */
export const cancelImportUpdate = defineUpdate<void, [{ by: CommandAuthor }]>('cancelImport');

export interface ImportRevertInput {
  tenantId: string;
  importId: string;
  /** Who asked (the audit event names them); their permissions are read again when the revert runs. */
  by: CommandAuthor;
  caller: CallerPermissions;
}

/** A refusal as the API answers it: its status, its stable code, what it says. */
export interface ImportRevertRefusal {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** What a revert came to: the rows deleted and restored, or why it was refused (then nothing changed). */
export type ImportRevertOutcome = { deleted: number; restored: number; error?: undefined } | { error: ImportRevertRefusal };
