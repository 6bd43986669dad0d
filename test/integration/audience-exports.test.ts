// Subscriber exports end to end: the API starts the workflow, the worker writes the CSV page by page, and the CSV
// holds exactly the subscribers the filters pick, in columns an import of subscribers reads back.
import { parse } from 'csv-parse/sync';
import { randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { AuditEvent, StoredFile, Subscriber, SubscriberExport } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { createRun } from '../helpers/imports';
import { waitFor } from '../helpers/wait';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
  // Pages of 7: the exports below span several.
  await app.startWorker({ exportPageSize: 7 });
});
afterAll(() => app.close());

type Key = Awaited<ReturnType<typeof buildCaller>>['key'];

async function exportReady(key: Key, body: object): Promise<Record<string, unknown> & { id: string; downloadUrl: string; workflowId: string; fileId: string }> {
  const started = await app.call('post', '/v1/subscriber-exports', key).send(body).expect(202);
  expect(started.headers.location).toBe(`/v1/subscriber-exports/${started.body.id}`);
  expect(started.body).toMatchObject({ status: 'queued', downloadUrl: null, filters: body });
  return waitFor(async () => {
    const res = await app.call('get', started.headers.location, key).expect(200);
    if (res.body.status === 'failed') throw new Error(`export failed: ${res.body.error}`);
    return res.body.status === 'ready' && res.body;
  }, { what: 'subscriber export ready' });
}

async function csvOf(key: Key, url: string): Promise<Record<string, string>[]> {
  const res = await app.call('get', url, key).expect(200).expect('Content-Type', /text\/csv/);
  return parse(res.text, { columns: true }) as Record<string, string>[];
}

describe('exporting subscribers', () => {
  it('writes the filtered subscribers to a CSV, with lists and attribute columns, erased ones left out, other tenants never', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    const vip = await app.call('post', '/v1/lists', key).send({ name: 'VIP' }).expect(201);
    const beta = await app.call('post', '/v1/lists', key).send({ name: 'Beta' }).expect(201);
    for (let i = 0; i < 20; i++) {
      await app.call('post', '/v1/subscribers', key).send({
        email: `s${String(i).padStart(2, '0')}@example.com`, name: `Sub ${i}`, status: i % 5 === 4 ? 'unsubscribed' : 'active',
        attributes: { plan: i % 2 ? 'pro' : 'free', seats: i, ...(i === 3 ? { vip: true, formula: '=HYPERLINK("http://x")' } : {}) },
        listIds: i < 3 ? [vip.body.id, beta.body.id] : i < 6 ? [beta.body.id] : [],
      }).expect(201);
    }
    const erased = await app.call('post', '/v1/subscribers', key).send({ email: 'gone@example.com', attributes: { plan: 'pro' } }).expect(201);
    await app.call('post', `/v1/subscribers/${erased.body.id}/erase`, key).expect(200);
    const other = await buildCaller(['audience.*']);
    await app.call('post', '/v1/subscribers', other.key).send({ email: 'other@example.com', attributes: { plan: 'pro' } }).expect(201);

    // Everyone (not erased): 20 rows, in more than one page.
    const all = await exportReady(key, {});
    expect(all).toMatchObject({ totalRows: 20, rowsWritten: 20, progress: 1, error: null, workflowId: `subscriber-exports:${tenant.id}:${all.id}` });
    const rows = await csvOf(key, all.downloadUrl);
    expect(rows).toHaveLength(20);
    expect(Object.keys(rows[0])).toEqual(['email', 'name', 'status', 'lists', 'created_at', 'updated_at', 'attributes.formula', 'attributes.plan', 'attributes.seats', 'attributes.vip']);
    const byEmail = new Map(rows.map((r) => [r.email, r]));
    expect(byEmail.has('other@example.com')).toBe(false);
    expect([...byEmail.keys()].some((e) => e.startsWith('erased') || e === 'gone@example.com')).toBe(false);
    const s0 = await Subscriber.findOne({ where: { tenantId: tenant.id, email: 's00@example.com' } });
    expect(byEmail.get('s00@example.com')).toEqual({
      email: 's00@example.com', name: 'Sub 0', status: 'active', lists: [vip.body.id, beta.body.id].sort().join(' '),
      created_at: s0!.createdAt.toISOString(), updated_at: s0!.updatedAt.toISOString(),
      'attributes.formula': '', 'attributes.plan': 'free', 'attributes.seats': '0', 'attributes.vip': '',
    });
    expect(byEmail.get('s04@example.com')).toMatchObject({ status: 'unsubscribed', lists: beta.body.id, 'attributes.plan': 'free', 'attributes.seats': '4' });
    // A formula is written so that a spreadsheet shows it instead of running it.
    expect(byEmail.get('s03@example.com')).toMatchObject({ 'attributes.vip': 'true', 'attributes.formula': '\'=HYPERLINK("http://x")' });

    // Filters as GET /v1/subscribers takes them: active pro members of Beta.
    const some = await exportReady(key, { status: 'active', listId: beta.body.id, attribute: ['plan:pro'] });
    const picked = (await csvOf(key, some.downloadUrl)).map((r) => r.email).sort();
    expect(picked).toEqual(['s01@example.com', 's03@example.com', 's05@example.com']);
    expect(some).toMatchObject({ totalRows: 3, rowsWritten: 3 });
    // A blank prefix is no filter, as GET /v1/subscribers reads it.
    const blank = await exportReady(key, { emailPrefix: '   ' });
    expect(blank.totalRows).toBe(20);
    const listed = async (q: string) => (await app.call('get', `/v1/subscribers?limit=100${q}`, key).expect(200)).body.items.length;
    expect(await listed('&emailPrefix=%20%20%20')).toBe(await listed(''));
    const prefixed = await exportReady(key, { emailPrefix: 'S1', attribute: ['seats:12'] });
    expect((await csvOf(key, prefixed.downloadUrl)).map((r) => r.email)).toEqual(['s12@example.com']);

    // Nobody matches: a header only.
    const none = await exportReady(key, { emailPrefix: 'nobody' });
    expect(none).toMatchObject({ totalRows: 0, rowsWritten: 0 });
    expect((await app.call('get', none.downloadUrl, key).expect(200)).text.trim()).toBe('email,name,status,lists,created_at,updated_at');

    // Audited, findable in Temporal by tenant, type and status, and its file is the export's.
    expect((await AuditEvent.findAll({ where: { tenantId: tenant.id, entityId: all.id } })).map((e) => e.action).sort())
      .toEqual(['audience.export.completed', 'audience.export.requested']);
    const found = await waitFor(async () => {
      const ids: string[] = [];
      for await (const wf of app.client.workflow.list({ query: `TenantId="${tenant.id}" AND EntityType="subscriber_export" AND EntityId="${all.id}" AND \`Status\`="ready"` })) ids.push(wf.workflowId);
      return ids.length > 0 && ids;
    }, { what: 'export workflow in visibility' });
    expect(found).toEqual([all.workflowId]);
    expect((await StoredFile.findByPk(all.fileId))!.originKey).toBe(`subscriber-export:${all.id}`);
  });

  it('reads back through an import of subscribers: unchanged rows stay unchanged, an edited cell updates its subscriber', async () => {
    const { key, tenant } = await buildCaller(['audience.*', 'imports.*', 'files.*']);
    const list = await app.call('post', '/v1/lists', key).send({ name: 'Members' }).expect(201);
    for (let i = 0; i < 9; i++) {
      await app.call('post', '/v1/subscribers', key).send({ email: `r${i}@example.com`, name: `R ${i}`, attributes: { plan: 'free', seats: i }, listIds: [list.body.id] }).expect(201);
    }
    const done = await exportReady(key, {});
    const text = (await app.call('get', done.downloadUrl, key).expect(200)).text.replace('R 4', 'Renamed 4');
    const file = await app.call('post', '/v1/files', key).attach('file', Buffer.from(text), { filename: 'subscribers.csv', contentType: 'text/csv' }).expect(201);
    const columns = [
      { source: 'email', field: 'email' }, { source: 'name', field: 'name' }, { source: 'status', field: 'status' },
      { source: 'lists', field: 'lists', transforms: [{ op: 'split', separator: ' ' }] },
      { source: 'attributes.plan', field: 'attributes.plan' }, { source: 'attributes.seats', field: 'attributes.seats', transforms: [{ op: 'number' }] },
    ];
    const run = await app.call('post', '/v1/imports', key).send({ fileId: file.body.id, target: 'subscribers', columns, mergeStrategy: 'merge' }).expect(202);
    const finished = await waitFor(async () => {
      const res = await app.call('get', `/v1/imports/${run.body.id}`, key).expect(200);
      return ['finished', 'failed'].includes(res.body.phase) && res.body;
    }, { what: 'import of the export finished' });
    expect(finished.phase).toBe('finished');
    expect(finished.counts).toMatchObject({ read: 9, rejected: 0, created: 0, updated: 1, unchanged: 8 });
    expect((await Subscriber.findOne({ where: { tenantId: tenant.id, email: 'r4@example.com' } }))!.name).toBe('Renamed 4');
  });
});

describe('listing and deleting exports', () => {
  it('lists the tenant\'s exports newest first; deleting one removes its row and its CSV, audited; a running one is refused', async () => {
    const { key, tenant } = await buildCaller(['audience.*', 'files.read']);
    await app.call('post', '/v1/subscribers', key).send({ email: 'd@example.com' }).expect(201);
    const older = await exportReady(key, {});
    const newer = await exportReady(key, { status: 'active' });
    const other = await buildCaller(['audience.*']);
    await exportReady(other.key, {});
    const listed = await app.call('get', '/v1/subscriber-exports?limit=1', key).expect(200);
    expect(listed.body.items.map((x: { id: string }) => x.id)).toEqual([newer.id]);
    const rest = await app.call('get', `/v1/subscriber-exports?limit=5&cursor=${listed.body.nextCursor}`, key).expect(200);
    expect(rest.body.items.map((x: { id: string }) => x.id)).toEqual([older.id]);

    await app.call('delete', `/v1/subscriber-exports/${older.id}`, other.key).expect(404);
    await app.call('delete', `/v1/subscriber-exports/${older.id}`, key).expect(204);
    await app.call('get', `/v1/subscriber-exports/${older.id}`, key).expect(404);
    await app.call('get', `/v1/files/${older.fileId}`, key).expect(404);
    expect(await StoredFile.count({ where: { tenantId: tenant.id, originKey: `subscriber-export:${older.id}` } })).toBe(0);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, entityId: older.id, action: 'audience.export.deleted' } })).toBe(1);
    // The other export and its file are untouched.
    await app.call('get', newer.downloadUrl, key).expect(200);
    await app.call('delete', `/v1/subscriber-exports/${older.id}`, key).expect(404);

    const running = await SubscriberExport.create({ id: randomUUID(), tenantId: tenant.id, status: 'running', filters: {}, workflowId: 'subscriber-exports:test', requestedBy: null });
    expect((await app.call('delete', `/v1/subscriber-exports/${running.id}`, key).expect(409)).body.code).toBe('EXPORT_RUNNING');
    expect(await SubscriberExport.count({ where: { id: running.id } })).toBe(1);
    // An import still reading the CSV keeps it: 409, and the export and its file stay.
    const reading = await createRun(tenant, { columns: [{ source: 'email', field: 'email' }] });
    await reading.update({ fileId: newer.fileId });
    expect((await app.call('delete', `/v1/subscriber-exports/${newer.id}`, key).expect(409)).body.code).toBe('DEPENDENCY_EXISTS');
    await app.call('get', newer.downloadUrl, key).expect(200);
    await reading.update({ phase: 'finished' });
    await app.call('delete', `/v1/subscriber-exports/${newer.id}`, key).expect(204);
  });
});

describe('bad input and refusals', () => {
  it('refuses filters the contract does not take with 400, and a list of another tenant with 422, writing nothing', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    const theirs = await buildCaller(['audience.*']);
    const theirList = await app.call('post', '/v1/lists', theirs.key).send({ name: 'Theirs' }).expect(201);
    for (const body of [{ status: 'gone' }, { listId: 'not-a-uuid' }, { attribute: ['no colon'] }, { emailPrefix: '' }, { colour: 'red' }, { attribute: 'plan:pro' }, { attribute: [`plan:${'x'.repeat(1001)}`] }]) {
      const res = await app.call('post', '/v1/subscriber-exports', key).send(body).expect(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    }
    // A prefix longer once lower-cased than an address can be ('İ' becomes two characters): refused here, not by the worker.
    expect((await app.call('post', '/v1/subscriber-exports', key).send({ emailPrefix: 'İ'.repeat(161) }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    const unknown = await app.call('post', '/v1/subscriber-exports', key).send({ listId: theirList.body.id }).expect(422);
    expect(unknown.body.code).toBe('UNKNOWN_LIST');
    expect(await SubscriberExport.count({ where: { tenantId: tenant.id } })).toBe(0);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audience.export.requested' } })).toBe(0);
  });

  it('answers 409 EXPORT_NOT_READY for the download of an export not ready, and 404 for an id not of the tenant', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    const running = await SubscriberExport.create({ id: randomUUID(), tenantId: tenant.id, status: 'running', filters: {}, workflowId: 'subscriber-exports:test', requestedBy: null });
    expect((await app.call('get', `/v1/subscriber-exports/${running.id}/download`, key).expect(409)).body.code).toBe('EXPORT_NOT_READY');
    expect((await app.call('get', `/v1/subscriber-exports/${running.id}`, key).expect(200)).body).toMatchObject({ status: 'running', downloadUrl: null });
    const other = await buildCaller(['audience.*']);
    await app.call('get', `/v1/subscriber-exports/${running.id}`, other.key).expect(404);
    await app.call('get', `/v1/subscriber-exports/${running.id}/download`, other.key).expect(404);
    await app.call('get', '/v1/subscriber-exports/not-a-uuid', key).expect(400);
  });

  it('ends failed, saying why, when the subscribers use more attributes than columns allowed', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    // Three subscribers with 70 attributes each, none shared: 210 distinct names.
    await Subscriber.bulkCreate([0, 1, 2].map((n) => ({
      tenantId: tenant.id, id: uuidv7(), email: `wide${n}@example.com`, name: null,
      attributes: Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`a${n}_${i}`, i])),
    })));
    const started = await app.call('post', '/v1/subscriber-exports', key).send({}).expect(202);
    const failed = await waitFor(async () => {
      const res = await app.call('get', started.headers.location, key).expect(200);
      return res.body.status === 'failed' && res.body;
    }, { what: 'export failed' });
    expect(failed.error).toMatch(/more than 200 distinct attributes/);
    expect(failed).toMatchObject({ fileId: null, downloadUrl: null });
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, entityId: failed.id, action: 'audience.export.failed' } })).toBe(1);
    expect(await StoredFile.count({ where: { tenantId: tenant.id, originKey: `subscriber-export:${failed.id}` } })).toBe(0);
  });
});

describe('permissions', () => {
  it('needs audience.read to start, read and download an export; its file opens with audience.read, not files.read alone', async () => {
    const { key: admin, tenant } = await buildCaller(['audience.*']);
    await app.call('post', '/v1/subscribers', admin).send({ email: 'p@example.com' }).expect(201);
    const { key: reader } = await buildCaller(['audience.read'], tenant);
    const { key: filesOnly } = await buildCaller(['files.*'], tenant);
    const { key: writerOnly } = await buildCaller(['audience.write', 'audience.erase', 'audience.import'], tenant);
    for (const k of [filesOnly, writerOnly]) {
      expect((await app.call('post', '/v1/subscriber-exports', k).send({}).expect(403)).body.permission).toBe('audience.read');
    }
    expect(await SubscriberExport.count({ where: { tenantId: tenant.id } })).toBe(0);
    const done = await exportReady(reader, {});
    expect((await csvOf(reader, done.downloadUrl)).map((r) => r.email)).toEqual(['p@example.com']);
    for (const k of [filesOnly, writerOnly]) {
      await app.call('get', `/v1/subscriber-exports/${done.id}`, k).expect(403);
      await app.call('get', done.downloadUrl, k).expect(403);
    }
    // Deleting takes audience.write: a reader cannot remove it.
    expect((await app.call('delete', `/v1/subscriber-exports/${done.id}`, reader).expect(403)).body.permission).toBe('audience.write');
    await app.call('get', '/v1/subscriber-exports', reader).expect(200);
    await app.call('get', '/v1/subscriber-exports', filesOnly).expect(403);
    // The CSV is a file of the tenant, owned by the export: files.* alone does not open it.
    const denied = await app.call('get', `/v1/files/${done.fileId}/content`, filesOnly).expect(403);
    expect(denied.body.permission).toBe('audience.read');
    const { key: readerWithFiles } = await buildCaller(['audience.read', 'files.read'], tenant);
    await app.call('get', `/v1/files/${done.fileId}/content`, readerWithFiles).expect(200);
  });
});
