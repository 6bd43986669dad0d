// CSV/TSV through csv-parse's push interface: one callback per record, no stream of objects, the byte offset known.
import { Parser } from 'csv-parse';
import { ImportError } from '../errors';
import type { ByteSource, ReadOptions, ReadPosition, ReadResult, RecordSink } from './index';
import { decoderLabel, Sniffed } from './sniff';
import { Utf8Guard } from './utf8';

/** A record longer than this (an unclosed quote swallowing the file) stops the read: MALFORMED_FILE. */
export const MAX_RECORD_CHARS = 1024 * 1024;

/** csv-parse's push interface (what its stream and sync APIs are built on). */
interface CsvApi {
  parse(buf: Buffer | undefined, end: boolean, push: (record: string[]) => void, close: () => void): Error | undefined;
  info: { bytes: number };
}

interface RawRecordHandler {
  /** A record; `end` is the absolute byte offset after it (null when the text was decoded first). Return true to stop. */
  record(cells: string[], end: number | null, badEncoding: boolean): boolean | void;
  skipped(message: string): void;
  pause(): Promise<void> | void;
}

/**
 * Streams `source` from byte `start` through csv-parse. UTF-8 goes to the parser as it is, so offsets are the
 * file's (a read can resume at a byte) and invalid bytes are pinned to their record; other encodings are decoded
 * first (UTF-16 that does not decode fails the read: its rows cannot be told apart).
 */
async function parseRecords(source: ByteSource, sniffed: Sniffed, start: number, handler: RawRecordHandler, maxBytes = Infinity): Promise<'limit' | void> {
  const utf8 = sniffed.encoding === 'utf-8';
  const api = (new Parser({
    delimiter: sniffed.delimiter, bom: false, relax_column_count: true, relax_quotes: true, skip_empty_lines: false,
    skip_records_with_error: true, max_record_size: MAX_RECORD_CHARS,
    on_skip: (err) => { handler.skipped(err?.message ?? 'unreadable record'); return undefined; },
  }) as unknown as { api: CsvApi }).api;
  const guard = utf8 ? new Utf8Guard() : undefined;
  const decoder = utf8 ? undefined : new TextDecoder(decoderLabel(sniffed.encoding), { fatal: true, ignoreBOM: true });
  let offset = start; // absolute offset of the next byte the stream gives
  let recordStart = start;
  let stopped = false;
  let records = 0;
  const push = (cells: string[]) => {
    if (stopped) return;
    records++;
    let end: number | null = null;
    let bad = false;
    if (guard) {
      end = start + api.info.bytes;
      bad = guard.spans(recordStart, end);
      recordStart = end;
    }
    if (handler.record(cells, end, bad) === true) stopped = true;
  };
  const feed = (buf: Buffer | undefined, last: boolean) => {
    const err = api.parse(buf, last, push, () => undefined);
    if (err) throw new ImportError('MALFORMED_FILE', `The file cannot be read past its record ${records + 1}: ${err.message}`, { record: records + 1 });
  };
  const decode = (bytes?: Buffer): Buffer => {
    try {
      return Buffer.from(bytes ? decoder!.decode(bytes, { stream: true }) : decoder!.decode(), 'utf8');
    } catch {
      throw new ImportError('INVALID_ENCODING', `The file is not valid ${sniffed.encoding} (after its record ${records})`, { record: records + 1 });
    }
  };
  const stream = source.open(start);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const bytes = chunk;
      offset += chunk.length;
      if (!bytes.length) continue;
      guard?.check(bytes, offset - bytes.length);
      feed(decoder ? decode(bytes) : bytes, false);
      if (stopped) return;
      if (offset - start >= maxBytes) return 'limit';
      const wait = handler.pause();
      if (wait) await wait;
    }
    if (decoder) feed(decode(), false);
    guard?.end(Math.max(offset, start));
    feed(undefined, true);
  } finally {
    stream.destroy();
  }
}

const isBlank = (cells: string[]) => cells.every((c) => c === '');

/**
 * The header row's cells (rows above it are ignored), or undefined for a file with fewer rows; null when it is not
 * within the first `maxBytes` (the API's look is bounded: a header row far down a file is the run's to find).
 */
export async function readCsvHeader(source: ByteSource, sniffed: Sniffed, headerRow: number, maxBytes?: number): Promise<string[] | undefined | null> {
  let header: string[] | undefined;
  let row = 0;
  const ended = await parseRecords(source, sniffed, sniffed.bomLength, {
    record(cells) {
      row++;
      if (row < headerRow) return false;
      header = cells.map((c) => c.trim());
      return true;
    },
    skipped: () => { row++; },
    pause: () => undefined,
  }, maxBytes);
  return ended === 'limit' ? null : header;
}

/**
 * Delivers the header, then every row after it. Resuming (`opts.from`) a UTF-8 file starts reading at the byte
 * after the last row delivered; other files are read from the start with those rows passed over.
 */
export async function readCsv(source: ByteSource, sniffed: Sniffed, opts: ReadOptions, sink: RecordSink): Promise<ReadResult> {
  const header = await readCsvHeader(source, sniffed, opts.headerRow) ?? undefined;
  if (!header) throw new ImportError('EMPTY_FILE', `The file has no header row (row ${opts.headerRow})`);
  sink.header(header);
  const from = opts.from;
  const seek = from !== undefined && from.byte !== null && sniffed.encoding === 'utf-8' && from.row >= opts.headerRow;
  let row = seek ? from.row : 0;
  let position: ReadPosition = seek ? { ...from } : { row: 0, byte: null };
  const skipTo = from?.row ?? 0;
  await parseRecords(source, sniffed, seek ? from.byte! : sniffed.bomLength, {
    record(cells, end, bad) {
      row++;
      if (row <= opts.headerRow || row <= skipTo) {
        position = { row, byte: end };
        return;
      }
      position = { row, byte: end };
      if (!isBlank(cells)) sink.row(row, cells, bad);
    },
    skipped(message) {
      row++;
      // The parser does not say where a skipped record ends: a resume from here re-reads from the start.
      position = { row, byte: null };
      if (row > opts.headerRow && row > skipTo) sink.unreadable(row, message);
    },
    pause: () => sink.pause(position),
  });
  return { end: position };
}
