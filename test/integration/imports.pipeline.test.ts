// The import pipeline on real Postgres: read → validate → COPY staging → set-based merge, per strategy, dry run,
// rejections and their CSV, revert, and the subscriber rules an import must keep (consent, tags, lists).
import { parse } from 'csv-parse/sync';
import { ImportBeforeImage, ImportRejection, ImportRun, ListMember, Subscriber } from '../../db';
import { createSequelize } from '../../db';
import { eraseSubscriber } from '../../domains/audience/subscribers';
import { PermissionSet } from '../../domains/identity/permissions';
import { finishImport, mergeImport, rejectionsCsv, revertImport, stageImport } from '../../domains/imports/pipeline';
import { buildTenant } from '../helpers/factories';
import { buildList, createRun, fileSource, importErrorOf, runImport, subscribersOf } from '../helpers/imports';

const sequelize = createSequelize(process.env.DATABASE_URL!);
const ADMIN = new PermissionSet(['*'], null);
afterAll(() => sequelize.close());

const COLUMNS = [
  { source: 'email', field: 'email' },
  { source: 'name', field: 'name' },
  { source: 'plan', field: 'attributes.plan' },
  { source: 'city', field: 'attributes.city' },
];

async function seeded() {
  const tenant = await buildTenant();
  await runImport(sequelize, tenant, 'email,name,plan,city\nada@x.com,Ada,pro,Paris\nbob@x.com,Bob,free,Berlin\n', { columns: COLUMNS, strategy: 'skip' });
  return tenant;
}

const UPDATE = 'email,name,plan,city\nADA@x.com,,team,\nbob@x.com,Bob,free,Berlin\ncy@x.com,Cy,free,Rome\n';


describe('merge strategies', () => {
  it('skip creates new rows and leaves existing ones alone', async () => {
    const tenant = await seeded();
    const { counts } = await runImport(sequelize, tenant, UPDATE, { columns: COLUMNS, strategy: 'skip' });
    expect(counts).toMatchObject({ read: 3, valid: 3, rejected: 0, created: 1, updated: 0, unchanged: 0, skipped: 2 });
    const rows = await subscribersOf(tenant);
    expect(rows.find((r) => r.email === 'ada@x.com')).toMatchObject({ name: 'Ada', attributes: { plan: 'pro', city: 'Paris' } });
    expect(rows.map((r) => r.email)).toEqual(['ada@x.com', 'bob@x.com', 'cy@x.com']);
  });

  it('replace: mapped fields take the file\'s values, empty cells clear them; identical rows are unchanged', async () => {
    const tenant = await seeded();
    const { run, counts } = await runImport(sequelize, tenant, UPDATE, { columns: COLUMNS, strategy: 'replace' });
    expect(counts).toMatchObject({ created: 1, updated: 1, unchanged: 1, skipped: 0 });
    const ada = (await subscribersOf(tenant)).find((r) => r.email === 'ada@x.com')!;
    expect(ada).toMatchObject({ name: null, attributes: { plan: 'team' }, importId: run.id });
    const bob = (await subscribersOf(tenant)).find((r) => r.email === 'bob@x.com')!;
    expect(bob.importId).not.toBe(run.id);
    expect(await ImportBeforeImage.count({ where: { importId: run.id } })).toBe(1);
  });

  it('merge: non-empty cells overwrite, empty cells keep what is stored', async () => {
    const tenant = await seeded();
    const { counts } = await runImport(sequelize, tenant, UPDATE, { columns: COLUMNS, strategy: 'merge' });
    expect(counts).toMatchObject({ created: 1, updated: 1, unchanged: 1 });
    const ada = (await subscribersOf(tenant)).find((r) => r.email === 'ada@x.com')!;
    expect(ada).toMatchObject({ name: 'Ada', attributes: { plan: 'team', city: 'Paris' } });
  });

  it('never makes an unsubscribed address active again, but may unsubscribe one', async () => {
    const tenant = await seeded();
    await Subscriber.update({ status: 'unsubscribed' }, { where: { tenantId: tenant.id, email: 'ada@x.com' } });
    const cols = [{ source: 'email', field: 'email' }, { source: 'status', field: 'status' }];
    const { counts } = await runImport(sequelize, tenant, 'email,status\nada@x.com,active\nbob@x.com,Bounced\n', { columns: cols, strategy: 'replace' });
    expect(counts).toMatchObject({ updated: 1, unchanged: 1 });
    const rows = await subscribersOf(tenant);
    expect(rows.map((r) => r.status)).toEqual(['unsubscribed', 'bounced']);
  });

  it('adds list memberships by list name (any case) or id, and rejects lists that do not exist', async () => {
    const tenant = await buildTenant();
    const news = await buildList(tenant, 'Newsletter');
    const vip = await buildList(tenant, 'VIP');
    const cols = [{ source: 'email', field: 'email' }, { source: 'lists', field: 'lists', transforms: [{ op: 'split' as const, separator: ';' }] }];
    const { run, counts } = await runImport(sequelize, tenant, `email,lists\na@x.com,newsletter;${vip.id}\nb@x.com,Newsletter\nc@x.com,Newsleter\n`, { columns: cols });
    expect(counts).toMatchObject({ read: 3, valid: 2, rejected: 1, created: 2 });
    const members = await ListMember.findAll({ where: { tenantId: tenant.id } });
    expect(members.filter((m) => m.listId === news.id)).toHaveLength(2);
    expect(members.filter((m) => m.listId === vip.id)).toHaveLength(1);
    expect(members.every((m) => m.importId === run.id)).toBe(true);
    expect(await ImportRejection.findOne({ where: { importId: run.id } })).toMatchObject({ rowNo: 4, code: 'REFERENCE_NOT_FOUND', columnName: 'lists', raw: ['c@x.com', 'Newsleter'] });
  });
});

describe('dry run', () => {
  it('reports the counts and rejections the real run has, and writes nothing to the target', async () => {
    const tenant = await seeded();
    const before = await subscribersOf(tenant);
    const file = `${UPDATE}bad,Dee,free,Oslo\n`;
    const dry = await runImport(sequelize, tenant, file, { columns: COLUMNS, strategy: 'merge', dryRun: true });
    expect(await subscribersOf(tenant)).toEqual(before);
    expect(await ImportBeforeImage.count({ where: { importId: dry.run.id } })).toBe(0);
    const real = await runImport(sequelize, tenant, file, { columns: COLUMNS, strategy: 'merge' });
    expect(dry.counts).toEqual(real.counts);
    expect(dry.counts).toMatchObject({ read: 4, rejected: 1, created: 1, updated: 1, unchanged: 1 });
    expect((await ImportRun.findOne({ where: { tenantId: tenant.id, id: dry.run.id } }))?.phase).toBe('finished');
  });
});

describe('rejections', () => {
  const file = [
    'email,name,plan,city',
    'a@x.com,Ann,=HYPERLINK("http://evil"),Paris',
    'not-an-email,Bob,free,Rome',
    ',NoMail,free,Rome',
    'A@X.com,Ann again,pro,Oslo',
    'c@x.com,Cy,free',
    '"d@x.com","Dee ""D""","+1","-2"',
  ].join('\n');

  it('records row, column, code and message; duplicates of the key keep the first occurrence', async () => {
    const tenant = await buildTenant();
    const { run, counts } = await runImport(sequelize, tenant, file, { columns: COLUMNS });
    expect(counts).toMatchObject({ read: 6, valid: 2, rejected: 4, created: 2 });
    const rej = await ImportRejection.findAll({ where: { importId: run.id }, order: [['rowNo', 'ASC']] });
    expect(rej.map((r) => [r.rowNo, r.columnName, r.code])).toEqual([
      [3, 'email', 'INVALID_FORMAT'],
      [4, 'email', 'REQUIRED_FIELD'],
      [5, 'email', 'DUPLICATE_ENTRY'],
      [6, null, 'INVALID_FORMAT'],
    ]);
    expect(rej[2].message).toContain('Row 2');
    expect(rej[2].raw).toEqual(['A@X.com', 'Ann again', 'pro', 'Oslo']);
    expect((await subscribersOf(tenant)).find((s) => s.email === 'a@x.com')?.name).toBe('Ann');
  });

  it('erasing a subscriber leaves its address in no rejection of any import: neither the cells nor the message', async () => {
    const tenant = await buildTenant();
    const { run } = await runImport(sequelize, tenant, file, { columns: COLUMNS });
    const dup = (await ImportRejection.findOne({ where: { importId: run.id, code: 'DUPLICATE_ENTRY' } }))!;
    expect(dup.message).not.toMatch(/a@x\.com/i);
    // A rejection written before messages stopped naming the key.
    const older = await runImport(sequelize, tenant, 'email,name\nA@x.com,Ann\na@X.com,Ann again\n', { columns: COLUMNS.slice(0, 2) });
    await ImportRejection.update({ message: 'Row 2 has the same email (a@x.com): the first occurrence is imported' }, { where: { importId: older.run.id } });
    const ann = (await Subscriber.findOne({ where: { tenantId: tenant.id, email: 'a@x.com' } }))!;
    expect(await eraseSubscriber(sequelize, tenant.id, ann.id)).toBe(true);
    const left = await ImportRejection.findAll({ where: { tenantId: tenant.id, code: 'DUPLICATE_ENTRY' } });
    expect(left).toHaveLength(2);
    for (const r of left) {
      expect(JSON.stringify(r.get())).not.toMatch(/a@x\.com/i);
      expect(r.message).toBe('Row 2 has the same email: the first occurrence is imported');
    }
  });

  it('downloads as CSV: the rows as read plus _row, _column, _code, _message, formulas neutralised', async () => {
    const tenant = await buildTenant();
    const evil = 'email,name,plan,city\n"=cmd|\' /C calc\'!A0",x,@SUM(1),-3\n';
    const { run } = await runImport(sequelize, tenant, evil, { columns: COLUMNS });
    const chunks: Buffer[] = [];
    for await (const c of rejectionsCsv(sequelize, { tenantId: tenant.id, importId: run.id })) chunks.push(c as Buffer);
    const rows = parse(Buffer.concat(chunks).toString('utf8')) as string[][];
    expect(rows[0]).toEqual(['email', 'name', 'plan', 'city', '_row', '_column', '_code', '_message']);
    expect(rows[1].slice(0, 7)).toEqual(["'=cmd|' /C calc'!A0", 'x', "'@SUM(1)", "'-3", '2', 'email', 'INVALID_FORMAT']);
  });

  it('onRowError abort: any rejected row fails the import with ROWS_REJECTED before anything is written', async () => {
    const tenant = await buildTenant();
    const run = await createRun(tenant, { columns: COLUMNS, onRowError: 'abort' });
    const err = await importErrorOf(stageImport(sequelize, { tenantId: tenant.id, importId: run.id }, { source: fileSource(file) }));
    expect(err.code).toBe('ROWS_REJECTED');
    expect(err.details).toEqual({ rejected: 4 });
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(0);
  });

  it('refuses a file whose header lacks mapped columns (naming them), an empty file and a file that is not CSV', async () => {
    const tenant = await buildTenant();
    const stage = async (content: string | Buffer) => {
      const run = await createRun(tenant, { columns: COLUMNS });
      return importErrorOf(stageImport(sequelize, { tenantId: tenant.id, importId: run.id }, { source: fileSource(content) }));
    };
    const missing = await stage('email,name\na@x.com,A\n');
    expect([missing.code, missing.details?.columns]).toEqual(['MISSING_COLUMNS', ['plan', 'city']]);
    expect((await stage('')).code).toBe('EMPTY_FILE');
    expect((await stage('email,name,plan,city\n')).code).toBe('EMPTY_FILE');
    expect((await stage(Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1'))).code).toBe('UNSUPPORTED_FORMAT');
    // Headers no table has: one column more than 16,384 (the trailing comma makes the last), a name too long for a
    // rejection to name, too much text in all.
    const wide = await stage(`email,name,plan,city,${'x,'.repeat(16_380)}\na@x.com,A,pro,Paris\n`);
    expect([wide.code, wide.details]).toMatchObject(['MALFORMED_FILE', { columns: 16_385 }]);
    expect((await stage(`email,name,plan,city,${'n'.repeat(301)}\na@x.com,A,pro,Paris\n`)).details).toMatchObject({ column: 5 });
    expect((await stage(`email,name,plan,city,${Array.from({ length: 300 }, (_, i) => `${i}`.padEnd(250, '.')).join(',')}\na@x.com\n`)).details)
      .toMatchObject({ characters: expect.any(Number) });
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(0);
  });
});

describe('revert', () => {
  it('deletes what the import created, restores what it overwrote and removes the memberships it added', async () => {
    const tenant = await seeded();
    const list = await buildList(tenant, 'News');
    const before = await subscribersOf(tenant);
    const cols = [...COLUMNS, { source: 'lists', field: 'lists' }];
    const { run } = await runImport(sequelize, tenant, 'email,name,plan,city,lists\nada@x.com,Ada L,team,,News\nnew@x.com,New,free,Rome,News\n', { columns: cols, strategy: 'replace' });
    expect(await ListMember.count({ where: { listId: list.id } })).toBe(2);
    const result = await revertImport(sequelize, { tenantId: tenant.id, importId: run.id }, { revertedBy: 'test', caller: ADMIN });
    expect(result).toEqual({ deleted: 1, restored: 1 });
    expect(await subscribersOf(tenant)).toEqual(before);
    expect(await ListMember.count({ where: { listId: list.id } })).toBe(0);
    expect(await ImportBeforeImage.count({ where: { importId: run.id } })).toBe(0);
    expect((await importErrorOf(revertImport(sequelize, { tenantId: tenant.id, importId: run.id }, { revertedBy: 'test', caller: ADMIN }))).code).toBe('IMPORT_NOT_REVERTIBLE');
  });

  it('is refused (IMPORT_CHANGED_SINCE) once a row it wrote changed since, and then changes nothing', async () => {
    const tenant = await seeded();
    const { run } = await runImport(sequelize, tenant, UPDATE, { columns: COLUMNS, strategy: 'merge' });
    // Someone edits the row the import updated, the way the API does (no word about imports).
    const ada = (await Subscriber.findOne({ where: { tenantId: tenant.id, email: 'ada@x.com' } }))!;
    ada.name = 'Ada Lovelace';
    await ada.save();
    const after = await subscribersOf(tenant);
    const err = await importErrorOf(revertImport(sequelize, { tenantId: tenant.id, importId: run.id }, { revertedBy: 'test', caller: ADMIN }));
    expect(err.code).toBe('IMPORT_CHANGED_SINCE');
    expect(err.status).toBe(409);
    expect(err.details).toMatchObject({ updated: { expected: 1, unchanged: 0 }, created: { expected: 1, unchanged: 1 } });
    expect(await subscribersOf(tenant)).toEqual(after);
    expect((await ImportRun.findOne({ where: { tenantId: tenant.id, id: run.id } }))?.revertedAt).toBeNull();
  });

  it('a dry run has nothing to revert', async () => {
    const tenant = await seeded();
    const { run } = await runImport(sequelize, tenant, UPDATE, { columns: COLUMNS, dryRun: true });
    expect((await importErrorOf(revertImport(sequelize, { tenantId: tenant.id, importId: run.id }, { revertedBy: 'x', caller: ADMIN }))).code).toBe('IMPORT_NOT_REVERTIBLE');
  });
});

describe('merge resumes', () => {
  it('a retried merge applies only the chunks not committed, so counts and before-images are exact', async () => {
    const tenant = await seeded();
    const run = await createRun(tenant, { columns: COLUMNS, strategy: 'merge' });
    const ids = { tenantId: tenant.id, importId: run.id };
    const lines = ['email,name,plan,city', ...Array.from({ length: 20 }, (_, i) => `u${i}@x.com,U${i},free,Rome`), 'ada@x.com,Ada,team,Paris'];
    await stageImport(sequelize, ids, { source: fileSource(lines.join('\n')) });
    const abort = new AbortController();
    let seen = 0;
    await expect(mergeImport(sequelize, ids, { chunkRows: 5, progress: () => { if (++seen === 2) abort.abort(new Error('worker lost')); }, signal: abort.signal })).rejects.toThrow('worker lost');
    const counts = await mergeImport(sequelize, ids, { chunkRows: 5, concurrency: 2 });
    await finishImport(sequelize, ids);
    expect(counts).toMatchObject({ created: 20, updated: 1, unchanged: 0 });
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(22);
    expect(await ImportBeforeImage.count({ where: { importId: run.id } })).toBe(1);
  });

  it('a subscriber added by someone else while a new audience is merged is matched, not duplicated or lost', async () => {
    // Into an empty tenant every chunk takes the plain-INSERT path. Another writer's row for one of the file's
    // addresses, not yet committed when the chunk looks, is only seen by the INSERT (it waits on it, then hits the
    // unique index): the chunk must be run again and merge the file's row into that one.
    const tenant = await buildTenant();
    const run = await createRun(tenant, { columns: COLUMNS, strategy: 'merge' });
    const ids = { tenantId: tenant.id, importId: run.id };
    const lines = ['email,name,plan,city', ...Array.from({ length: 20 }, (_, i) => `u${i}@x.com,U${i},free,Rome`)];
    await stageImport(sequelize, ids, { source: fileSource(lines.join('\n')) });
    const other = await sequelize.transaction();
    try {
      await sequelize.query("INSERT INTO subscribers (tenant_id, id, email, name) VALUES ($1, gen_random_uuid(), 'u7@x.com', 'Other')",
        { bind: [tenant.id], transaction: other });
      const merging = mergeImport(sequelize, ids);
      // The merge's INSERT is waiting on the other writer's row lock: commit it now.
      for (let waited = 0; ; waited += 20) {
        const [[{ n }]] = await sequelize.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO subscribers%'") as [{ n: number }[], unknown];
        if (n > 0) break;
        if (waited > 10_000) throw new Error('the merge never waited on the other writer');
        await new Promise((r) => setTimeout(r, 20));
      }
      await other.commit();
      const counts = await merging;
      await finishImport(sequelize, ids);
      expect(counts).toMatchObject({ created: 19, updated: 1, unchanged: 0 });
    } finally {
      if (!(other as unknown as { finished?: string }).finished) await other.rollback();
    }
    const rows = await subscribersOf(tenant);
    expect(rows).toHaveLength(20);
    expect(rows.find((r) => r.email === 'u7@x.com')).toMatchObject({ name: 'U7', attributes: { plan: 'free', city: 'Rome' }, importId: run.id });
    expect(await ImportBeforeImage.count({ where: { importId: run.id } })).toBe(1);
  });
});
