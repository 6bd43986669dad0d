// Telling what a file is from its bytes: format, encoding, delimiter; invalid UTF-8 pinned to its bytes; CSV formula neutralising.
import { ImportError } from '../../domains/imports/errors';
import { neutralizeFormula } from '../../domains/imports/rejections';
import { detectDelimiter, sniff } from '../../domains/imports/source/sniff';
import { invalidUtf8Offsets, Utf8Guard } from '../../domains/imports/source/utf8';

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
