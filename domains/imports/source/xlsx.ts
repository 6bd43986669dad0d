// XLSX through exceljs' part parsers in two passes: shared strings to disk (and zip bombs refused), then the sheet's rows.
import { Readable, Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import unzipper, { type Entry } from 'unzipper';
import { ImportError } from '../errors';
import type { ByteSource, ReadOptions, ReadPosition, ReadResult, RecordSink } from './index';
import { SharedStringStore } from './shared-strings';

/**
 * An entry's bytes as text, decoded across chunk boundaries. exceljs decodes each chunk it gets on its own, so a
 * character whose bytes an inflate chunk splits would come out as two U+FFFD; strings it passes through as they are.
 */
function utf8Text(count?: (bytes: number) => void): Transform {
  const decoder = new StringDecoder('utf8');
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _enc, done) {
      try {
        count?.(chunk.length);
      } catch (err) {
        return done(err as Error);
      }
      const text = decoder.write(chunk);
      done(null, text || undefined);
    },
    flush(done) {
      const rest = decoder.end();
      done(null, rest || undefined);
    },
  });
}

/** The parts of exceljs' WorkbookReader that the two passes below drive, each with one part of the zip. */
interface PartReaders {
  model?: { sheets?: { name: string; rId?: string }[] };
  workbookRels?: { Id: string; Target: string }[];
  _parseRels(entry: Readable): Promise<void>;
  _parseWorkbook(entry: Readable): Promise<void>;
  _parseStyles(entry: Readable): Promise<void>;
  _parseSharedStrings(entry: Readable): AsyncIterable<{ index: number; text: unknown }>;
  _parseWorksheet(entry: Readable, sheetNo: string): Iterator<{ value: AsyncIterable<{ number: number; values: unknown }> & { name: string } }>;
}

/**
 * The first pass: inflates every entry and counts the bytes (over `limit` → FILE_TOO_LARGE, whatever the headers
 * claim), and hands the workbook's small parts to `parts` and its shared strings, one by one, to `strings`. It reads
 * the local entries in order with the same unzipper that exceljs reads them with. A zip without a workbook part is
 * not XLSX.
 */
export async function checkWorkbookZip(source: ByteSource, limit: number, parts?: PartReaders, strings?: SharedStringStore): Promise<void> {
  const names = new Set<string>();
  let total = 0;
  const input = source.open(0);
  const zip = unzipper.Parse({ forceStream: true });
  const tooLarge = () => new ImportError('FILE_TOO_LARGE', `The workbook unpacks to more than ${limit} bytes`, { limit });
  const counted = (entry: Entry) => entry.pipe(utf8Text((n) => {
    total += n;
    if (total > limit) throw tooLarge();
  }));
  const unreadable = (err: Error) => (err instanceof ImportError ? err : new ImportError('UNSUPPORTED_FORMAT', `The file is not a readable XLSX workbook: ${err.message}`));
  input.on('error', (err) => zip.destroy(err));
  try {
    for await (const entry of input.pipe(zip) as AsyncIterable<Entry>) {
      names.add(entry.path);
      const bytes = counted(entry);
      if (parts && entry.path === 'xl/workbook.xml') await parts._parseWorkbook(bytes);
      else if (parts && entry.path === 'xl/_rels/workbook.xml.rels') await parts._parseRels(bytes);
      else if (parts && entry.path === 'xl/styles.xml') await parts._parseStyles(bytes);
      else if (parts && strings && entry.path === 'xl/sharedStrings.xml') {
        for await (const { text } of parts._parseSharedStrings(bytes)) strings.add(cellText(text));
      }
      // The rest drained through the count: the zip bomb check needs every byte.
      bytes.resume();
      await finished(bytes);
    }
  } catch (err) {
    throw unreadable(err as Error);
  } finally {
    input.destroy();
  }
  if (!names.has('xl/workbook.xml')) throw new ImportError('UNSUPPORTED_FORMAT', 'The file is a zip archive but not an XLSX workbook');
}

/** A cell as the text a CSV export would hold. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return '';
    const iso = value.toISOString();
    return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso;
  }
  if (typeof value === 'object') {
    const v = value as { richText?: { text: string }[]; result?: unknown; formula?: string; error?: string; text?: unknown };
    if (Array.isArray(v.richText)) return v.richText.map((r) => r.text ?? '').join('');
    if ('result' in v || 'formula' in v) return cellText(v.result);
    if (typeof v.error === 'string') return v.error;
    if ('text' in v) return cellText(v.text);
  }
  return String(value);
}

/** Row values of exceljs (1-based, sparse) as cells, shared strings looked up, trailing empty ones dropped. */
function rowCells(values: unknown, strings: SharedStringStore): string[] {
  const arr = Array.isArray(values) ? values : [];
  const cells: string[] = [];
  for (let i = 1; i < arr.length; i++) {
    const v = arr[i] as { sharedString?: unknown } | undefined;
    cells.push(typeof v === 'object' && v !== null && typeof v.sharedString === 'number' ? strings.get(v.sharedString) : cellText(v));
  }
  while (cells.length && cells[cells.length - 1] === '') cells.pop();
  return cells;
}

/** The zip path of the sheet asked for (by 1-based position or by name), from the workbook part and its relationships. */
function sheetPart(parts: PartReaders, wanted: string | number): { name: string; path: string; no: string } {
  const sheets = parts.model?.sheets ?? [];
  const at = typeof wanted === 'number' ? wanted - 1 : sheets.findIndex((s) => s.name.toLowerCase() === wanted.trim().toLowerCase());
  const sheet = sheets[at];
  if (!sheet) {
    const names = sheets.map((s) => s.name);
    throw new ImportError('SHEET_NOT_FOUND', `The workbook has no sheet ${typeof wanted === 'number' ? `number ${wanted}` : `"${wanted}"`} (it has: ${names.join(', ')})`, { sheets: names });
  }
  const target = parts.workbookRels?.find((r) => r.Id === sheet.rId)?.Target;
  const path = target ? (target.startsWith('/') ? target.slice(1) : `xl/${target}`) : `xl/worksheets/sheet${at + 1}.xml`;
  return { name: sheet.name, path, no: /(\d+)\.xml$/.exec(path)?.[1] ?? String(at + 1) };
}

/**
 * Two passes over the zip. An XLSX cannot stream its text: cells name it by index into the shared-strings part,
 * which Excel and exceljs write after the sheets. The first pass (the zip bomb check, which inflates every entry
 * anyway) writes the shared strings to a store on disk (shared-strings.ts: the heap holds none of them, whatever
 * the workbook's size) and reads the workbook's small parts; the second streams the one sheet asked for straight
 * from the zip, looking its strings up. exceljs' own `parse()` would instead copy every sheet that precedes the
 * shared strings to a temp file of its own (and, when reading stops early, leave it behind until the process
 * exits), so its part parsers are driven here, each with its part.
 */
export async function readXlsx(source: ByteSource, opts: ReadOptions, sink: RecordSink): Promise<ReadResult> {
  // Loaded by the first XLSX read: most worker processes never read one and need not hold exceljs in their heap.
  const { default: ExcelJS } = await import('exceljs');
  const parts = new ExcelJS.stream.xlsx.WorkbookReader(undefined as unknown as Readable, {
    sharedStrings: 'emit', styles: 'cache', hyperlinks: 'ignore', worksheets: 'emit', entries: 'ignore',
  }) as unknown as PartReaders;
  const strings = SharedStringStore.open(opts.sharedStringsCache, opts.tempDir);
  try {
    await checkWorkbookZip(source, opts.maxUncompressedBytes, parts, strings);
    strings.seal();
    const sheet = sheetPart(parts, opts.sheet ?? 1);
    let position: ReadPosition = { row: 0, byte: null };
    let width = 0;
    const input = source.open(0);
    const zip = unzipper.Parse({ forceStream: true });
    input.on('error', (err) => zip.destroy(err));
    try {
      for await (const entry of input.pipe(zip) as AsyncIterable<Entry>) {
        if (entry.path !== sheet.path) {
          entry.autodrain();
          continue;
        }
        const ws = parts._parseWorksheet(entry.pipe(utf8Text()), sheet.no).next().value!.value;
        let sinceBreak = 0;
        for await (const row of ws) {
          const n = row.number;
          position = { row: n, byte: null };
          if (n < opts.headerRow) continue;
          if (n === opts.headerRow) {
            const cells = rowCells(row.values, strings);
            width = cells.length;
            sink.header(cells.map((c) => c.trim()), sheet.name);
            continue;
          }
          if (width === 0) {
            // The header row was blank or missing: there is nothing to map.
            throw new ImportError('EMPTY_FILE', `The sheet "${sheet.name}" has no header row (row ${opts.headerRow})`);
          }
          if (opts.from && n <= opts.from.row) continue;
          const cells = rowCells(row.values, strings);
          if (cells.length) {
            while (cells.length < width) cells.push('');
            sink.row(n, cells, false);
          }
          if (++sinceBreak >= 500) {
            sinceBreak = 0;
            const wait = sink.pause(position);
            if (wait) await wait;
          }
        }
        break;
      }
    } finally {
      input.destroy();
    }
    if (width === 0) throw new ImportError('EMPTY_FILE', `The sheet "${sheet.name}" has no header row (row ${opts.headerRow})`);
    const wait = sink.pause(position);
    if (wait) await wait;
    return { end: position, sheet: sheet.name };
  } finally {
    strings.close();
  }
}
