// The shapes an import is described with: source options, column mapping, transforms, strategies, phases, counts.

export const MERGE_STRATEGIES = ['skip', 'replace', 'merge'] as const;
/**
 * What happens to a row whose key exists already. `skip`: left as it is. `replace`: every mapped field takes the
 * file's value, an empty cell clearing it. `merge`: non-empty cells overwrite, empty cells keep the stored value.
 * Fields the file does not map are never touched, and list memberships and roles are only ever added.
 */
export type MergeStrategy = (typeof MERGE_STRATEGIES)[number];

export const ROW_ERROR_POLICIES = ['skip', 'abort'] as const;
/** `skip`: rejected rows are reported and the others imported. `abort`: any rejected row fails the import before it writes. */
export type RowErrorPolicy = (typeof ROW_ERROR_POLICIES)[number];

export const IMPORT_PHASES = ['parsing', 'staging', 'merging', 'finished', 'failed', 'cancelled'] as const;
export type ImportPhase = (typeof IMPORT_PHASES)[number];

export const ENCODINGS = ['utf-8', 'utf-16le', 'utf-16be', 'latin1'] as const;
export type SourceEncoding = (typeof ENCODINGS)[number];
export const DELIMITERS = [',', ';', '\t', '|'] as const;
export type Delimiter = (typeof DELIMITERS)[number];
export const FORMATS = ['csv', 'xlsx'] as const;
export type SourceFormat = (typeof FORMATS)[number];

/** How to read the file; anything left out is detected from its content. */
export interface SourceOptions {
  encoding?: SourceEncoding | 'auto';
  delimiter?: Delimiter | 'auto';
  /** 1-based row of the header (rows above it are ignored). Default 1. */
  headerRow?: number;
  /** XLSX: the sheet's name, or its 1-based position. Default: the first sheet. */
  sheet?: string | number;
}

/** What the reader found out about the file; kept on the run. */
export interface DetectedSource {
  format: SourceFormat;
  encoding: SourceEncoding;
  /** Bytes of byte-order mark skipped at the start. */
  bomLength: number;
  delimiter: Delimiter;
  headerRow: number;
  sheet?: string;
  header: string[];
}

export type Transform =
  | { op: 'trim' }
  | { op: 'lower' }
  | { op: 'upper' }
  /** Used when the cell is empty. */
  | { op: 'default'; value: string }
  /** A date written in `format` (luxon tokens, e.g. dd.MM.yyyy) → ISO 8601 (yyyy-MM-dd, or a full timestamp with `output: 'datetime'`). */
  | { op: 'date'; format: string; zone?: string; output?: 'date' | 'datetime' }
  /** Splits the cell into a list (empty parts dropped, each part trimmed). */
  | { op: 'split'; separator: string }
  /** Replaces whole values (compared after the earlier transforms); `otherwise: 'reject'` rejects values not listed. */
  | { op: 'map'; values: Record<string, string>; otherwise?: 'keep' | 'reject' }
  /** A number (a decimal comma is accepted); stored as a JSON number in attributes. */
  | { op: 'number' }
  /** true/false, yes/no, 1/0, y/n (any case). */
  | { op: 'boolean' };

export interface ColumnMapping {
  /** The header of the source column, as written in the file (compared after trimming, case-sensitively first, then case-insensitively). */
  source: string;
  /** A field of the target, or `attributes.<name>` where the target has attributes. */
  field: string;
  transforms?: Transform[];
}

/** Everything that says how one file becomes rows of one target: a template's body, or a run's inline mapping. */
export interface ImportMapping {
  target: string;
  source: SourceOptions;
  columns: ColumnMapping[];
  /** The field that identifies a row (the target's natural key by default). */
  keyField?: string;
  mergeStrategy?: MergeStrategy;
}

export const ROW_ERROR_CODES = ['INVALID_FORMAT', 'REQUIRED_FIELD', 'DUPLICATE_ENTRY', 'INVALID_ENCODING', 'REFERENCE_NOT_FOUND', 'NOT_PERMITTED'] as const;
/**
 * Why a row was rejected. The first three are the reference systems' codes (a row with more or fewer cells than the
 * header is INVALID_FORMAT); INVALID_ENCODING is a row with bytes the file's encoding cannot decode,
 * REFERENCE_NOT_FOUND a list or role that does not exist, NOT_PERMITTED a row the importing credential may not write
 * (a role it could not grant, a user who holds more than it does).
 */
export type RowErrorCode = (typeof ROW_ERROR_CODES)[number];

export interface RowRejection {
  row: number;
  column: string | null;
  code: RowErrorCode;
  message: string;
  /** The row's cells as read (null when they could not be read). */
  raw: string[] | null;
}

export interface ImportCounts {
  read: number;
  valid: number;
  rejected: number;
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
}
