// What an import target declares: its fields, natural key, permission, and how staged rows become its rows.
import type { ClientBase } from 'pg';
import type { MergeStrategy } from '../types';

export type FieldType = 'string' | 'email' | 'enum' | 'list';

export interface TargetField {
  name: string;
  type: FieldType;
  required?: boolean;
  /** Characters (each item's, for lists). */
  maxLength?: number;
  /** enum: the accepted values (matched case-insensitively, stored as written here). */
  values?: readonly string[];
  /** list: at most this many items. */
  maxItems?: number;
  description: string;
}

/** Free-form fields mapped as `attributes.<name>`, kept in one JSON object. */
export interface AttributeFields {
  maxKeys: number;
  maxValueLength: number;
}

/** The caller's permissions, as far as an import needs them: which of `perms` the caller does not hold. */
export interface PermissionCheck {
  missing(perms: Iterable<string>): string[];
}

export interface MergeContext {
  tenantId: string;
  importId: string;
  /** The staging table, quoted. */
  stage: string;
  strategy: MergeStrategy;
  /** The target fields the mapping fills ('attributes' when any attribute column is mapped). */
  mapped: ReadonlySet<string>;
  /** The source header each mapped field was read from (rejections name it). */
  headers?: Readonly<Record<string, string>>;
  /** Required by targets that grant permissions (users): what the importing credential holds. */
  caller?: PermissionCheck;
  /**
   * The importing credential's permissions read again, where a target must judge them at the moment it writes:
   * the users target calls it under the identity lock, which every role or user edit takes too, on its own
   * connection `db`.
   */
  standing?: (db: ClientBase) => Promise<PermissionCheck>;
}

export interface MergeCounts {
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
  /** Rows refused at merge time (a reference or permission that changed since the checks). */
  rejected: number;
}

export interface ImportTarget {
  name: string;
  description: string;
  /** Permission needed to import into the target (checked by the API). */
  permission: string;
  fields: readonly TargetField[];
  /** The natural key: a field name. Rows are matched on it, and duplicates within a file are judged by it. */
  key: string;
  attributes?: AttributeFields;
  /**
   * Set-based checks on the staged rows, after duplicates are gone: rows the target refuses (a list or role that
   * does not exist, a role the caller could not grant) are recorded as rejections and dropped from staging.
   * Returns how many were rejected.
   */
  rejectStaged?(db: ClientBase, ctx: MergeContext): Promise<number>;
  /** Applies the staged rows whose key is in `range` inside the caller's transaction: counts, before-images, tags. */
  mergeChunk(db: ClientBase, ctx: MergeContext, range: KeyRange): Promise<MergeCounts>;
  /** The counts mergeChunk would report for every staged row, writing nothing. */
  dryRun(db: ClientBase, ctx: MergeContext): Promise<MergeCounts>;
  /**
   * Inside the caller's transaction: deletes the rows the import created and restores those it updated; throws
   * IMPORT_CHANGED_SINCE (and the caller rolls back) when any of them changed since. `caller`: what the reverting
   * credential holds (a revert changes rows as much as the import did, so targets that guard grants check it again);
   * `standing`, if given, reads it again on `db` — a target that judges it under a lock calls it once it holds the lock.
   */
  revert(db: ClientBase, ctx: { tenantId: string; importId: string; created: number; caller: PermissionCheck; standing?: (db: ClientBase) => Promise<PermissionCheck> }): Promise<{ deleted: number; restored: number }>;
}

/**
 * A merge chunk: the staged rows whose key is in [from, to) (`to` null: up to the last key). Chunks are key ranges,
 * not row ranges, so a chunk meets only the target rows of its own range (an index range scan) however many rows the
 * tenant already has: by row ranges, every chunk of a 1M-row merge joined all of the tenant's rows (40 × 1M).
 */
export interface KeyRange {
  from: string;
  to: string | null;
}

/** Every key: the empty string sorts first in the "C" collation keys are compared in. */
export const ALL_KEYS: KeyRange = { from: '', to: null };

/** SQL true when `column` is in the range whose bounds are the bind parameters $lo and $hi. */
export function inKeyRange(column: string, lo: number, hi: number): string {
  return `${column} >= $${lo} AND ($${hi}::text IS NULL OR ${column} < $${hi})`;
}

/** A concurrent writer inserted a key between a chunk's read and its insert: the chunk is rolled back and run again. */
export class ChunkRaceError extends Error {}
