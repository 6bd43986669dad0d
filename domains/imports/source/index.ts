// Reads an import file as rows, streamed: CSV/TSV (csv-parse) or XLSX (exceljs' streaming reader), whatever its encoding.
import type { Readable } from 'node:stream';
import { ImportError } from '../errors';
import type { DetectedSource, SourceOptions } from '../types';
import { readCsv, readCsvHeader } from './csv';
import { sniff, SNIFF_BYTES, Sniffed } from './sniff';
import type { SharedStringsCache } from './shared-strings';
import { readXlsx } from './xlsx';

/** The file's bytes; `open(start)` streams from that byte offset on (a store without ranges reads and drops the prefix itself). */
export interface ByteSource {
  open(start?: number): Readable;
}

/** Where reading stands: the last row delivered (its 1-based row number in the file) and, for seekable text, the byte after it. */
export interface ReadPosition {
  row: number;
  byte: number | null;
}

/** Receives what the reader finds, synchronously and in order; only `pause` may make the reader wait. */
export interface RecordSink {
  /** The header row's cells (and, for XLSX, the sheet's name). */
  header(cells: string[], sheet?: string): void;
  /** A row after the header (blank rows are skipped); `badEncoding` when some of its bytes did not decode. */
  row(row: number, cells: string[], badEncoding: boolean): void;
  /** A record the parser could not read (a stray quote); `row` is its row number. */
  unreadable(row: number, message: string): void;
  /** Between chunks of input, with the position after the last row delivered; a returned promise holds reading back. */
  pause(at: ReadPosition): Promise<void> | void;
}

export interface ReadOptions {
  headerRow: number;
  sheet?: string | number;
  /** Resume after this position: rows up to it are not delivered again (the header is, always). */
  from?: ReadPosition;
  /** XLSX: the most uncompressed bytes accepted (zip bombs). */
  maxUncompressedBytes: number;
  /** XLSX: the shared strings' block cache (tests make it tiny to exercise the reads from disk; see shared-strings.ts). */
  sharedStringsCache?: SharedStringsCache;
  /** XLSX: where the shared strings' temporary files are made (default: the OS temp dir). */
  tempDir?: string;
}

export interface ReadResult {
  end: ReadPosition;
  sheet?: string;
}

export const DEFAULT_MAX_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024;

/** Reads the first bytes and tells what the file is (format, encoding, delimiter); bad files are refused here. */
export async function sniffSource(source: ByteSource, opts: SourceOptions = {}): Promise<Sniffed> {
  const stream = source.open(0);
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      parts.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= SNIFF_BYTES) break;
    }
  } finally {
    stream.destroy();
  }
  return sniff(Buffer.concat(parts).subarray(0, SNIFF_BYTES), opts);
}

/**
 * The widest header read: a spreadsheet's most columns, names no longer than a rejection's column can be, and 64 KiB
 * in all, because a run keeps its header and shows it in every answer about the run (a list of 200 runs included).
 */
export const HEADER_LIMITS = { columns: 16_384, nameChars: 300, totalChars: 64 * 1024 } as const;

function assertHeaderSize(header: readonly string[]): void {
  const refuse = (message: string, details: Record<string, unknown>) => {
    throw new ImportError('MALFORMED_FILE', `${message}; this is not the header of a table to import`, { ...details, limits: HEADER_LIMITS });
  };
  if (header.length > HEADER_LIMITS.columns) refuse(`The header has ${header.length} columns, more than ${HEADER_LIMITS.columns}`, { columns: header.length });
  const long = header.findIndex((h) => h.length > HEADER_LIMITS.nameChars);
  if (long >= 0) refuse(`Column ${long + 1} of the header is named with ${header[long].length} characters, more than ${HEADER_LIMITS.nameChars}`, { column: long + 1 });
  const total = header.reduce((n, h) => n + h.length, 0);
  if (total > HEADER_LIMITS.totalChars) refuse(`The header's names have ${total} characters in all, more than ${HEADER_LIMITS.totalChars}`, { characters: total });
}

export async function readRecords(source: ByteSource, sniffed: Sniffed, opts: ReadOptions, sink: RecordSink): Promise<ReadResult> {
  const checked: RecordSink = { ...sink, header: (cells, sheet) => { assertHeaderSize(cells); sink.header(cells, sheet); } };
  if (sniffed.format === 'xlsx') return readXlsx(source, opts, checked);
  return readCsv(source, sniffed, opts, checked);
}

/**
 * Everything about the file a run needs before reading it whole: format, encoding, delimiter, header. Refuses
 * (typed errors) a file that is not CSV/XLSX, is empty, or has no header row. With `headerScanBytes`, a CSV whose
 * header row is not within that many bytes answers null (not looked at further).
 */
export async function detectSource(source: ByteSource, opts: SourceOptions, limits: { maxUncompressedBytes: number; headerScanBytes?: number }): Promise<DetectedSource | null> {
  const sniffed = await sniffSource(source, opts);
  const headerRow = opts.headerRow ?? 1;
  let header: string[] | undefined;
  let sheet: string | undefined;
  if (sniffed.format === 'csv') {
    const found = await readCsvHeader(source, sniffed, headerRow, limits.headerScanBytes);
    if (found === null) return null;
    header = found;
  } else {
    const stop = new Error('header read');
    try {
      await readXlsx(source, { headerRow, sheet: opts.sheet, maxUncompressedBytes: limits.maxUncompressedBytes }, {
        header: (cells, name) => { header = cells; sheet = name; throw stop; },
        row: () => undefined, unreadable: () => undefined, pause: () => undefined,
      });
    } catch (err) {
      if (err !== stop) throw err;
    }
  }
  if (!header || header.every((h) => h === '')) throw new ImportError('EMPTY_FILE', `The file has no header row (row ${headerRow})`);
  assertHeaderSize(header);
  return { format: sniffed.format, encoding: sniffed.encoding, bomLength: sniffed.bomLength, delimiter: sniffed.delimiter, headerRow, sheet, header };
}

export { sniff, type Sniffed } from './sniff';
