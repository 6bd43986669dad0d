// An import runs with what its requester still holds: every run here is asked for through the API while no worker
// runs, then the requester is demoted, revoked or deactivated (through the API, by another admin), and only then
// does the worker take the runs. Each case fails if the worker trusted the permissions the request carried.
import { randomUUID } from 'node:crypto';
import { ApiKey, Role, StoredFile, Subscriber, User } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { waitFor } from '../helpers/wait';

let app: TestApp;
let admin: string;
const runs: Record<string, string> = {};
let tenantId: string;

const IMPORTER = ['imports.*', 'audience.*', 'files.*', 'identity.users.manage'];
const SUBSCRIBER_COLUMNS = [{ source: 'email', field: 'email' }, { source: 'name', field: 'name' }];
const USER_COLUMNS = [...SUBSCRIBER_COLUMNS, { source: 'roles', field: 'roles', transforms: [{ op: 'split', separator: ' ' }] }];

async function ask(key: string, csv: string, target: 'subscribers' | 'users'): Promise<string> {
  const file = await app.call('post', '/v1/files', key).attach('file', Buffer.from(csv), { filename: 'in.csv', contentType: 'text/csv' }).expect(201);
  const res = await app.call('post', '/v1/imports', key).send({ fileId: file.body.id, target, columns: target === 'users' ? USER_COLUMNS : SUBSCRIBER_COLUMNS }).expect(202);
  return res.body.id;
}

const ended = (id: string) => waitFor(async () => {
  const res = await app.call('get', `/v1/imports/${id}`, admin).expect(200);
  return ['finished', 'failed', 'cancelled'].includes(res.body.phase) && res.body;
}, { what: `import ${id} ended`, timeoutMs: 60_000, intervalMs: 100 });

beforeAll(async () => {
  app = await startTestApp({ IMPORT_CHUNK_MS: '300' });
  const boss = await buildCaller(['*']);
  admin = boss.key;
  tenantId = boss.tenant.id;
  for (const [key, permissions] of [['admin', ['*']], ['importer', IMPORTER], ['viewer', ['files.read']], ['identity-admin', ['identity.*']], ['importer-no-documents', IMPORTER]] as const) {
    await Role.create({ id: randomUUID(), tenantId, key, title: key, permissions: [...permissions] });
  }
  const demoted = await buildCaller(['*'], boss.tenant);
  const revoked = await buildCaller(IMPORTER, boss.tenant);
  const deactivated = await buildCaller(IMPORTER, boss.tenant);
  const narrowed = await buildCaller(IMPORTER, boss.tenant);
  const unchanged = await buildCaller(IMPORTER, boss.tenant);
  const expired = await buildCaller(IMPORTER, boss.tenant);
  const narrowedWildcard = await buildCaller(['imports.*', 'files.*', 'identity.*'], boss.tenant);
  const documentReader = await buildCaller([...IMPORTER, 'documents.read'], boss.tenant);

  // Asked while each held enough: an admin may grant the admin role.
  runs.demoted = await ask(demoted.key, 'email,name,roles\nvi@x.com,Vi,viewer\nboss2@x.com,Boss,admin\n', 'users');
  runs.revoked = await ask(revoked.key, 'email,name\nrevoked@x.com,R\n', 'subscribers');
  runs.deactivated = await ask(deactivated.key, 'email,name\ndeactivated@x.com,D\n', 'subscribers');
  runs.narrowed = await ask(narrowed.key, 'email,name\nnarrowed@x.com,N\n', 'subscribers');
  runs.unchanged = await ask(unchanged.key, 'email,name\nunchanged@x.com,U\n', 'subscribers');
  runs.expired = await ask(expired.key, 'email,name\nexpired@x.com,E\n', 'subscribers');
  // identity.* may grant a role carrying identity.*; identity.users.manage alone may not.
  runs.wildcard = await ask(narrowedWildcard.key, 'email,name,roles\nida@x.com,Ida,identity-admin\n', 'users');
  // A file a document job made needs documents.read to be read, at the request and while the import runs.
  const made = await app.call('post', '/v1/files', documentReader.key).attach('file', Buffer.from('email,name\ndocument@x.com,D\n'), { filename: 'made.csv', contentType: 'text/csv' }).expect(201);
  await StoredFile.update({ originKey: `document:${randomUUID()}` }, { where: { id: made.body.id } });
  runs.document = (await app.call('post', '/v1/imports', documentReader.key).send({ fileId: made.body.id, target: 'subscribers', columns: SUBSCRIBER_COLUMNS }).expect(202)).body.id;
  // The same, with the file's row gone by the time the worker reads (a file may be deleted once staged, while the
  // merge runs): the run still needs what the request needed to read it.
  const gone = await app.call('post', '/v1/files', documentReader.key).attach('file', Buffer.from('email,name\ngone@x.com,G\n'), { filename: 'gone.csv', contentType: 'text/csv' }).expect(201);
  await StoredFile.update({ originKey: `document:${randomUUID()}` }, { where: { id: gone.body.id } });
  runs.documentGone = (await app.call('post', '/v1/imports', documentReader.key).send({ fileId: gone.body.id, target: 'subscribers', columns: SUBSCRIBER_COLUMNS }).expect(202)).body.id;
  await StoredFile.destroy({ where: { id: gone.body.id } });

  // Then, before any worker runs them:
  await app.call('patch', `/v1/users/${demoted.user.id}`, admin).send({ roles: ['importer'] }).expect(200);
  const key = (await ApiKey.findOne({ where: { userId: revoked.user.id } }))!;
  await app.call('delete', `/v1/api-keys/${key.id}`, admin).expect(200);
  await app.call('patch', `/v1/users/${deactivated.user.id}`, admin).send({ active: false }).expect(200);
  await app.call('patch', `/v1/users/${narrowed.user.id}`, admin).send({ roles: ['viewer'] }).expect(200);
  // No API sets a past expiry: the key runs out between the request and the work.
  await ApiKey.update({ expiresAt: new Date(Date.now() - 1_000) }, { where: { userId: expired.user.id } });
  await app.call('patch', `/v1/users/${narrowedWildcard.user.id}`, admin).send({ roles: ['importer'] }).expect(200);
  await app.call('patch', `/v1/users/${documentReader.user.id}`, admin).send({ roles: ['importer-no-documents'] }).expect(200);

  await app.startWorker();
}, 60_000);
afterAll(() => app.close());

it('a demoted admin\'s users import grants only what they hold when it runs', async () => {
  const run = await ended(runs.demoted);
  expect(run).toMatchObject({ phase: 'finished', counts: { created: 1, rejected: 1 } });
  const rejections = await app.call('get', `/v1/imports/${run.id}/rejections`, admin).expect(200);
  expect(rejections.body.items).toEqual([expect.objectContaining({ row: 3, code: 'NOT_PERMITTED' })]);
  expect(await User.count({ where: { tenantId, email: 'boss2@x.com' } })).toBe(0);
  expect(await User.count({ where: { tenantId, email: 'vi@x.com' } })).toBe(1);
});

it.each([
  ['revoked', /API key .* revoked/],
  ['deactivated', /deactivated/],
  ['narrowed', /no longer holds 'audience.import'/],
])('a run whose requester was %s fails with PERMISSION_REVOKED and writes nothing', async (name, why) => {
  const run = await ended(runs[name]);
  expect(run).toMatchObject({ phase: 'failed', error: { code: 'PERMISSION_REVOKED' }, counts: { created: 0, updated: 0 } });
  expect(run.error.message).toMatch(why);
  expect(await Subscriber.count({ where: { tenantId, email: `${name}@x.com` } })).toBe(0);
});

it('a users import by someone narrowed from identity.* to identity.users.manage cannot grant a role carrying identity.*', async () => {
  const run = await ended(runs.wildcard);
  expect(run).toMatchObject({ phase: 'finished', counts: { created: 0, rejected: 1 } });
  expect((await app.call('get', `/v1/imports/${run.id}/rejections`, admin).expect(200)).body.items).toEqual([expect.objectContaining({ code: 'NOT_PERMITTED' })]);
  expect(await User.count({ where: { tenantId, email: 'ida@x.com' } })).toBe(0);
});

it('a run fails with PERMISSION_REVOKED for an expired key, and a document\'s file without documents.read', async () => {
  const expired = await ended(runs.expired);
  expect(expired).toMatchObject({ phase: 'failed', error: { code: 'PERMISSION_REVOKED' }, counts: { created: 0 } });
  expect(expired.error.message).toMatch(/expired/);
  const document = await ended(runs.document);
  expect(document).toMatchObject({ phase: 'failed', error: { code: 'PERMISSION_REVOKED' }, counts: { created: 0 } });
  expect(document.error.message).toMatch(/no longer holds 'documents.read'/);
  const gone = await ended(runs.documentGone);
  expect(gone).toMatchObject({ phase: 'failed', error: { code: 'PERMISSION_REVOKED' }, counts: { created: 0 } });
  expect(gone.error.message).toMatch(/no longer holds 'documents.read'/);
  expect(await Subscriber.count({ where: { tenantId, email: ['expired@x.com', 'document@x.com', 'gone@x.com'] } })).toBe(0);
});

it('a run whose requester kept their standing finishes', async () => {
  expect(await ended(runs.unchanged)).toMatchObject({ phase: 'finished', counts: { created: 1 } });
  expect(await Subscriber.count({ where: { tenantId, email: 'unchanged@x.com' } })).toBe(1);
});
