// Files made by workflows are read with their owner's permission, and go only with their owner.
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { Tenant } from '../../db';
import { waitFor } from '../helpers/wait';

let app: TestApp;
let tenant: Tenant;
/** The tenant's three kinds of file: an audit export's CSV, a document's rendering (HTML: no Chromium needed, the same rule as a PDF) and a plain upload. */
const files: Record<'export' | 'document' | 'upload', string> = { export: '', document: '', upload: '' };
let documentId = '';

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorker();
  const admin = await buildCaller(['*']);
  tenant = admin.tenant;
  const x = await app.call('post', '/v1/audit-exports', admin.key).send({}).expect(202);
  const template = await app.call('post', '/v1/document-templates', admin.key).send({ code: 'note', name: 'Note', parts: { base: '<p>{{ n }}</p>' } }).expect(201);
  const doc = await app.call('post', '/v1/documents', admin.key).send({ templateCode: template.body.code, data: { n: 1 }, output: 'html' }).expect(202);
  documentId = doc.body.id;
  const up = await app.call('post', '/v1/files?filename=plain.txt', admin.key).set('Content-Type', 'text/plain').send('plain').expect(201);
  files.upload = up.body.id;
  files.export = (await waitFor(async () => (await app.call('get', x.headers.location, admin.key).expect(200)).body.fileId, { what: 'export ready' })) as string;
  files.document = (await waitFor(async () => (await app.call('get', doc.headers.location, admin.key).expect(200)).body.fileId, { what: 'document ready' })) as string;
});
afterAll(() => app.close());

type Kind = keyof typeof files;
const callers: [string, string[], Kind[]][] = [
  // permissions (beside files.*) → the files they may open through /v1/files
  ['files.* only', [], ['upload']],
  ['files.* and audit.read', ['audit.read'], ['upload', 'export']],
  ['files.* and documents.read', ['documents.read'], ['upload', 'document']],
  ['files.*, audit.read and documents.read', ['audit.read', 'documents.read'], ['upload', 'export', 'document']],
];
const owner: Record<Kind, string | null> = { upload: null, export: 'audit.read', document: 'documents.read' };

describe.each(callers)('a caller with %s', (_name, extra, visible) => {
  let key: string;
  beforeAll(async () => { ({ key } = await buildCaller(['files.*', ...extra], tenant)); });

  it('lists exactly the files it may open', async () => {
    const listed = (await app.call('get', '/v1/files?limit=200', key).expect(200)).body.items.map((f: { id: string }) => f.id);
    expect(listed.sort()).toEqual(visible.map((k) => files[k]).sort());
  });

  it.each(['upload', 'export', 'document'] as Kind[])('reads, downloads and deletes the %s as its permissions allow', async (kind) => {
    const id = files[kind];
    if (!visible.includes(kind)) {
      for (const url of [`/v1/files/${id}`, `/v1/files/${id}/content`]) {
        const res = await app.call('get', url, key).expect(403);
        expect(res.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: owner[kind] });
      }
      expect((await app.call('delete', `/v1/files/${id}`, key).expect(403)).body.permission).toBe(owner[kind]);
      return;
    }
    await app.call('get', `/v1/files/${id}`, key).expect(200);
    await app.call('get', `/v1/files/${id}/content`, key).expect(200);
    if (kind === 'upload') return; // deleted once, below
    // Its owner still uses it: refused, and both stay.
    const res = await app.call('delete', `/v1/files/${id}`, key).expect(409);
    expect(res.body).toMatchObject({ code: 'DEPENDENCY_EXISTS', count: 1 });
    await app.call('get', `/v1/files/${id}/content`, key).expect(200);
  });
});

it('a plain upload is deleted with files.delete alone; a document\'s file goes with its document', async () => {
  const { key } = await buildCaller(['files.*'], tenant);
  await app.call('delete', `/v1/files/${files.upload}`, key).expect(204);
  const docs = await buildCaller(['documents.read', 'documents.delete', 'files.read'], tenant);
  await app.call('delete', `/v1/documents/${documentId}`, docs.key).expect(204);
  await app.call('get', `/v1/files/${files.document}`, docs.key).expect(404);
});

