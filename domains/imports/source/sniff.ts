// What a file is, judged by its first bytes: XLSX (a zip), or delimited text in some encoding — never by its name.
import { isUtf8 } from 'node:buffer';
import { ImportError } from '../errors';
import type { Delimiter, SourceEncoding, SourceOptions } from '../types';
import { DELIMITERS } from '../types';

/** How many bytes the sniffer looks at. */
export const SNIFF_BYTES = 64 * 1024;

export interface Sniffed {
  format: 'csv' | 'xlsx';
  encoding: SourceEncoding;
  bomLength: number;
  /** Detected (or given) for CSV; ',' for XLSX, where it means nothing. */
  delimiter: Delimiter;
}

const startsWith = (buf: Buffer, bytes: number[]) => bytes.every((b, i) => buf[i] === b);

const NOT_SUPPORTED: [number[], string][] = [
  [[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1], 'an Excel 97-2003 workbook (.xls): save it as .xlsx or CSV'],
  [[0x25, 0x50, 0x44, 0x46], 'a PDF'],
  [[0x1f, 0x8b], 'gzip-compressed'],
  [[0x89, 0x50, 0x4e, 0x47], 'a PNG image'],
  [[0xff, 0xd8, 0xff], 'a JPEG image'],
];

/** The encoding's label for TextDecoder ('latin1' is Windows-1252 there, which is what "Latin-1" files are). */
export const decoderLabel = (e: SourceEncoding): string => e;

/**
 * Text files: the BOM decides, else the option, else UTF-16 without BOM by its NUL pattern, else UTF-8 when the
 * sample is valid UTF-8, else Latin-1. A sample that decodes to control characters is not text.
 */
export function sniff(head: Buffer, opts: SourceOptions = {}): Sniffed {
  if (head.length === 0) throw new ImportError('EMPTY_FILE', 'The file is empty');
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return { format: 'xlsx', encoding: 'utf-8', bomLength: 0, delimiter: ',' };
  for (const [magic, what] of NOT_SUPPORTED) {
    if (startsWith(head, magic)) throw new ImportError('UNSUPPORTED_FORMAT', `The file is ${what}, not CSV, TSV or XLSX`);
  }
  let encoding: SourceEncoding;
  let bomLength = 0;
  if (startsWith(head, [0xef, 0xbb, 0xbf])) [encoding, bomLength] = ['utf-8', 3];
  else if (startsWith(head, [0xff, 0xfe])) [encoding, bomLength] = ['utf-16le', 2];
  else if (startsWith(head, [0xfe, 0xff])) [encoding, bomLength] = ['utf-16be', 2];
  else if (opts.encoding && opts.encoding !== 'auto') encoding = opts.encoding;
  else encoding = guessEncoding(head);
  const text = decodeSample(head.subarray(bomLength), encoding);
  if (text.trim() === '') throw new ImportError('EMPTY_FILE', 'The file has no rows');
  let controls = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12) || c === 0x7f) controls++;
  }
  if (controls > Math.max(2, text.length / 1000)) {
    throw new ImportError('UNSUPPORTED_FORMAT', 'The file is not CSV, TSV or XLSX (it holds binary data)');
  }
  const delimiter = opts.delimiter && opts.delimiter !== 'auto' ? opts.delimiter : detectDelimiter(text);
  return { format: 'csv', encoding, bomLength, delimiter };
}

function guessEncoding(head: Buffer): SourceEncoding {
  // UTF-16 without a BOM: ASCII text has a NUL in every other byte.
  const n = Math.min(head.length, 4096) & ~1;
  let evenNul = 0;
  let oddNul = 0;
  for (let i = 0; i < n; i += 2) {
    if (head[i] === 0) evenNul++;
    if (head[i + 1] === 0) oddNul++;
  }
  if (n >= 4 && oddNul > n / 2 * 0.6 && evenNul < n / 2 * 0.1) return 'utf-16le';
  if (n >= 4 && evenNul > n / 2 * 0.6 && oddNul < n / 2 * 0.1) return 'utf-16be';
  // A sample cut inside a multi-byte character is still UTF-8.
  for (let cut = 0; cut < 4 && cut < head.length; cut++) {
    if (isUtf8(head.subarray(0, head.length - cut))) return 'utf-8';
  }
  return 'latin1';
}

function decodeSample(buf: Buffer, encoding: SourceEncoding): string {
  return new TextDecoder(decoderLabel(encoding), { fatal: false }).decode(buf);
}

/**
 * The candidate (, ; tab |) found the same non-zero number of times, outside quotes, on the most of the sample's
 * first records; ties go to the earlier candidate. A file with one column has none of them: ','.
 */
export function detectDelimiter(text: string): Delimiter {
  const counts: number[][] = [];
  let current = DELIMITERS.map(() => 0);
  let quoted = false;
  const end = text.length === SNIFF_BYTES ? text.lastIndexOf('\n') : text.length; // the last line may be cut
  for (let i = 0; i < end && counts.length < 50; i++) {
    const ch = text[i];
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '\n') {
      counts.push(current);
      current = DELIMITERS.map(() => 0);
    } else if (!quoted) {
      const k = DELIMITERS.indexOf(ch as Delimiter);
      if (k >= 0) current[k]++;
    }
  }
  if (current.some((c) => c > 0)) counts.push(current);
  let best: Delimiter = ',';
  let bestScore = 0;
  DELIMITERS.forEach((d, k) => {
    const perLine = counts.map((c) => c[k]).filter((c) => c > 0);
    if (!perLine.length) return;
    const freq = new Map<number, number>();
    for (const c of perLine) freq.set(c, (freq.get(c) ?? 0) + 1);
    const consistent = Math.max(...freq.values());
    if (consistent > bestScore) [best, bestScore] = [d, consistent];
  });
  return best;
}
