// The file store: upload raw and multipart, download with ETag, delete, limits and tenancy.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { AuditEvent } from '../../db';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { waitFor } from '../helpers/wait';

let app: TestApp;
const LIMIT = 64 * 1024;

beforeAll(async () => {
  app = await startTestApp({ UPLOAD_LIMIT_BYTES: String(LIMIT) });
});
afterAll(() => app.close());

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const blobPath = (h: string) => path.join(app.config.fileStoreDir, h.slice(0, 2), h);

describe('given a caller who may read, write and delete files', () => {
  it('stores a raw upload, serves it back with its type, name, length and ETag, then 304s on If-None-Match', async () => {
    const { key, tenant } = await buildCaller(['files.*', 'audit.read']);
    const content = Buffer.from('invoice,total\nA-1,42.00\n');
    const up = await app.call('post', '/v1/files?filename=invoices%20%C3%A9t%C3%A9.csv', key).set('Content-Type', 'text/csv').send(content).expect(201);
    expect(up.body).toMatchObject({ filename: 'invoices été.csv', contentType: 'text/csv', size: content.length, sha256: sha(content) });
    expect(up.headers.location).toBe(`/v1/files/${up.body.id}`);
    const down = await app.call('get', up.body.downloadUrl, key).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    }).expect(200);
    expect(Buffer.compare(down.body as Buffer, content)).toBe(0);
    expect(down.headers['content-type']).toMatch(/^text\/csv/);
    expect(down.headers['content-length']).toBe(String(content.length));
    expect(down.headers['content-disposition']).toContain("filename*=UTF-8''invoices%20%C3%A9t%C3%A9.csv");
    expect(down.headers.etag).toBe(`"${sha(content)}"`);
    await app.call('get', up.body.downloadUrl, key).set('If-None-Match', down.headers.etag).expect(304);
    const audit = await AuditEvent.findOne({ where: { tenantId: tenant.id, action: 'files.file.uploaded', entityId: up.body.id } });
    expect(audit).not.toBeNull();
  });

  it('accepts a multipart upload with the part named file', async () => {
    const { key } = await buildCaller(['files.*']);
    const res = await app.call('post', '/v1/files', key).attach('file', Buffer.from('%PDF-1.4 fake'), { filename: 'a.pdf', contentType: 'application/pdf' }).expect(201);
    expect(res.body).toMatchObject({ filename: 'a.pdf', contentType: 'application/pdf', size: 13 });
    const meta = await app.call('get', `/v1/files/${res.body.id}`, key).expect(200);
    expect(meta.body.sha256).toBe(sha('%PDF-1.4 fake'));
  });

  it('refuses a multipart body without a file part', async () => {
    const { key } = await buildCaller(['files.*']);
    const res = await app.call('post', '/v1/files', key).field('note', 'no file').expect(400);
    expect(res.body.errors[0].path).toBe('/requestBody/file');
  });

  it('refuses an oversize upload with 413 and keeps nothing of it', async () => {
    const { key } = await buildCaller(['files.*']);
    const big = Buffer.alloc(LIMIT + 1, 7);
    expect((await app.call('post', '/v1/files?filename=big.bin', key).set('Content-Type', 'application/octet-stream').send(big).expect(413)).body.code).toBe('PAYLOAD_TOO_LARGE');
    expect(fs.existsSync(blobPath(sha(big)))).toBe(false);
    // Chunked (no Content-Length) is cut off while streaming.
    const chunked = await app.call('post', '/v1/files', key).attach('file', big, 'big.bin').expect(413);
    expect(chunked.body.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await app.call('get', '/v1/files', key).expect(200)).body.items).toHaveLength(0);
  });

  it('stores identical content once and removes the bytes only with the last file using them', async () => {
    const { key } = await buildCaller(['files.*']);
    const content = Buffer.from(`same bytes ${Date.now()}`);
    const one = await app.call('post', '/v1/files?filename=1.txt', key).set('Content-Type', 'text/plain').send(content).expect(201);
    const two = await app.call('post', '/v1/files?filename=2.txt', key).set('Content-Type', 'text/plain').send(content).expect(201);
    expect(one.body.id).not.toBe(two.body.id);
    // Two files, one copy of the bytes: both name the same content, stored once under its hash.
    expect(two.body.sha256).toBe(one.body.sha256);
    expect(fs.readdirSync(path.dirname(blobPath(sha(content)))).filter((f) => f.startsWith(sha(content)))).toEqual([sha(content)]);
    await app.call('delete', `/v1/files/${one.body.id}`, key).expect(204);
    expect(fs.existsSync(blobPath(sha(content)))).toBe(true);
    expect((await app.call('get', `/v1/files/${one.body.id}`, key).expect(404)).body.code).toBe('NOT_FOUND');
    // The other file still serves the shared bytes.
    expect((await app.call('get', `/v1/files/${two.body.id}/content`, key).expect(200)).text).toBe(content.toString());
    expect((await app.call('get', '/v1/files', key).expect(200)).body.items.map((f: { id: string }) => f.id)).toEqual([two.body.id]);
    await app.call('delete', `/v1/files/${two.body.id}`, key).expect(204);
    // Removed just after the answer (files-blobs.test.ts: a delete does not wait for it).
    await waitFor(async () => !fs.existsSync(blobPath(sha(content))), { what: 'the bytes removed' });
    expect((await app.call('get', '/v1/files', key).expect(200)).body.items).toEqual([]);
  });

  it('lists files newest first, page by page', async () => {
    const { key } = await buildCaller(['files.*']);
    for (const n of ['a', 'b', 'c']) await app.call('post', `/v1/files?filename=${n}.txt`, key).set('Content-Type', 'text/plain').send(n).expect(201);
    const first = await app.call('get', '/v1/files?limit=2', key).expect(200);
    expect(first.body.items.map((f: { filename: string }) => f.filename)).toEqual(['c.txt', 'b.txt']);
    const rest = await app.call('get', `/v1/files?limit=2&cursor=${first.body.nextCursor}`, key).expect(200);
    expect(rest.body.items.map((f: { filename: string }) => f.filename)).toEqual(['a.txt']);
  });
});

describe('refusals', () => {
  it('hides another tenant\'s file (404 on read, download and delete) and leaves it whole', async () => {
    const a = await buildCaller(['files.*']);
    const b = await buildCaller(['files.*']);
    const up = await app.call('post', '/v1/files?filename=b.txt', b.key).set('Content-Type', 'text/plain').send('tenant b only').expect(201);
    for (const [method, url] of [['get', `/v1/files/${up.body.id}`], ['get', `/v1/files/${up.body.id}/content`], ['delete', `/v1/files/${up.body.id}`]] as const) {
      expect([method, url, (await app.call(method, url, a.key).expect(404)).body.code]).toEqual([method, url, 'NOT_FOUND']);
    }
    expect((await app.call('get', '/v1/files', a.key).expect(200)).body.items).toEqual([]);
    // The refused delete removed nothing: B still reads the same bytes.
    expect((await app.call('get', `/v1/files/${up.body.id}`, b.key).expect(200)).body).toMatchObject({ id: up.body.id, filename: 'b.txt', size: 13 });
    expect((await app.call('get', `/v1/files/${up.body.id}/content`, b.key).expect(200)).text).toBe('tenant b only');
  });

  it('needs files.write to upload and files.delete to delete', async () => {
    const { key, tenant } = await buildCaller(['files.read']);
    expect((await app.call('post', '/v1/files?filename=x', key).set('Content-Type', 'text/plain').send('x').expect(403)).body.permission).toBe('files.write');
    const { key: writer } = await buildCaller(['files.read', 'files.write'], tenant);
    const up = await app.call('post', '/v1/files?filename=keep.txt', writer).set('Content-Type', 'text/plain').send('keep me').expect(201);
    for (const k of [key, writer]) {
      expect((await app.call('delete', `/v1/files/${up.body.id}`, k).expect(403)).body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'files.delete' });
    }
    expect((await app.call('get', `/v1/files/${up.body.id}/content`, key).expect(200)).text).toBe('keep me');
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'files.file.deleted' } })).toBe(0);
    // With the permission, the same delete goes through: the file is gone, and audited.
    const { key: deleter } = await buildCaller(['files.delete'], tenant);
    await app.call('delete', `/v1/files/${up.body.id}`, deleter).expect(204);
    expect((await app.call('get', `/v1/files/${up.body.id}`, key).expect(404)).body.code).toBe('NOT_FOUND');
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'files.file.deleted', entityId: up.body.id } })).toBe(1);
  });
});
