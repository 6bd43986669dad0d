// Files as people send them: XLSX (a sheet by name), every encoding, an Excel CSV export (semicolons, BOM, CRLF,
// multi-line cells), bytes that do not decode, a zip bomb; and a staging that resumes mid-file without staging twice.
import yazl from 'yazl';
import { createSequelize, ImportRejection, ImportRun } from '../../db';
import { stageImport, stagingTable } from '../../domains/imports/pipeline';
import type { StageCursor } from '../../domains/imports/staging';
import { buildTenant } from '../helpers/factories';
import { createRun, fileSource, importErrorOf, rezip, runImport, subscribersOf, xlsx, zipEntries } from '../helpers/imports';

const sequelize = createSequelize(process.env.DATABASE_URL!);
afterAll(() => sequelize.close());

const COLUMNS = [{ source: 'email', field: 'email' }, { source: 'name', field: 'name' }, { source: 'city', field: 'attributes.city' }];



describe('XLSX', () => {
  it('reads the sheet asked for by name, with numbers, dates, formulas and rich text as text', async () => {
    const tenant = await buildTenant();
    const file = await xlsx({
      Notes: [['nothing', 'here']],
      Contacts: [
        ['email', 'name', 'city', 'since', 'seats'],
        ['ada@x.com', { richText: [{ text: 'Ada ' }, { text: 'L' }] }, 'Paris', new Date(Date.UTC(2024, 0, 31)), 3],
        [],
        ['bob@x.com', 'Bob', { formula: 'UPPER("rome")', result: 'ROME' }, new Date(Date.UTC(2024, 1, 1)), 10],
      ],
    });
    const cols = [...COLUMNS, { source: 'since', field: 'attributes.since' }, { source: 'seats', field: 'attributes.seats', transforms: [{ op: 'number' as const }] }];
    const { run, counts } = await runImport(sequelize, tenant, file, { columns: cols, source: { sheet: 'contacts' } });
    expect(counts).toMatchObject({ read: 2, valid: 2, created: 2, rejected: 0 });
    expect(await subscribersOf(tenant)).toEqual([
      expect.objectContaining({ email: 'ada@x.com', name: 'Ada L', attributes: { city: 'Paris', since: '2024-01-31', seats: 3 } }),
      expect.objectContaining({ email: 'bob@x.com', name: 'Bob', attributes: { city: 'ROME', since: '2024-02-01', seats: 10 } }),
    ]);
    const stored = await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } });
    expect(stored?.detected).toMatchObject({ format: 'xlsx', sheet: 'Contacts', header: ['email', 'name', 'city', 'since', 'seats'] });
  });

  it('names the sheets when the one asked for is not there, and the rows by their sheet row number', async () => {
    const tenant = await buildTenant();
    const file = await xlsx({ A: [['email', 'name', 'city'], ['x@x.com', 'X', 'Y'], ['nope', 'N', 'Z']] });
    const missing = await createRun(tenant, { columns: COLUMNS, source: { sheet: 'B' } });
    const err = await importErrorOf(stageImport(sequelize, { tenantId: tenant.id, importId: missing.id }, { source: fileSource(file) }));
    expect([err.code, err.details]).toEqual(['SHEET_NOT_FOUND', { sheets: ['A'] }]);
    const { run } = await runImport(sequelize, tenant, file, { columns: COLUMNS, source: { sheet: 1 } });
    expect(await ImportRejection.findAll({ where: { importId: run.id } })).toEqual([expect.objectContaining({ rowNo: 3, code: 'INVALID_FORMAT', columnName: 'email' })]);
  });

  it('reads a workbook of any size: its shared strings go to disk and come back exact, rich text as its text, in either zip order', async () => {
    // Unique multi-byte strings (so they straddle the cache's blocks), repeated ones (read back from early blocks
    // while later ones stream in), rich text, and a cache of two 256-byte blocks: almost every string is read
    // from disk. (The old reader held them all on the heap and refused a workbook past its budget.)
    const rows = [['email', 'name', 'city'], ...Array.from({ length: 3000 }, (_, i) => [
      `p${i}@x.com`, i % 500 === 7 ? { richText: [{ text: `Zoë ` }, { font: { bold: true }, text: `Nº ${i}` }] } : `Zoë Ærø Nº ${i} ${'é'.repeat(i % 90)}`, `City ${i % 13}`,
    ])];
    const written = await xlsx({ Contacts: rows });
    const expected = rows.slice(1).map((r, i) => ({ email: `p${i}@x.com`, name: i % 500 === 7 ? `Zoë Nº ${i}` : r[1], attributes: { city: `City ${i % 13}` } }))
      .sort((a, b) => (a.email < b.email ? -1 : 1));
    const stringsFirst = await rezip(written, ['[Content_Types].xml', 'xl/workbook.xml', 'xl/_rels/workbook.xml.rels', 'xl/sharedStrings.xml', 'xl/styles.xml']);
    const order = async (file: Buffer) => [...(await zipEntries(file)).keys()].filter((p) => /sheet1|sharedStrings/.test(p));
    expect(await order(written)).toEqual(['xl/worksheets/sheet1.xml', 'xl/sharedStrings.xml']);
    expect(await order(stringsFirst)).toEqual(['xl/sharedStrings.xml', 'xl/worksheets/sheet1.xml']);
    for (const file of [written, stringsFirst]) {
      const tenant = await buildTenant();
      const { counts } = await runImport(sequelize, tenant, file, { columns: COLUMNS }, { xlsx: { sharedStringsCache: { blockBytes: 256, blocks: 2 } } });
      expect(counts).toMatchObject({ read: 3000, valid: 3000, created: 3000, rejected: 0 });
      expect((await subscribersOf(tenant)).map(({ email, name, attributes }) => ({ email, name, attributes }))).toEqual(expected);
    }
  });

  it('refuses a zip bomb (FILE_TOO_LARGE) and a zip that is not a workbook (UNSUPPORTED_FORMAT)', async () => {
    const tenant = await buildTenant();
    const zip = async (entries: Record<string, Buffer>) => {
      const z = new yazl.ZipFile();
      for (const [name, data] of Object.entries(entries)) z.addBuffer(data, name);
      z.end();
      const parts: Buffer[] = [];
      for await (const c of z.outputStream) parts.push(c as Buffer);
      return Buffer.concat(parts);
    };
    // 200 MB of zeros compress to ~200 KB.
    const bomb = await zip({ '[Content_Types].xml': Buffer.from('<Types/>'), 'xl/workbook.xml': Buffer.from('<workbook/>'), 'xl/worksheets/sheet1.xml': Buffer.alloc(200 * 1024 * 1024) });
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const run = await createRun(tenant, { columns: COLUMNS });
    const err = await importErrorOf(stageImport(sequelize, { tenantId: tenant.id, importId: run.id }, { source: fileSource(bomb), maxUncompressedBytes: 50 * 1024 * 1024 }));
    expect(err.code).toBe('FILE_TOO_LARGE');
    expect(err.status).toBe(413);
    const notXlsx = await zip({ 'word/document.xml': Buffer.from('<doc/>') });
    const run2 = await createRun(tenant, { columns: COLUMNS });
    expect((await importErrorOf(stageImport(sequelize, { tenantId: tenant.id, importId: run2.id }, { source: fileSource(notXlsx) }))).code).toBe('UNSUPPORTED_FORMAT');
  });
});

describe('encodings', () => {
  const text = 'email,name,city\nzoe@x.com,Zoë Ærø,Zürich\nli@x.com,李小龍,北京\n';
  const expected = [
    expect.objectContaining({ email: 'li@x.com', name: '李小龍', attributes: { city: '北京' } }),
    expect.objectContaining({ email: 'zoe@x.com', name: 'Zoë Ærø', attributes: { city: 'Zürich' } }),
  ];

  it.each([
    ['UTF-8', Buffer.from(text)],
    ['UTF-8 with BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])],
    ['UTF-16 LE with BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')])],
    ['UTF-16 BE with BOM', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()])],
  ])('%s', async (_name, bytes) => {
    const tenant = await buildTenant();
    const { counts } = await runImport(sequelize, tenant, bytes, { columns: COLUMNS });
    expect(counts).toMatchObject({ read: 2, created: 2, rejected: 0 });
    expect(await subscribersOf(tenant)).toEqual(expected);
  });

  it('Latin-1: detected when the bytes are not UTF-8, or as asked', async () => {
    const tenant = await buildTenant();
    const latin = Buffer.from('email,name,city\nzoe@x.com,Zoë Ærø,Zürich\n', 'latin1');
    const { run } = await runImport(sequelize, tenant, latin, { columns: COLUMNS });
    expect((await subscribersOf(tenant))[0]).toMatchObject({ name: 'Zoë Ærø', attributes: { city: 'Zürich' } });
    expect((await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } }))?.detected?.encoding).toBe('latin1');
    const other = await buildTenant();
    await runImport(sequelize, other, latin, { columns: COLUMNS, source: { encoding: 'latin1' } });
    expect((await subscribersOf(other))[0].name).toBe('Zoë Ærø');
  });

  it('bytes that do not decode reject their row only, as INVALID_ENCODING with the column', async () => {
    const tenant = await buildTenant();
    // A long valid UTF-8 start (so detection says UTF-8), then a Latin-1 byte in one row.
    const head = `email,name,city\n${Array.from({ length: 3000 }, (_, i) => `u${i}@x.com,Zoë ${i},Zürich`).join('\n')}\n`;
    const bytes = Buffer.concat([Buffer.from(head), Buffer.from('bad@x.com,Zo\xeb,Rome\n', 'latin1'), Buffer.from('ok@x.com,Ok,Rome\n')]);
    const { run, counts } = await runImport(sequelize, tenant, bytes, { columns: COLUMNS });
    expect(counts).toMatchObject({ read: 3002, created: 3001, rejected: 1 });
    expect(await ImportRejection.findAll({ where: { importId: run.id } })).toEqual([expect.objectContaining({ rowNo: 3002, code: 'INVALID_ENCODING', columnName: 'name' })]);
  });
});

describe('an Excel CSV export', () => {
  it('semicolons, a BOM, CRLF line ends and quoted cells over several lines', async () => {
    const tenant = await buildTenant();
    const csv = '\ufeffemail;name;city\r\nada@x.com;"Ada\r\nLovelace";"London; UK"\r\n"bob@x.com";"Bob ""B""";Paris\r\n\r\ncy@x.com;Cy;Rome\r\n';
    const { run, counts } = await runImport(sequelize, tenant, csv, { columns: COLUMNS });
    expect(counts).toMatchObject({ read: 3, created: 3, rejected: 0 });
    expect(await subscribersOf(tenant)).toEqual([
      expect.objectContaining({ email: 'ada@x.com', name: 'Ada\r\nLovelace', attributes: { city: 'London; UK' } }),
      expect.objectContaining({ email: 'bob@x.com', name: 'Bob "B"' }),
      expect.objectContaining({ email: 'cy@x.com', name: 'Cy' }),
    ]);
    expect((await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } }))?.detected).toMatchObject({ encoding: 'utf-8', bomLength: 3, delimiter: ';' });
  });
});

describe('resuming staging', () => {
  const rows = Array.from({ length: 1000 }, (_, i) => `u${i}@x.com,"User\n${i}",City ${i % 7}`);
  const csv = `email,name,city\n${rows.slice(0, 500).join('\n')}\nbroken,x,y\n${rows.slice(500).join('\n')}\n`;

  it.each([['UTF-8 (resumes at the byte)', Buffer.from(csv)], ['UTF-16 (re-reads and passes over)', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(csv, 'utf16le')])]])(
    '%s: a retry after a crash mid-file stages every row exactly once',
    async (_name, bytes) => {
      const tenant = await buildTenant();
      const run = await createRun(tenant, { columns: COLUMNS });
      const ids = { tenantId: tenant.id, importId: run.id };
      const source = fileSource(bytes);
      const beats: StageCursor[] = [];
      // The worker dies after its third commit, having heartbeated only the first two.
      let commits = 0;
      await expect(stageImport(sequelize, ids, {
        source, chunkRows: 150,
        progress: (c) => { if (++commits === 3) throw new Error('worker killed'); beats.push(c); },
      })).rejects.toThrow('worker killed');
      const last = beats[beats.length - 1];
      expect(last.row).toBeGreaterThan(300);
      expect(last.read).toBeGreaterThan(290);
      const staged = await sequelize.query(`SELECT count(*)::int AS n FROM ${stagingTable(run.id)}`, { plain: true }) as { n: number };
      expect(staged.n).toBeGreaterThan(last.valid); // the third commit is there, beyond the cursor
      const result = await stageImport(sequelize, ids, { source, cursor: last, chunkRows: 150 });
      expect(result).toMatchObject({ read: 1001, valid: 1000, rejected: 1 });
      const [{ n, distinct }] = await sequelize.query(`SELECT count(*)::int AS n, count(DISTINCT key)::int AS distinct FROM ${stagingTable(run.id)}`, { type: 'SELECT' }) as { n: number; distinct: number }[];
      expect([n, distinct]).toEqual([1000, 1000]);
      expect(await ImportRejection.count({ where: { importId: run.id } })).toBe(1);
    },
  );
});
