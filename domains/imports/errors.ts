// Why a whole import cannot go on (row problems are rejections, not errors): a stable code the API maps to a status.

export const IMPORT_ERROR_STATUS = {
  /** Neither CSV/TSV nor XLSX, judged by the content. */
  UNSUPPORTED_FORMAT: 422,
  /** No header, or a header and no rows. */
  EMPTY_FILE: 422,
  /** Mapped source columns that the header does not have (`details.columns`). */
  MISSING_COLUMNS: 422,
  /** A mapping that does not fit its target (unknown field, no key column, a bad transform). */
  INVALID_MAPPING: 422,
  /** The XLSX sheet asked for is not in the workbook. */
  SHEET_NOT_FOUND: 422,
  /** The file, or an XLSX's uncompressed content (a zip bomb), is over the limit. */
  FILE_TOO_LARGE: 413,
  /** Bytes the file's encoding cannot decode where the row cannot be told apart (UTF-16). */
  INVALID_ENCODING: 422,
  /** The CSV cannot be read past a point (a quote never closed, a record over the size limit); `details.row`. */
  MALFORMED_FILE: 422,
  /** `onRowError: abort` and rows were rejected (`details.rejected`); nothing was written. */
  ROWS_REJECTED: 422,
  /** The credential that asked lost the target's permission, or was revoked or deactivated, before the work was done. */
  PERMISSION_REVOKED: 403,
  /** The target needs the caller's permissions (the users target) and none were given. */
  PERMISSIONS_REQUIRED: 500,
  /** Revert: rows the import wrote have changed since (`details.changed`). */
  IMPORT_CHANGED_SINCE: 409,
  /** Revert: the import is a dry run, not finished, or reverted already. */
  IMPORT_NOT_REVERTIBLE: 409,
} as const;

export type ImportErrorCode = keyof typeof IMPORT_ERROR_STATUS;

export class ImportError extends Error {
  constructor(readonly code: ImportErrorCode, message: string, readonly details?: Record<string, unknown>) {
    super(message);
    this.name = 'ImportError';
  }

  get status(): number {
    return IMPORT_ERROR_STATUS[this.code];
  }
}

export const isImportError = (err: unknown): err is ImportError => err instanceof ImportError;
