// XLSX through exceljs' streaming reader, after a pass that refuses zip bombs and zips that are not workbooks.
import v8 from 'node:v8';
import unzipper, { type Entry } from 'unzipper';
import { ImportError } from '../errors';
import type { ByteSource, ReadOptions, ReadPosition, ReadResult, RecordSink } from './index';

/**
 * Inflates every entry (discarding the bytes) and counts them: over `limit` → FILE_TOO_LARGE, whatever the
 * headers claim. It reads the local entries in order, with the same unzipper that exceljs reads them with, so both
 * see the same entries. A zip without a workbook part is not XLSX.
 */
export async function checkWorkbookZip(source: ByteSource, limit: number): Promise<{ sharedStringsBytes: number }> {
  const names = new Set<string>();
  let total = 0;
  let sharedStringsBytes = 0;
  const input = source.open(0);
  const zip = unzipper.Parse({ forceStream: true });
  const tooLarge = () => new ImportError('FILE_TOO_LARGE', `The workbook unpacks to more than ${limit} bytes`, { limit });
  try {
    await new Promise<void>((resolve, reject) => {
      input.on('error', reject);
      zip.on('error', (err: Error) => reject(err instanceof ImportError ? err : new ImportError('UNSUPPORTED_FORMAT', `The file is not a readable XLSX workbook: ${err.message}`)));
      zip.on('close', resolve);
      zip.on('finish', resolve);
      zip.on('data', (entry: Entry) => {
        names.add(entry.path);
        const shared = entry.path === 'xl/sharedStrings.xml';
        entry.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (shared) sharedStringsBytes += chunk.length;
          if (total > limit) {
            entry.destroy?.();
            input.destroy();
            reject(tooLarge());
          }
        });
        entry.on('error', reject);
      });
      input.pipe(zip);
    });
  } finally {
    input.destroy();
  }
  if (total > limit) throw tooLarge();
  if (!names.has('xl/workbook.xml')) throw new ImportError('UNSUPPORTED_FORMAT', 'The file is a zip archive but not an XLSX workbook');
  return { sharedStringsBytes };
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

/** Row values of exceljs (1-based, sparse) as cells, trailing empty ones dropped. */
function rowCells(values: unknown): string[] {
  const arr = Array.isArray(values) ? values : [];
  const cells: string[] = [];
  for (let i = 1; i < arr.length; i++) cells.push(cellText(arr[i]));
  while (cells.length && cells[cells.length - 1] === '') cells.pop();
  return cells;
}

interface SheetInfo {
  name?: string;
}

/**
 * What the heap can spare for a workbook's shared strings: half its free room, at ~4 bytes of heap per byte of XML
 * (at the default 256 MB heap cap: ~34 MB of shared strings, about 430,000 rows of the benchmark's contacts).
 */
function sharedStringsBudget(): number {
  const heap = v8.getHeapStatistics();
  return Math.floor((heap.heap_size_limit - heap.used_heap_size) / 2 / 4);
}

export async function readXlsx(source: ByteSource, opts: ReadOptions, sink: RecordSink): Promise<ReadResult> {
  const { sharedStringsBytes } = await checkWorkbookZip(source, opts.maxUncompressedBytes);
  // Cells name their text by index into the shared-strings part, so the reader must hold all of it while it reads
  // the sheet: measured, ~4 bytes of heap per byte of that XML once the reader's own garbage is counted (a 100k-row
  // contacts workbook: 7.8 MB of shared strings, +65 MB worker RSS; 1M rows: 78 MB, +470 MB). A part this heap cannot hold would not fail: it would
  // crawl in back-to-back garbage collections until the process ran out of memory and the retry began again.
  // Refused at once instead, with what to do (a CSV of any size streams; or more heap for the workers).
  const maxShared = opts.maxSharedStringsBytes ?? sharedStringsBudget();
  if (sharedStringsBytes > maxShared) {
    throw new ImportError('FILE_TOO_LARGE', `This workbook's shared strings (${Math.round(sharedStringsBytes / 1e6)} MB of text) need more memory than an import worker has `
      + `(room for ${Math.round(maxShared / 1e6)} MB); save the sheet as CSV, which imports at any size, or give the workers more heap (WORKER_MAX_OLD_SPACE_MB)`,
    { sharedStringsBytes, limit: maxShared });
  }
  // Loaded by the first XLSX read: most worker processes never read one and need not hold exceljs in their heap.
  const { default: ExcelJS } = await import('exceljs');
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(source.open(0), {
    sharedStrings: 'cache', styles: 'cache', hyperlinks: 'ignore', worksheets: 'emit', entries: 'ignore',
  });
  const wanted = opts.sheet ?? 1;
  const seen: string[] = [];
  let position: ReadPosition = { row: 0, byte: null };
  let found: string | undefined;
  let index = 0;
  for await (const ws of reader) {
    index++;
    const name = (ws as unknown as SheetInfo).name ?? `Sheet${index}`;
    seen.push(name);
    const order = ((reader as unknown as { model?: { sheets?: { name: string }[] } }).model?.sheets ?? []).findIndex((s) => s.name === name) + 1 || index;
    const match = typeof wanted === 'number' ? order === wanted : name.toLowerCase() === wanted.trim().toLowerCase();
    if (!match || found !== undefined) continue;
    found = name;
    let width = 0;
    let sinceBreak = 0;
    for await (const row of ws) {
      const n = row.number;
      position = { row: n, byte: null };
      if (n < opts.headerRow) continue;
      const cells = rowCells(row.values);
      if (n === opts.headerRow) {
        width = cells.length;
        sink.header(cells.map((c) => c.trim()), name);
        continue;
      }
      if (width === 0) {
        // The header row was blank or missing: there is nothing to map.
        throw new ImportError('EMPTY_FILE', `The sheet "${name}" has no header row (row ${opts.headerRow})`);
      }
      if (opts.from && n <= opts.from.row) continue;
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
    if (width === 0) throw new ImportError('EMPTY_FILE', `The sheet "${name}" has no header row (row ${opts.headerRow})`);
  }
  if (found === undefined) {
    throw new ImportError('SHEET_NOT_FOUND', `The workbook has no sheet ${typeof wanted === 'number' ? `number ${wanted}` : `"${wanted}"`} (it has: ${seen.join(', ')})`, { sheets: seen });
  }
  const wait = sink.pause(position);
  if (wait) await wait;
  return { end: position, sheet: found };
}
