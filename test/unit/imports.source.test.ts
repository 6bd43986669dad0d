// Telling what a file is from its bytes: format, encoding, delimiter; invalid UTF-8 pinned to its bytes; CSV formula neutralising.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import ExcelJS from 'exceljs';
import { ImportError } from '../../domains/imports/errors';
import { neutralizeFormula } from '../../domains/imports/rejections';
import { detectSource } from '../../domains/imports/source';
import { SharedStringStore } from '../../domains/imports/source/shared-strings';
import { detectDelimiter, sniff } from '../../domains/imports/source/sniff';
import { invalidUtf8Offsets, Utf8Guard } from '../../domains/imports/source/utf8';
import { readXlsx } from '../../domains/imports/source/xlsx';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (err instanceof ImportError) return err.code;
    throw err;
  }
  return 'accepted';
};

describe('sniff', () => {
  it('knows XLSX by the zip magic, not the name', () => {
    expect(sniff(Buffer.from('PK\x03\x04rest')).format).toBe('xlsx');
  });

  it('refuses known binary formats and binary data with UNSUPPORTED_FORMAT, empty input with EMPTY_FILE', () => {
    expect(code(() => sniff(Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0])))).toBe('UNSUPPORTED_FORMAT');
    expect(code(() => sniff(Buffer.from('%PDF-1.7\n')))).toBe('UNSUPPORTED_FORMAT');
    expect(code(() => sniff(Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) % 32))))).toBe('UNSUPPORTED_FORMAT');
    expect(code(() => sniff(Buffer.alloc(0)))).toBe('EMPTY_FILE');
    expect(code(() => sniff(Buffer.from('\ufeff \r\n')))).toBe('EMPTY_FILE');
  });

  it('reads BOMs for UTF-8 and UTF-16, guesses UTF-16 without one, UTF-8 when valid and Latin-1 otherwise', () => {
    expect(sniff(Buffer.from('\ufeffa;b\n1;2\n'))).toMatchObject({ encoding: 'utf-8', bomLength: 3, delimiter: ';' });
    expect(sniff(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a,b\n', 'utf16le')]))).toMatchObject({ encoding: 'utf-16le', bomLength: 2 });
    const be = Buffer.from('a\tb\n', 'utf16le').swap16();
    expect(sniff(Buffer.concat([Buffer.from([0xfe, 0xff]), be]))).toMatchObject({ encoding: 'utf-16be', bomLength: 2, delimiter: '\t' });
    expect(sniff(Buffer.from('name,city\nAda,Paris\n', 'utf16le')).encoding).toBe('utf-16le');
    expect(sniff(Buffer.from('name,city\nZoë,Zürich\n')).encoding).toBe('utf-8');
    expect(sniff(Buffer.from('name,city\nZo\xeb,Z\xfcrich\n', 'latin1')).encoding).toBe('latin1');
    expect(sniff(Buffer.from('name,city\nZoë\n'), { encoding: 'latin1' }).encoding).toBe('latin1');
  });

  it('a sample cut inside a UTF-8 character is still UTF-8', () => {
    const text = Buffer.from(`a,b\n${'é'.repeat(40000)}\n`);
    expect(sniff(text.subarray(0, 65535)).encoding).toBe('utf-8');
  });
});

describe('detectDelimiter', () => {
  it('finds the separator that is consistent across lines, ignoring quoted text', () => {
    expect(detectDelimiter('a;b;c\n1;2;3\n')).toBe(';');
    expect(detectDelimiter('a\tb\n"x, y"\t2\n')).toBe('\t');
    expect(detectDelimiter('a|b\n1|2\n')).toBe('|');
    expect(detectDelimiter('name,note\nAda,"a;b;c;d"\nBob,x\n')).toBe(',');
    expect(detectDelimiter('email\na@x.com\n')).toBe(',');
  });
});

describe('Utf8Guard', () => {
  it('finds invalid bytes, also across chunk boundaries, and pins them to a byte range', () => {
    expect(invalidUtf8Offsets(Buffer.from([0x61, 0xff, 0x62, 0xc3]))).toEqual([1, 3]);
    const g = new Utf8Guard();
    const text = Buffer.from('ok,é\nbad,\xff\n', 'latin1');
    const good = Buffer.from('ok,é\n');
    const all = Buffer.concat([good, Buffer.from('bad,'), Buffer.from([0xff]), Buffer.from('\n')]);
    void text;
    // 'é' split across two chunks is valid
    g.check(all.subarray(0, 4), 0);
    g.check(all.subarray(4), 4);
    g.end(all.length);
    expect(g.spans(0, good.length)).toBe(false);
    expect(g.spans(good.length, all.length)).toBe(true);
  });

  it('a character left unfinished at the end is invalid', () => {
    const g = new Utf8Guard();
    g.check(Buffer.from([0x61, 0xe2, 0x82]), 0);
    g.end(3);
    expect(g.spans(0, 3)).toBe(true);
  });
});

describe('neutralizeFormula', () => {
  it('prefixes cells a spreadsheet would evaluate', () => {
    for (const c of ['=1+1', '+1', '-2', '@SUM(A1)', '\t=x', '\r=x']) expect(neutralizeFormula(c)).toBe(`'${c}`);
    for (const c of ['Ada', '1', 'a=b', '']) expect(neutralizeFormula(c)).toBe(c);
  });
});

describe('SharedStringStore', () => {
  it('gives back every string by index, through a cache far smaller than the text, in any order', () => {
    const texts = Array.from({ length: 2000 }, (_, i) => (i % 97 === 0 ? '' : `${i} Zoë ${'é'.repeat(i % 50)}${i % 333 === 1 ? 'x'.repeat(700) : ''} 李`));
    const store = SharedStringStore.open({ blockBytes: 128, blocks: 3 });
    try {
      for (const t of texts) store.add(t);
      store.seal();
      expect(store.size).toBe(2000);
      const order = texts.map((_, i) => (i * 7919) % texts.length);
      expect(order.map((i) => store.get(i))).toEqual(order.map((i) => texts[i]));
      expect(texts.map((_, i) => store.get(i))).toEqual(texts);
      // A damaged cell naming a string the part does not have reads as empty.
      expect([store.get(2000), store.get(-1), store.get(Number.NaN)]).toEqual(['', '', '']);
      expect(store.misses).toBeGreaterThan(100);
    } finally {
      store.close();
    }
  });

  it('refuses with FILE_TOO_LARGE and what to do when the temporary disk is full', () => {
    const store = SharedStringStore.open({});
    const full = jest.spyOn(fs, 'writeSync').mockImplementation(() => { throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }); });
    try {
      const err = (() => {
        try {
          store.add('x');
          store.seal();
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(ImportError);
      expect(err).toMatchObject({ code: 'FILE_TOO_LARGE' });
      expect((err as Error).message).toMatch(/TMPDIR.*save the sheet as CSV/);
    } finally {
      full.mockRestore();
      store.close();
    }
  });
});

describe('readXlsx temporary files', () => {
  const workbook = async (rows: number) => {
    const wb = new ExcelJS.Workbook();
    const ws = wb.addWorksheet('Contacts');
    ws.addRow(['email', 'name']);
    for (let i = 0; i < rows; i++) ws.addRow([`p${i}@x.com`, `Person ${i}`]);
    return Buffer.from(await wb.xlsx.writeBuffer());
  };
  /** This process's open files under `dir` (as the kernel names them: an unlinked one ends in "(deleted)"). */
  const openUnder = (dir: string) => fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  }).filter((l) => l.startsWith(dir));

  it('are unlinked while the workbook is read and closed after it, whether it ends well or in an error', async () => {
    const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-xlsx-test-'));
    const bytes = await workbook(1200);
    const source = { open: () => Readable.from([bytes]) };
    const seen: { files: string[]; open: string[] }[] = [];
    let rows = 0;
    const sink = (failAt?: number) => ({
      header() { seen.push({ files: fs.readdirSync(tempDir), open: openUnder(tempDir) }); },
      row(n: number) { rows++; if (n === failAt) throw new Error('the sink gave up'); },
      unreadable() { /* none */ },
      pause() { /* none */ },
    });
    const opts = { headerRow: 1, maxUncompressedBytes: 1e8, tempDir };
    expect(await readXlsx(source, opts, sink())).toMatchObject({ end: { row: 1201 }, sheet: 'Contacts' });
    expect(rows).toBe(1200);
    await expect(readXlsx(source, opts, sink(600))).rejects.toThrow('the sink gave up');
    // While reading: nothing on disk by name, the two files open but already deleted; after either end: none open.
    expect(seen).toEqual([0, 1].map(() => ({ files: [], open: [expect.stringMatching(/strings \(deleted\)$/), expect.stringMatching(/offsets \(deleted\)$/)] })));
    expect(openUnder(tempDir)).toEqual([]);
    expect(fs.readdirSync(tempDir)).toEqual([]);
    fs.rmdirSync(tempDir);
  });
});

describe('the API\'s look for a CSV header', () => {
  /** A CSV of long records (`width` characters) with a short header row at `headerRow`, counting the bytes read from it. */
  function longRecords(records: number, width: number, headerRow: number) {
    const counter = { read: 0 };
    const long = Buffer.from(`${'x'.repeat(width)},y\n`);
    const header = Buffer.from('name,email\n');
    const source = {
      open: () => Readable.from((function* chunks() {
        for (let i = 1; i <= records; i++) {
          const record = i === headerRow ? header : long;
          counter.read += record.length;
          yield record;
        }
      })(), { highWaterMark: 1 }),
    };
    return { source, counter, chunk: long.length };
  }
  const budget = { maxUncompressedBytes: 1e9, headerScanBytes: 4 * 1024 * 1024 };

  it('reads at most its budget (and a chunk or two) of a file whose header row is further down, and says it did not find it', async () => {
    const { source, counter, chunk } = longRecords(200, 256 * 1024, 150); // 50 MB, the header row at ~37 MB
    expect(await detectSource(source, { headerRow: 150 }, budget)).toBeNull();
    expect(counter.read).toBeLessThanOrEqual(budget.headerScanBytes + 2 * chunk);
  });

  it('finds a header row within the budget as before; without a budget, wherever it is', async () => {
    const within = longRecords(20, 1024, 3);
    expect((await detectSource(within.source, { headerRow: 3 }, budget))?.header).toEqual(['name', 'email']);
    const far = longRecords(40, 256 * 1024, 30); // the header row at ~7.5 MB
    expect(await detectSource(far.source, { headerRow: 30 }, budget)).toBeNull();
    expect((await detectSource(far.source, { headerRow: 30 }, { maxUncompressedBytes: 1e9 }))?.header).toEqual(['name', 'email']);
  });
});
