// Imports through the API on the real stack: options, mapping templates (versions, strong ETag/If-Match), runs as
// workflows (202 + Location, phases and counts, dry run), refusals before any work, rejections paged and as CSV,
// cancel, revert, permissions and tenant isolation.
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { parse } from 'csv-parse/sync';
import { VERSION_LIST_LIMIT } from '../../api/conventions';
import { AuditEvent, ImportRun, Role, StoredFile, Subscriber, User } from '../../db';
import type { importWorkflow } from '../../workflows/imports';
import { IMPORTS_TASK_QUEUE } from '../../workflows/imports.api';
import { STATUS } from '../../workflows/search-attributes';
import { startTestApp, TestApp } from '../helpers/app';
import { buildApiKey, buildCaller } from '../helpers/factories';
import { xlsx } from '../helpers/imports';
import { expectBadPageParamsRefused, newestFirst, versionPages } from '../helpers/pages';
import { waitFor } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ IMPORT_MAX_FILE_BYTES: '2000000', IMPORT_CHUNK_MS: '300', IMPORT_STAGE_CHUNK_ROWS: '500', IMPORT_MERGE_CHUNK_ROWS: '500' });
  await app.startWorker();
});
afterAll(() => app.close());

const COLUMNS = [{ source: 'E-mail', field: 'email' }, { source: 'Name', field: 'name', transforms: [{ op: 'trim' }] }, { source: 'Plan', field: 'attributes.plan', transforms: [{ op: 'lower' }] }];
const IMPORTER = ['imports.*', 'audience.*', 'files.*'];

async function upload(key: string, content: string | Buffer, filename = 'contacts.csv'): Promise<string> {
  const res = await app.call('post', '/v1/files', key).attach('file', Buffer.isBuffer(content) ? content : Buffer.from(content), { filename, contentType: 'text/csv' }).expect(201);
  return res.body.id;
}

async function finished(key: string, id: string) {
  return waitFor(async () => {
    const res = await app.call('get', `/v1/imports/${id}`, key).expect(200);
    return ['finished', 'failed', 'cancelled'].includes(res.body.phase) && res.body;
  }, { what: `import ${id} ended`, timeoutMs: 60_000, intervalMs: 100 });
}

async function importFile(key: string, csv: string, extra: Record<string, unknown> = {}) {
  const fileId = await upload(key, csv);
  const res = await app.call('post', '/v1/imports', key).send({ fileId, target: 'subscribers', columns: COLUMNS, ...extra }).expect(202);
  expect(res.headers.location).toBe(`/v1/imports/${res.body.id}`);
  return finished(key, res.body.id);
}

/** An import of 40,000 rows, answered once it has started reading: long enough to act on while it runs. */
async function startReading() {
  const { key, tenant } = await buildCaller(IMPORTER);
  const lines = ['E-mail,Name,Plan'];
  for (let i = 0; i < 40_000; i++) lines.push(`c${i}@x.com,C ${i},free`);
  const fileId = await upload(key, lines.join('\n'));
  const started = await app.call('post', '/v1/imports', key).send({ fileId, target: 'subscribers', columns: COLUMNS }).expect(202);
  await waitFor(async () => (await ImportRun.findOne({ where: { tenantId: tenant.id, id: started.body.id } }))!.rowsRead > 0, { what: 'reading started', intervalMs: 20 });
  return { key, tenant, fileId, started };
}

const CSV = 'E-mail,Name,Plan\nada@x.com, Ada ,PRO\nbob@x.com,Bob,free\nbad-address,=1+2,pro\nada@x.com,Ada again,pro\n';

describe('options and templates', () => {
  it('answers the options: targets with fields, formats, strategies, limits', async () => {
    const { key } = await buildCaller(['imports.read']);
    const res = await app.call('get', '/v1/imports/options', key).expect(200);
    expect(res.body.targets.map((t: { name: string }) => t.name).sort()).toEqual(['subscribers', 'users']);
    expect(res.body.mergeStrategies).toEqual(['skip', 'replace', 'merge']);
    expect(res.body.maxFileBytes).toBe(2_000_000);
    await app.call('get', '/v1/imports/options', (await buildCaller(['audience.read'])).key).expect(403);
  });

  it('keeps every version, answers a strong ETag and refuses a stale or weak If-Match', async () => {
    const { key, tenant } = await buildCaller(['imports.*']);
    const created = await app.call('post', '/v1/import-templates', key).send({ name: 'CRM', target: 'subscribers', columns: COLUMNS }).expect(201);
    expect(created.headers.etag).toBe('"v1"');
    expect(created.body).toMatchObject({ version: 1, keyField: 'email', mergeStrategy: 'merge' });
    const id = created.body.id;
    const body = { name: 'CRM', target: 'subscribers', columns: COLUMNS, mergeStrategy: 'replace' };
    expect((await app.call('put', `/v1/import-templates/${id}`, key).set('If-Match', 'W/"v1"').send(body).expect(412)).body.code).toBe('PRECONDITION_FAILED');
    const v2 = await app.call('put', `/v1/import-templates/${id}`, key).set('If-Match', '"v1"').send(body).expect(200);
    expect(v2.headers.etag).toBe('"v2"');
    await app.call('put', `/v1/import-templates/${id}`, key).set('If-Match', '"v1"').send(body).expect(412);
    expect((await app.call('get', `/v1/import-templates/${id}`, key).expect(200)).body.mergeStrategy).toBe('replace');
    const versions = await app.call('get', `/v1/import-templates/${id}/versions`, key).expect(200);
    expect(versions.body.items.map((v: { version: number; mergeStrategy: string }) => [v.version, v.mergeStrategy])).toEqual([[2, 'replace'], [1, 'merge']]);
    expect((await app.call('post', '/v1/import-templates', key).send({ name: 'crm', target: 'subscribers', columns: COLUMNS }).expect(409)).body.code).toBe('ALREADY_EXISTS');
    const bad = await app.call('post', '/v1/import-templates', key).send({ name: 'Bad', target: 'subscribers', columns: [{ source: 'Name', field: 'nickname' }] }).expect(422);
    expect(bad.body.code).toBe('INVALID_MAPPING');
    expect(bad.body.errors.map((e: { path: string }) => e.path)).toEqual(expect.arrayContaining(['/requestBody/columns/0/field', '/requestBody/columns']));
    await app.call('post', '/v1/import-templates', key).send({ name: 'Bad', target: 'nowhere', columns: COLUMNS }).expect(400);
    await app.call('delete', `/v1/import-templates/${id}`, key).set('If-Match', '"v1"').expect(412);
    await app.call('delete', `/v1/import-templates/${id}`, key).set('If-Match', '"v2"').expect(204);
    await app.call('get', `/v1/import-templates/${id}`, key).expect(404);
    for (const action of ['imports.template.created', 'imports.template.updated', 'imports.template.deleted']) {
      expect(await AuditEvent.count({ where: { tenantId: tenant.id, action } })).toBe(1);
    }
  });
});

describe('template versions', () => {
  it('pages the versions of a template newest first: 20 by default, then the rest through nextCursor; a bad cursor or limit is a 400', async () => {
    const { key } = await buildCaller(['imports.*']);
    const id = (await app.call('post', '/v1/import-templates', key).send({ name: `CRM ${randomUUID()}`, target: 'subscribers', columns: COLUMNS }).expect(201)).body.id;
    for (let i = 0; i < 21; i++) {
      await app.call('put', `/v1/import-templates/${id}`, key).send({ name: `CRM edit ${i} ${id}`, target: 'subscribers', columns: COLUMNS, mergeStrategy: 'replace' }).expect(200);
    }
    const url = `/v1/import-templates/${id}/versions`;
    expect(await versionPages(app, key, url)).toEqual([newestFirst(22).slice(0, 20), [2, 1]]);
    expect((await versionPages(app, key, url, 'limit=7')).flat()).toEqual(newestFirst(22));
    const first = (await app.call('get', url, key).expect(200)).body;
    expect(first.items[0]).toMatchObject({ id, version: 22, name: `CRM edit 20 ${id}`, mergeStrategy: 'replace' });
    expect((await app.call('get', `${url}?cursor=${encodeURIComponent(first.nextCursor)}`, key).expect(200)).body.items[1]).toMatchObject({ id, version: 1, mergeStrategy: 'merge' });
    await expectBadPageParamsRefused(app, key, url, { maxLimit: VERSION_LIST_LIMIT });
  });
});

describe('runs', () => {
  it('imports through a template as a workflow: phases end finished, counts, rejections paged and as CSV with formulas neutralised', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    const t = await app.call('post', '/v1/import-templates', key).send({ name: 'CRM', target: 'subscribers', columns: COLUMNS }).expect(201);
    const fileId = await upload(key, CSV);
    const started = await app.call('post', '/v1/imports', key).send({ fileId, target: 'subscribers', templateId: t.body.id }).expect(202);
    expect(started.body).toMatchObject({ phase: 'parsing', templateId: t.body.id, templateVersion: 1, mergeStrategy: 'merge' });
    const run = await finished(key, started.body.id);
    expect(run.phase).toBe('finished');
    expect(run.counts).toEqual({ read: 4, valid: 2, rejected: 2, created: 2, updated: 0, unchanged: 0, skipped: 0 });
    expect(run.detected).toMatchObject({ format: 'csv', delimiter: ',', header: ['E-mail', 'Name', 'Plan'] });
    const subs = await Subscriber.findAll({ where: { tenantId: tenant.id }, order: [['email', 'ASC']] });
    expect(subs.map((s) => [s.email, s.name, s.attributes])).toEqual([['ada@x.com', 'Ada', { plan: 'pro' }], ['bob@x.com', 'Bob', { plan: 'free' }]]);

    const first = await app.call('get', `/v1/imports/${run.id}/rejections?limit=1`, key).expect(200);
    expect(first.body.items).toEqual([expect.objectContaining({ row: 4, code: 'INVALID_FORMAT', column: 'E-mail', raw: ['bad-address', '=1+2', 'pro'] })]);
    const second = await app.call('get', `/v1/imports/${run.id}/rejections?limit=1&cursor=${encodeURIComponent(first.body.nextCursor)}`, key).expect(200);
    expect(second.body.items).toEqual([expect.objectContaining({ row: 5, code: 'DUPLICATE_ENTRY' })]);
    expect(second.body.nextCursor).toBeNull();
    expect((await app.call('get', `/v1/imports/${run.id}/rejections?code=DUPLICATE_ENTRY`, key).expect(200)).body.items).toHaveLength(1);
    await app.call('get', `/v1/imports/${run.id}/rejections?code=NOPE`, key).expect(400);

    const csv = await app.call('get', `/v1/imports/${run.id}/rejections.csv`, key).buffer(true).parse((res, cb) => { let s = ''; res.on('data', (d: Buffer) => { s += d; }); res.on('end', () => cb(null, s)); }).expect(200);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    const rows = parse(csv.body as string) as string[][];
    expect(rows[0]).toEqual(['E-mail', 'Name', 'Plan', '_row', '_column', '_code', '_message']);
    expect(rows[1].slice(0, 6)).toEqual(['bad-address', "'=1+2", 'pro', '4', 'E-mail', 'INVALID_FORMAT']);

    const listed = await app.call('get', '/v1/imports?phase=finished&target=subscribers', key).expect(200);
    expect(listed.body.items.map((r: { id: string }) => r.id)).toEqual([run.id]);
    expect((await app.call('get', '/v1/imports?phase=failed', key).expect(200)).body.items).toEqual([]);
    const events = await AuditEvent.findAll({ where: { tenantId: tenant.id, entityId: run.id }, order: [['id', 'ASC']] });
    expect(events.map((e) => e.action)).toEqual(['imports.import.requested', 'imports.import.finished']);
    expect(events[1].after).toMatchObject({ counts: { created: 2, rejected: 2 } });
    // Cancelling what has ended is refused.
    expect((await app.call('post', `/v1/imports/${run.id}/cancel`, key).expect(409)).body.code).toBe('IMPORT_FINISHED');
  });

  it('a dry run reports the same counts and writes nothing', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    const run = await importFile(key, CSV, { dryRun: true });
    expect(run).toMatchObject({ phase: 'finished', dryRun: true, counts: { read: 4, valid: 2, rejected: 2, created: 2, updated: 0 } });
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(0);
    expect((await app.call('post', `/v1/imports/${run.id}/revert`, key).expect(409)).body.code).toBe('IMPORT_NOT_REVERTIBLE');
  });

  it('refuses before any work, writing nothing: too large, not CSV/XLSX, empty, missing columns, a header too wide, bad mapping, unknown template or file', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    const post = (body: Record<string, unknown>) => app.call('post', '/v1/imports', key).send({ target: 'subscribers', columns: COLUMNS, ...body });
    const big = await upload(key, 'E-mail,Name,Plan\n' + 'a@x.com,A,pro\n'.repeat(150_000));
    expect((await post({ fileId: big }).expect(413)).body.code).toBe('FILE_TOO_LARGE');
    const pdf = await upload(key, Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n\x00\x01\x02\x03'), 'contacts.csv');
    expect((await post({ fileId: pdf }).expect(422)).body.code).toBe('UNSUPPORTED_FORMAT');
    const empty = await upload(key, '\n\n');
    expect((await post({ fileId: empty }).expect(422)).body.code).toBe('EMPTY_FILE');
    const other = await upload(key, 'mail,Name\na@x.com,A\n');
    const missing = await post({ fileId: other }).expect(422);
    expect(missing.body.code).toBe('MISSING_COLUMNS');
    expect(missing.body.detail).toMatch(/E-mail/);
    // A "header" of 500,000 one-letter columns (1 MB) would be kept with the run and shown in every answer about it.
    const wide = await upload(key, `E-mail,Name,Plan,${'x,'.repeat(500_000)}\na@x.com,A,pro\n`);
    const tooWide = await post({ fileId: wide }).expect(422);
    expect([tooWide.body.code, tooWide.body.detail]).toEqual(['MALFORMED_FILE', expect.stringMatching(/500004 columns, more than 16384/)]);
    const ok = await upload(key, CSV);
    expect((await post({ fileId: ok, columns: [{ source: 'Name', field: 'name' }] }).expect(422)).body.code).toBe('INVALID_MAPPING');
    expect((await post({ fileId: ok, columns: undefined, templateId: randomUUID() }).expect(422)).body.code).toBe('UNKNOWN_TEMPLATE');
    expect((await post({ fileId: ok, columns: undefined }).expect(422)).body.code).toBe('INVALID_MAPPING');
    await post({ fileId: randomUUID() }).expect(404);
    await post({ fileId: ok, mergeStrategy: 'upsert' }).expect(400);
    await post({ fileId: ok, onRowError: 'ignore' }).expect(400);
    await post({ fileId: 'nope' }).expect(400);
    expect(await ImportRun.count({ where: { tenantId: tenant.id } })).toBe(0);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'imports.import.requested' } })).toBe(0);
  });

  it('imports an XLSX (told by its content, whatever its name); one whose header lacks a mapped column fails with MISSING_COLUMNS', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    const good = await xlsx({ Contacts: [['E-mail', 'Name', 'Plan'], ['x@x.com', 'X', 'Pro'], ['y@x.com', 'Y', 'free']] });
    const goodId = (await app.call('post', '/v1/files', key).attach('file', good, { filename: 'export.csv', contentType: 'text/csv' }).expect(201)).body.id;
    const ok = await app.call('post', '/v1/imports', key).send({ fileId: goodId, target: 'subscribers', columns: COLUMNS }).expect(202);
    const done = await finished(key, ok.body.id);
    expect(done).toMatchObject({ phase: 'finished', counts: { read: 2, created: 2 }, detected: { format: 'xlsx', sheet: 'Contacts' } });
    const bad = await xlsx({ Contacts: [['Mail', 'Name'], ['z@x.com', 'Z']] });
    const badId = (await app.call('post', '/v1/files', key).attach('file', bad, { filename: 'export.xlsx', contentType: 'application/octet-stream' }).expect(201)).body.id;
    // An XLSX's header is read by the workflow, not the API (unpacking is work the file's size decides).
    const started = await app.call('post', '/v1/imports', key).send({ fileId: badId, target: 'subscribers', columns: COLUMNS }).expect(202);
    const failed = await finished(key, started.body.id);
    expect(failed).toMatchObject({ phase: 'failed', error: { code: 'MISSING_COLUMNS' } });
    expect(failed.error.message).toMatch(/E-mail/);
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(2);
  });

  it('onRowError abort fails the run with ROWS_REJECTED and writes nothing', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    const run = await importFile(key, CSV, { onRowError: 'abort' });
    expect(run).toMatchObject({ phase: 'failed', error: { code: 'ROWS_REJECTED' } });
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(0);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'imports.import.failed', entityId: run.id } })).toBe(1);
  });

  it('reads an XLSX in one long staging chunk (no re-read from the start every IMPORT_CHUNK_MS), which a cancel stops while it reads', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    // Repetitive rows, so the workbook stays under this app's 2 MB limit and reads for a few seconds.
    const rows = 100_000;
    const file = await xlsx({ Contacts: [['E-mail', 'Name', 'Plan'], ...Array.from({ length: rows }, (_, i) => [`x${i % 1000}@x.com`, 'X', 'Pro'])] });
    const fileId = await upload(key, file, 'contacts.xlsx');
    const started = await app.call('post', '/v1/imports', key).send({ fileId, target: 'subscribers', columns: COLUMNS }).expect(202);
    await waitFor(async () => (await ImportRun.findOne({ where: { tenantId: tenant.id, id: started.body.id } }))!.rowsRead > 0, { what: 'reading started', intervalMs: 20 });
    const cancelled = await app.call('post', `/v1/imports/${started.body.id}/cancel`, key).expect(200);
    expect(cancelled.body.phase).toBe('cancelled');
    await new Promise((r) => setTimeout(r, 1500));
    // Nothing the chunk wrote lands after the answer.
    expect((await app.call('get', `/v1/imports/${started.body.id}`, key).expect(200)).body.counts).toEqual(cancelled.body.counts);
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(0);
    const events = (await app.client.workflow.getHandle(`imports:${tenant.id}:${started.body.id}`).fetchHistory()).events!;
    const staging = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'stageImportChunk');
    // One staging activity (300 ms chunks would have re-read the workbook from its start dozens of times), whose
    // cancel the workflow requested while it read; the activity hears of it with its next heartbeat (the SDK sends
    // one at most every 8 s), so on a fast machine it may have read every row first.
    expect(staging).toHaveLength(1);
    const scheduledId = staging[0].eventId!.toString();
    expect(events.some((e) => e.activityTaskCancelRequestedEventAttributes?.scheduledEventId?.toString() === scheduledId)).toBe(true);
    if (events.some((e) => e.activityTaskCanceledEventAttributes?.scheduledEventId?.toString() === scheduledId)) expect(cancelled.body.counts.read).toBeLessThan(rows);
    else expect(cancelled.body.counts.read).toBe(rows);
  });

  it('cancels a running import between chunks: counts final, then 409', async () => {
    const { key, tenant, fileId, started } = await startReading();
    // The file cannot be deleted while the import reads it.
    const busy = await app.call('delete', `/v1/files/${fileId}`, key).expect(409);
    expect(busy.body).toMatchObject({ code: 'DEPENDENCY_EXISTS', count: 1 });
    const cancelled = await app.call('post', `/v1/imports/${started.body.id}/cancel`, key).expect(200);
    expect(cancelled.body.phase).toBe('cancelled');
    const after = await app.call('get', `/v1/imports/${started.body.id}`, key).expect(200);
    expect(after.body.counts).toEqual(cancelled.body.counts);
    expect(cancelled.body.counts.created).toBeLessThan(40_000);
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(cancelled.body.counts.created);
    expect((await app.call('post', `/v1/imports/${started.body.id}/cancel`, key).expect(409)).body.code).toBe('IMPORT_FINISHED');
    const event = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'imports.import.cancelled', entityId: started.body.id } });
    expect(event?.actorType).toBe('api_key');
  });

  it('cancelled from Temporal itself (the UI, the CLI): recorded as cancelled by the system, and the run ends cancelled', async () => {
    const { key, tenant, started } = await startReading();
    const handle = app.client.workflow.getHandle(`imports:${tenant.id}:${started.body.id}`);
    // Most likely while a staging chunk reads (reading is most of the run): the cancel reaches it and the condition
    // that stops it (which, uncaught, failed every workflow task from then on, and the run never ended).
    await handle.cancel();
    // The run ends cancelled, as asked (it used to complete), with its end written first.
    await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
    const run = await handle.describe();
    expect(run.status.name).toBe('CANCELLED');
    expect(run.typedSearchAttributes.get(STATUS)).toBe('cancelled');
    const ended = (await app.call('get', `/v1/imports/${started.body.id}`, key).expect(200)).body;
    expect(ended.phase).toBe('cancelled');
    // The end was written after the running chunk stopped: the counts are final, and no row lands after them.
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(ended.counts.created);
    expect((await app.call('post', `/v1/imports/${started.body.id}/cancel`, key).expect(409)).body.code).toBe('IMPORT_FINISHED');
    const event = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'imports.import.cancelled', entityId: started.body.id } });
    expect(event?.actorType).toBe('system');
    await new Promise((r) => setTimeout(r, 800));
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(ended.counts.created);
    expect((await app.call('get', `/v1/imports/${started.body.id}`, key).expect(200)).body.counts).toEqual(ended.counts);
    // The input named its code's patches: no marker, no TemporalChangeVersion write.
    const events = (await handle.fetchHistory()).events ?? [];
    expect(events.filter((e) => e.markerRecordedEventAttributes)).toEqual([]);
  });

  it('reverts: created rows deleted, overwritten fields restored; refused once a row changed, and twice', async () => {
    const { key, tenant } = await buildCaller(IMPORTER);
    const seed = await app.call('post', '/v1/subscribers', key).send({ email: 'bob@x.com', name: 'Robert', attributes: { plan: 'team' } }).expect(201);
    const run = await importFile(key, CSV, { mergeStrategy: 'replace' });
    expect(run.counts).toMatchObject({ created: 1, updated: 1 });
    const reverted = await app.call('post', `/v1/imports/${run.id}/revert`, key).expect(200);
    expect(reverted.body).toMatchObject({ deleted: 1, restored: 1, import: { id: run.id } });
    expect(reverted.body.import.revertedAt).not.toBeNull();
    const bob = await app.call('get', `/v1/subscribers/${seed.body.id}`, key).expect(200);
    expect(bob.body).toMatchObject({ name: 'Robert', attributes: { plan: 'team' } });
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(1);
    expect((await app.call('post', `/v1/imports/${run.id}/revert`, key).expect(409)).body.code).toBe('IMPORT_NOT_REVERTIBLE');
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'imports.import.reverted', entityId: run.id } })).toBe(1);

    const again = await importFile(key, CSV, { mergeStrategy: 'replace' });
    await app.call('patch', `/v1/subscribers/${seed.body.id}`, key).send({ name: 'Changed since' }).expect(200);
    const refused = await app.call('post', `/v1/imports/${again.id}/revert`, key).expect(409);
    expect(refused.body.code).toBe('IMPORT_CHANGED_SINCE');
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(2);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'imports.import.reverted', entityId: again.id } })).toBe(0);
  });
});

describe('bad input on reads', () => {
  it('answers 400 for malformed filters and ids and 404 for what is not there', async () => {
    const { key } = await buildCaller(IMPORTER);
    await app.call('get', '/v1/imports?phase=sleeping', key).expect(400);
    await app.call('get', '/v1/imports?dryRun=maybe', key).expect(400);
    await app.call('get', '/v1/imports/not-a-uuid', key).expect(400);
    await app.call('get', `/v1/imports/${randomUUID()}`, key).expect(404);
    await app.call('post', `/v1/imports/${randomUUID()}/cancel`, key).expect(404);
    await app.call('post', `/v1/imports/${randomUUID()}/revert`, key).expect(404);
    await app.call('get', `/v1/imports/${randomUUID()}/rejections.csv`, key).expect(404);
    await app.call('get', '/v1/import-templates?target=nowhere', key).expect(400);
    await app.call('get', `/v1/import-templates/${randomUUID()}/versions`, key).expect(404);
    await app.call('delete', `/v1/import-templates/${randomUUID()}`, key).expect(404);
    await app.call('put', `/v1/import-templates/${randomUUID()}`, key).send({ name: 'X', target: 'subscribers', columns: COLUMNS }).expect(404);
    await app.call('put', `/v1/import-templates/${randomUUID()}`, key).send({ name: 'X', target: 'subscribers', columns: [] }).expect(400);
  });
});

describe('the workflow', () => {
  it('keeps its history within budget by continuing as new, in staging and in merging, and ends with exact counts and Status', async () => {
    const { key, tenant, user } = await buildCaller(IMPORTER);
    const lines = ['E-mail,Name,Plan'];
    for (let i = 0; i < 20_000; i++) lines.push(`h${i}@x.com,H ${i},free`);
    const fileId = await upload(key, lines.join('\n'));
    const file = (await StoredFile.findOne({ where: { tenantId: tenant.id, id: fileId } }))!;
    const id = randomUUID();
    const workflowId = `imports:${tenant.id}:${id}`;
    await ImportRun.create({
      tenantId: tenant.id, id, target: 'subscribers', fileId, fileSha256: file.sha256, fileName: file.filename, fileSize: Number(file.size), templateId: null,
      templateVersion: null, source: {}, columns: COLUMNS as never, keyField: 'email', mergeStrategy: 'merge', workflowId, createdBy: user.id,
    });
    // A run's first workflow task sees ~3 events and each chunk adds ~6, so a budget of 8 continues as new
    // after every chunk: the chain has at least start → staging (the checks) → merging however fast the
    // machine parses (with 12, a quick machine staged and checked in the first run and only merged after it).
    const budget = 8;
    const handle = await app.client.workflow.start<typeof importWorkflow>('importWorkflow', {
      taskQueue: IMPORTS_TASK_QUEUE, workflowId,
      args: [{ tenantId: tenant.id, importId: id, by: { actor: { type: 'user', id: user.id }, requestId: null }, caller: { fromRoles: ['*'], scopes: null }, historyBudget: budget }],
    });
    expect(await handle.result()).toEqual({ phase: 'finished' });
    const run = (await ImportRun.findOne({ where: { tenantId: tenant.id, id } }))!;
    expect([run.rowsRead, run.rowsValid, run.rowsCreated, run.rowsUpdated, run.rowsUnchanged]).toEqual([20_000, 20_000, 20_000, 0, 0]);
    expect(await Subscriber.count({ where: { tenantId: tenant.id } })).toBe(20_000);

    // Walk the chain of runs from the first: each within the budget (plus the chunk that crossed it), ended by continue-as-new but the last.
    const phases: string[] = [];
    let runId: string | undefined = handle.firstExecutionRunId;
    while (runId) {
      const history: Awaited<ReturnType<typeof handle.fetchHistory>> = await app.client.workflow.getHandle(workflowId, runId).fetchHistory();
      const events: NonNullable<typeof history.events> = history.events ?? [];
      expect(events.length).toBeLessThanOrEqual(budget + 15);
      const started = events[0].workflowExecutionStartedEventAttributes!;
      const input = (await app.client.options.loadedDataConverter.payloadConverter.fromPayload(started.input!.payloads![0])) as { resume?: { phase: string } };
      phases.push(input.resume?.phase ?? 'start');
      runId = events[events.length - 1].workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    }
    expect(phases.length).toBeGreaterThan(2);
    expect(phases).toContain('staging');
    expect(phases).toContain('merging');
    expect((await handle.describe()).typedSearchAttributes.get(STATUS)).toBe('finished');
  }, 120_000);
});

describe('permissions and tenants', () => {
  it('needs imports.run and the target\'s permission to start, imports.revert and the target\'s to revert', async () => {
    const { key: admin, tenant } = await buildCaller(IMPORTER);
    const fileId = await upload(admin, CSV);
    const { key: noTarget } = await buildCaller(['imports.*', 'files.*'], tenant);
    const denied = await app.call('post', '/v1/imports', noTarget).send({ fileId, target: 'subscribers', columns: COLUMNS }).expect(403);
    expect(denied.body.permission).toBe('audience.import');
    const { key: noRun } = await buildCaller(['imports.read', 'audience.*'], tenant);
    expect((await app.call('post', '/v1/imports', noRun).send({ fileId, target: 'subscribers', columns: COLUMNS }).expect(403)).body.permission).toBe('imports.run');
    const usersDenied = await app.call('post', '/v1/imports', admin).send({ fileId, target: 'users', columns: [{ source: 'E-mail', field: 'email' }, { source: 'Name', field: 'name' }] }).expect(403);
    expect(usersDenied.body.permission).toBe('identity.users.manage');
    const run = await importFile(admin, CSV);
    const { key: reverter } = await buildCaller(['imports.revert', 'imports.read'], tenant);
    expect((await app.call('post', `/v1/imports/${run.id}/revert`, reverter).expect(403)).body.permission).toBe('audience.import');
    expect(await ImportRun.count({ where: { tenantId: tenant.id } })).toBe(1);
  });

  it('imports users with what the importing key may grant: its scopes travel with the workflow', async () => {
    const { tenant, user } = await buildCaller(['*']);
    await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'viewer', title: 'Viewer', permissions: ['files.read'] });
    await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'auditor', title: 'Auditor', permissions: ['audit.read'] });
    // The user holds '*', the key only these: it may grant viewer (files.read), not auditor (audit.read).
    const key = await buildApiKey(user, { scopes: ['imports.*', 'files.*', 'identity.users.manage'] });
    const fileId = await upload(key, 'email,name,roles\nvi@x.com,Vi,viewer\nau@x.com,Au,auditor\n');
    const res = await app.call('post', '/v1/imports', key).send({
      fileId, target: 'users', columns: [{ source: 'email', field: 'email' }, { source: 'name', field: 'name' }, { source: 'roles', field: 'roles', transforms: [{ op: 'split', separator: ' ' }] }],
    }).expect(202);
    const run = await finished(key, res.body.id);
    expect(run).toMatchObject({ phase: 'finished', counts: { created: 1, rejected: 1 } });
    const rejections = await app.call('get', `/v1/imports/${run.id}/rejections`, key).expect(200);
    expect(rejections.body.items).toEqual([expect.objectContaining({ row: 3, code: 'NOT_PERMITTED' })]);
    expect(await User.count({ where: { tenantId: tenant.id, email: 'au@x.com' } })).toBe(0);
  });

  it('never shows another tenant\'s runs, templates or files', async () => {
    const { key: theirs } = await buildCaller(IMPORTER);
    const { key: mine } = await buildCaller(IMPORTER);
    const run = await importFile(theirs, CSV);
    const t = await app.call('post', '/v1/import-templates', theirs).send({ name: 'Theirs', target: 'subscribers', columns: COLUMNS }).expect(201);
    const theirFile = await upload(theirs, CSV);
    for (const path of [`/v1/imports/${run.id}`, `/v1/imports/${run.id}/rejections`, `/v1/imports/${run.id}/rejections.csv`, `/v1/import-templates/${t.body.id}`]) {
      await app.call('get', path, mine).expect(404);
    }
    await app.call('post', `/v1/imports/${run.id}/cancel`, mine).expect(404);
    await app.call('post', `/v1/imports/${run.id}/revert`, mine).expect(404);
    await app.call('put', `/v1/import-templates/${t.body.id}`, mine).send({ name: 'Mine', target: 'subscribers', columns: COLUMNS }).expect(404);
    await app.call('post', '/v1/imports', mine).send({ fileId: theirFile, target: 'subscribers', columns: COLUMNS }).expect(404);
    expect((await app.call('post', '/v1/imports', mine).send({ fileId: await upload(mine, CSV), target: 'subscribers', templateId: t.body.id }).expect(422)).body.code).toBe('UNKNOWN_TEMPLATE');
    expect((await app.call('get', '/v1/imports', mine).expect(200)).body.items).toEqual([]);
    expect((await app.call('get', '/v1/import-templates', mine).expect(200)).body.items).toEqual([]);
  });
});
