// The audience.files_purge job through the real API and worker: subscriber exports finished before the cutoff go with
// their CSV, and the uploaded source files of subscriber imports that ended before it go while the imports stay (and
// can still be reverted); recent ones, files still read, and other tenants' are kept. Its own permission, its params.
import { QueryTypes } from 'sequelize';
import { AuditEvent, StoredFile } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { buildApiKey, buildCaller } from '../helpers/factories';
import { createRun } from '../helpers/imports';
import { waitFor } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ IMPORT_CHUNK_MS: '300' });
  await app.startWorker();
});
afterAll(() => app.close());

const JOB = 'audience.files_purge';
const COLUMNS = [{ source: 'E-mail', field: 'email' }, { source: 'Name', field: 'name' }];

async function exportReady(key: string, body: object = {}): Promise<{ id: string; fileId: string; downloadUrl: string }> {
  const started = await app.call('post', '/v1/subscriber-exports', key).send(body).expect(202);
  return waitFor(async () => {
    const res = await app.call('get', `/v1/subscriber-exports/${started.body.id}`, key).expect(200);
    if (res.body.status === 'failed') throw new Error(`export failed: ${res.body.error}`);
    return res.body.status === 'ready' && res.body;
  }, { what: 'subscriber export ready' });
}

async function upload(key: string, csv: string): Promise<string> {
  return (await app.call('post', '/v1/files', key).attach('file', Buffer.from(csv), { filename: 'contacts.csv', contentType: 'text/csv' }).expect(201)).body.id;
}

/** An import of `fileId` into subscribers, answered once it has ended. */
async function imported(key: string, fileId: string): Promise<{ id: string; phase: string; fileId: string; counts: Record<string, number> }> {
  const started = await app.call('post', '/v1/imports', key).send({ fileId, target: 'subscribers', columns: COLUMNS }).expect(202);
  return waitFor(async () => {
    const res = await app.call('get', `/v1/imports/${started.body.id}`, key).expect(200);
    return ['finished', 'failed', 'cancelled'].includes(res.body.phase) && res.body;
  }, { what: `import ${started.body.id} ended`, timeoutMs: 60_000 });
}

const age = (table: 'subscriber_exports' | 'imports', column: 'completed_at' | 'finished_at', ids: string[], days: number) =>
  app.sequelize.query(`UPDATE ${table} SET ${column} = now() - make_interval(days => :days) WHERE id IN (:ids)`, { replacements: { ids, days } });

const blobExists = async (fileSha: string) =>
  (await app.sequelize.query('SELECT 1 FROM blobs WHERE sha256 = :sha', { replacements: { sha: fileSha }, type: QueryTypes.SELECT })).length > 0;

/** Schedules the job (paused), runs it now as POST /v1/job-schedules/{id}/run does, and answers the finished run. */
async function runPurge(key: string, params: Record<string, unknown>): Promise<{ status: string; result: Record<string, unknown> | null; error: string | null }> {
  const s = (await app.call('post', '/v1/job-schedules', key).send({ name: 'files retention', jobType: JOB, params, cron: '0 4 * * 0', paused: true }).expect(201)).body;
  await app.call('post', `/v1/job-schedules/${s.id}/run`, key).expect(202);
  return waitFor(async () => {
    const items = (await app.call('get', `/v1/job-schedules/${s.id}/runs`, key).expect(200)).body.items as { status: string; result: Record<string, unknown> | null; error: string | null }[];
    return items.find((r) => r.status !== 'running');
  }, { what: 'the purge run', timeoutMs: 60_000 });
}

it('deletes old exports with their CSV and old import source files of its tenant only; keeps recent ones, the imports and their revert', async () => {
  const { key, tenant } = await buildCaller(['*']);
  await app.call('post', '/v1/subscribers', key).send({ email: 'first@example.com', name: 'First' }).expect(201);
  const oldExport = await exportReady(key);
  await app.call('post', '/v1/subscribers', key).send({ email: 'second@example.com', name: 'Second' }).expect(201);
  const newExport = await exportReady(key);
  // An old export whose CSV an import is still reading: kept until the import has read it.
  const readExport = await exportReady(key, { status: 'active' });
  const reading = await createRun(tenant, { columns: [{ source: 'email', field: 'email' }] });
  await reading.update({ fileId: readExport.fileId });
  await age('subscriber_exports', 'completed_at', [oldExport.id, readExport.id], 40);

  const oldImport = await imported(key, await upload(key, 'E-mail,Name\nada@x.com,Ada\nbob@x.com,Bob\n'));
  const newImport = await imported(key, await upload(key, 'E-mail,Name\ncy@x.com,Cy\n'));
  // One file imported twice: the old import's end is not enough while the newer one's is recent.
  const sharedFile = await upload(key, 'E-mail,Name\ndee@x.com,Dee\n');
  const sharedOld = await imported(key, sharedFile);
  await imported(key, sharedFile);
  expect([oldImport.phase, newImport.phase, sharedOld.phase]).toEqual(['finished', 'finished', 'finished']);
  await age('imports', 'finished_at', [oldImport.id, sharedOld.id], 40);

  // Another tenant's, as old: untouched.
  const other = await buildCaller(['*']);
  await app.call('post', '/v1/subscribers', other.key).send({ email: 'theirs@example.com' }).expect(201);
  const theirExport = await exportReady(other.key);
  const theirImport = await imported(other.key, await upload(other.key, 'E-mail,Name\neve@x.com,Eve\n'));
  await age('subscriber_exports', 'completed_at', [theirExport.id], 40);
  await age('imports', 'finished_at', [theirImport.id], 40);

  const oldCsv = (await StoredFile.findByPk(oldExport.fileId))!;
  const oldUpload = (await StoredFile.findByPk(oldImport.fileId))!;
  const ran = await runPurge(key, { exportsOlderThanDays: 30, importFilesOlderThanDays: 30 });
  expect(ran).toMatchObject({ status: 'completed', error: null, result: { exports: 1, importFiles: 1, skipped: 1 } });

  // The old export and its CSV (row and bytes) are gone, as DELETE /v1/subscriber-exports/{id} would leave them, audited.
  await app.call('get', `/v1/subscriber-exports/${oldExport.id}`, key).expect(404);
  await app.call('get', `/v1/files/${oldExport.fileId}`, key).expect(404);
  // The run waited for the bytes' removal: done means gone from the store, not queued.
  expect(await blobExists(oldCsv.sha256)).toBe(false);
  expect(await AuditEvent.findOne({ where: { tenantId: tenant.id, entityId: oldExport.id, action: 'audience.export.deleted' } })).toMatchObject({ actorType: 'system' });
  // The recent export, and the old one an import still reads, are kept.
  await app.call('get', newExport.downloadUrl, key).expect(200);
  await app.call('get', readExport.downloadUrl, key).expect(200);

  // The old import's upload is gone; the import stays readable with its counts, and can still be reverted.
  await app.call('get', `/v1/files/${oldImport.fileId}`, key).expect(404);
  expect(await blobExists(oldUpload.sha256)).toBe(false);
  expect(await AuditEvent.findOne({ where: { tenantId: tenant.id, entityId: oldImport.fileId, action: 'files.file.deleted' } })).toMatchObject({ actorType: 'system' });
  expect((await app.call('get', `/v1/imports/${oldImport.id}`, key).expect(200)).body).toMatchObject({ phase: 'finished', fileId: oldImport.fileId, counts: oldImport.counts });
  expect((await app.call('post', `/v1/imports/${oldImport.id}/revert`, key).expect(200)).body).toMatchObject({ deleted: 2, restored: 0 });
  await app.call('get', '/v1/subscribers?emailPrefix=ada', key).expect(200).expect((res) => expect(res.body.items).toEqual([]));
  // A recent import's file, and a file a recent import also read, stay.
  await app.call('get', `/v1/files/${newImport.fileId}`, key).expect(200);
  await app.call('get', `/v1/files/${sharedFile}`, key).expect(200);

  // The other tenant's export and upload are untouched.
  await app.call('get', theirExport.downloadUrl, other.key).expect(200);
  await app.call('get', `/v1/files/${theirImport.fileId}`, other.key).expect(200);

  // Run again: nothing more goes, and it does not fail.
  expect(await runPurge(key, { exportsOlderThanDays: 30, importFilesOlderThanDays: 30 })).toMatchObject({ status: 'completed', result: { exports: 0, importFiles: 0, skipped: 1 } });
  await app.call('get', newExport.downloadUrl, key).expect(200);
  // Only what its params name: the import files alone, once the import reading the old export's CSV has ended.
  await reading.update({ phase: 'finished' });
  expect(await runPurge(key, { importFilesOlderThanDays: 1 })).toMatchObject({ status: 'completed', result: { exports: 0, importFiles: 0, skipped: 0 } });
  await app.call('get', readExport.downloadUrl, key).expect(200);
  expect(await runPurge(key, { exportsOlderThanDays: 1 })).toMatchObject({ status: 'completed', result: { exports: 1, importFiles: 0, skipped: 0 } });
  await app.call('get', `/v1/subscriber-exports/${readExport.id}`, key).expect(404);
  await app.call('get', `/v1/subscriber-exports/${newExport.id}`, key).expect(200);
});

it('refuses bad params with 422 INVALID_JOB naming them, before anything is scheduled or run', async () => {
  const { key, tenant } = await buildCaller(['*']);
  const cases: [Record<string, unknown>, string][] = [
    [{}, 'params: give at least one of exportsOlderThanDays, importFilesOlderThanDays'],
    [{ exportsOlderThanDays: 0 }, 'params.exportsOlderThanDays'],
    [{ importFilesOlderThanDays: 3651 }, 'params.importFilesOlderThanDays'],
    [{ exportsOlderThanDays: 1.5 }, 'params.exportsOlderThanDays'],
    [{ importFilesOlderThanDays: '30' }, 'params.importFilesOlderThanDays'],
    [{ exportsOlderThanDays: 30, olderThanDays: 30 }, 'params.olderThanDays: is not a parameter of audience.files_purge'],
  ];
  for (const [params, detail] of cases) {
    const scheduled = await app.call('post', '/v1/job-schedules', key).send({ name: 'bad', jobType: JOB, params, cron: '0 4 * * 0' }).expect(422);
    const ran = await app.call('post', '/v1/job-runs', key).send({ jobType: JOB, params }).expect(422);
    for (const res of [scheduled, ran]) expect([params, res.body.code, res.body.detail]).toEqual([params, 'INVALID_JOB', expect.stringContaining(detail)]);
  }
  expect((await app.call('get', '/v1/job-schedules', key).expect(200)).body.items).toEqual([]);
  expect(await app.sequelize.query('SELECT 1 FROM job_runs WHERE tenant_id = :t', { replacements: { t: tenant.id }, type: QueryTypes.SELECT })).toEqual([]);
});

it('needs audience.erase besides jobs.write to schedule, change or run it', async () => {
  const { tenant, key: admin } = await buildCaller(['*']);
  const purge = { name: 'files retention', jobType: JOB, params: { exportsOlderThanDays: 30 }, cron: '0 4 * * 0', paused: true };
  const existing = (await app.call('post', '/v1/job-schedules', admin).send(purge).expect(201)).body;
  const callers: [string, string[], string[] | undefined, boolean][] = [
    ['jobs only', ['jobs.*'], undefined, false],
    ['jobs and deleting exports by hand', ['jobs.*', 'audience.read', 'audience.write', 'files.*'], undefined, false],
    ['an admin whose key is scoped to jobs', ['*'], ['jobs.*'], false],
    ['jobs and audience.erase', ['jobs.*', 'audience.erase'], undefined, true],
    ['an admin', ['*'], undefined, true],
  ];
  for (const [who, permissions, scopes, allowed] of callers) {
    const { user } = await buildCaller(permissions, tenant);
    const key = await buildApiKey(user, { scopes });
    const created = await app.call('post', '/v1/job-schedules', key).send(purge);
    const changed = await app.call('patch', `/v1/job-schedules/${existing.id}`, key).send({ params: { importFilesOlderThanDays: 60 } });
    const ran = await app.call('post', '/v1/job-runs', key).send({ jobType: JOB, params: { exportsOlderThanDays: 30 } });
    const triggered = await app.call('post', `/v1/job-schedules/${existing.id}/run`, key);
    expect([who, created.status, changed.status, ran.status, triggered.status]).toEqual([who, ...(allowed ? [201, 200, 202, 202] : [403, 403, 403, 403])]);
    if (!allowed) for (const res of [created, changed, ran, triggered]) expect(res.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'audience.erase' });
  }
  const types = (await app.call('get', '/v1/job-types', admin).expect(200)).body.items as { name: string; permission?: string }[];
  expect(types.find((t) => t.name === JOB)).toMatchObject({ permission: 'audience.erase', parameters: { minProperties: 1 } });
});
