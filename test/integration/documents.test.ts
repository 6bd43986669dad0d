// Documents through the API: templates with parts and versions, previews, PDF jobs checked with
// pdftotext, the sandbox, blocked network, batches with progress and a ZIP, and an approved order's PDF.
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { loadContract } from '../../api/contract';
import { AuditEvent, Document, DocumentBatch, StoredFile } from '../../db';
import { VERSION_LIST_LIMIT } from '../../api/conventions';
import { PART_LIMITS, PARTS_TOTAL_LIMIT } from '../../domains/documents/templates';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { expectBadPageParamsRefused, newestFirst, versionPages } from '../helpers/pages';
import { binary, pdfPages, unzip } from '../helpers/pdf';
import { waitFor } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ DOCUMENT_BATCH_CHUNK: '4', PDF_POOL_SIZE: '2' });
  await app.startWorker();
});
afterAll(async () => { await app.close(); });

const invoice = (code = `inv-${randomUUID().slice(0, 8)}`, extra: Record<string, unknown> = {}) => ({
  code, name: 'Invoice', paperSize: 'A4', margins: { top: '25mm', bottom: '25mm' },
  parts: {
    base: '<h1>Invoice {{ number }}</h1><p>Customer: {{ customer.name }}</p>{% for l in lines %}{% render "line", l: l %}{% endfor %}',
    header: '<span>ACME HEADER {{ number }}</span>',
    footer: '<span>Page <span class="pageNumber"></span> of <span class="totalPages"></span></span>',
    css: 'h1 { color: #123456 } .line { margin: 0 0 6mm 0 }',
    partials: { line: '<p class="line">{{ l.description }} = {{ l.amount }}</p>' },
  },
  ...extra,
});

const lines = (n: number) => Array.from({ length: n }, (_, i) => ({ description: `Item ${i + 1}`, amount: (i + 1) * 10 }));

async function waitForDocument(id: string, key: string, status = 'ready') {
  return waitFor(async () => {
    const res = await app.call('get', `/v1/documents/${id}`, key).expect(200);
    return res.body.status === status ? res.body : res.body.status === 'failed' && status !== 'failed' ? Promise.reject(new Error(res.body.error)) : undefined;
  }, { what: `document ${status}`, timeoutMs: 60_000 });
}

const download = (url: string, key: string) => app.call('get', url, key).buffer(true).parse(binary);

describe('templates', () => {
  it('deletes a part as a new version: a partial removed, a fixed part cleared; 404 for a partial it does not have, 412 when stale, 403 for readers', async () => {
    const { key, tenant } = await buildCaller(['documents.template.read', 'documents.template.write']);
    const { key: reader } = await buildCaller(['documents.template.read'], tenant);
    const { key: stranger } = await buildCaller(['*']);
    const id = (await app.call('post', '/v1/document-templates', key).send(invoice(undefined, { parts: { ...invoice().parts, partials: { line: '<p>{{ l.description }}</p>', total: '<b>{{ total }}</b>' } } })).expect(201)).body.id;
    const removed = await app.call('delete', `/v1/document-templates/${id}/parts/partials.total`, key).set('If-Match', '"v1"').expect(200);
    expect(removed.headers.etag).toBe('"v2"');
    expect(removed.body).toMatchObject({ version: 2, parts: { partials: { line: '<p>{{ l.description }}</p>' } } });
    expect(Object.keys(removed.body.parts.partials)).toEqual(['line']);
    await app.call('get', `/v1/document-templates/${id}/parts/partials.total`, key).expect(404);
    const cleared = await app.call('delete', `/v1/document-templates/${id}/parts/header`, key).expect(200);
    expect(cleared.body).toMatchObject({ version: 3, parts: { header: '', footer: expect.stringContaining('pageNumber') } });
    // The versions before keep what was deleted.
    const versions = (await app.call('get', `/v1/document-templates/${id}/versions`, key).expect(200)).body.items;
    expect(versions.find((v: { version: number }) => v.version === 1).parts.partials.total).toBe('<b>{{ total }}</b>');
    expect((await app.call('delete', `/v1/document-templates/${id}/parts/partials.total`, key).expect(404)).body.code).toBe('NOT_FOUND');
    expect((await app.call('delete', `/v1/document-templates/${id}/parts/partials.line`, key).set('If-Match', '"v1"').expect(412)).body.code).toBe('PRECONDITION_FAILED');
    await app.call('delete', `/v1/document-templates/${id}/parts/body`, key).expect(400);
    await app.call('delete', `/v1/document-templates/${id}/parts/partials.__proto__`, key).expect(400);
    expect((await app.call('delete', `/v1/document-templates/${id}/parts/partials.line`, reader).expect(403)).body.permission).toBe('documents.template.write');
    await app.call('delete', `/v1/document-templates/${id}/parts/partials.line`, stranger).expect(404);
    expect((await app.call('get', `/v1/document-templates/${id}`, key).expect(200)).body.version).toBe(3);
  });

  it('creates a template with header, footer, CSS and partials; reads and writes each part raw, each save a new version', async () => {
    const { key, tenant } = await buildCaller(['documents.template.read', 'documents.template.write']);
    const created = await app.call('post', '/v1/document-templates', key).send(invoice('invoice-a')).expect(201);
    expect(created.headers.location).toBe(`/v1/document-templates/${created.body.id}`);
    expect(created.body).toMatchObject({ code: 'invoice-a', version: 1, paperSize: 'A4', orientation: 'portrait', variables: 'lenient', margins: { top: '25mm', right: '15mm', bottom: '25mm', left: '15mm' } });
    const id = created.body.id;

    const header = await app.call('get', `/v1/document-templates/${id}/parts/header`, key).expect(200);
    expect(header.text).toBe('<span>ACME HEADER {{ number }}</span>');
    expect((await app.call('get', `/v1/document-templates/${id}/parts/partials.line`, key).expect(200)).text).toContain('l.description');
    await app.call('get', `/v1/document-templates/${id}/parts/partials.nope`, key).expect(404);

    const saved = await app.call('put', `/v1/document-templates/${id}/parts/css`, key).set('Content-Type', 'text/plain').set('If-Match', '"v1"').send('h1 { color: red }').expect(200);
    expect(saved.body.version).toBe(2);
    expect(saved.body.parts.css).toBe('h1 { color: red }');
    expect(saved.headers.etag).toBe('"v2"');
    // A stale If-Match writes nothing.
    expect((await app.call('put', `/v1/document-templates/${id}/parts/css`, key).set('Content-Type', 'text/plain').set('If-Match', '"v1"').send('x').expect(412)).body.code).toBe('PRECONDITION_FAILED');

    const updated = await app.call('put', `/v1/document-templates/${id}`, key).send({ name: 'Invoice (US)', paperSize: 'Letter', orientation: 'landscape', variables: 'strict', parts: { base: '<p>{{ number }}</p>' } }).expect(200);
    expect(updated.body).toMatchObject({ version: 3, paperSize: 'Letter', orientation: 'landscape', variables: 'strict', parts: { base: '<p>{{ number }}</p>', header: '', partials: {} } });
    const versions = await app.call('get', `/v1/document-templates/${id}/versions`, key).expect(200);
    expect(versions.body.items.map((v: { version: number }) => v.version)).toEqual([3, 2, 1]);
    expect(versions.body.items[2].parts.header).toContain('ACME HEADER');

    await app.call('get', `/v1/document-templates/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/versions`, key).expect(404);
    await app.call('get', '/v1/document-templates?limit=0', key).expect(400);
    const list = await app.call('get', '/v1/document-templates?code=invoice-a', key).expect(200);
    expect(list.body.items.map((t: { id: string }) => t.id)).toEqual([id]);
    expect((await app.call('get', `/v1/document-templates/${id}`, key).expect(200)).body.name).toBe('Invoice (US)');
    // Every save is in the audit log.
    const { key: auditor } = await buildCaller(['audit.read'], tenant);
    const audit = await app.call('get', `/v1/audit-events?entityType=document_template&entityId=${id}`, auditor).expect(200);
    expect(audit.body.items.map((e: { action: string }) => e.action).sort()).toEqual(['documents.template.created', 'documents.template.updated', 'documents.template.updated']);
  });

  it('refuses a part with a syntax error with 422 naming the part, line and column, and saves nothing', async () => {
    const { key } = await buildCaller(['documents.template.read', 'documents.template.write']);
    const bad = invoice(undefined, {});
    (bad.parts as Record<string, unknown>).header = '<b>\n  {% if number %}unclosed';
    const res = await app.call('post', '/v1/document-templates', key).send(bad).expect(422);
    expect(res.body.code).toBe('TEMPLATE_SYNTAX_ERROR');
    expect(res.body.errors[0]).toMatchObject({ path: '/parts/header', line: 2, column: 3 });
    expect(res.body.detail).toMatch(/not closed/);
    expect((await app.call('get', `/v1/document-templates?code=${bad.code}`, key).expect(200)).body.items).toHaveLength(0);

    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const partial = await app.call('put', `/v1/document-templates/${t.id}/parts/partials.line`, key).set('Content-Type', 'text/plain').send('{{ l.amount | no_such_filter }}').expect(422);
    expect(partial.body.errors[0]).toMatchObject({ path: '/parts/partials.line', line: 1 });
    expect((await app.call('get', `/v1/document-templates/${t.id}`, key).expect(200)).body.version).toBe(1);
  });

  it('answers bad input and refusals with problem+json', async () => {
    const { key, tenant } = await buildCaller(['documents.template.read', 'documents.template.write']);
    const { key: reader } = await buildCaller(['documents.template.read'], tenant);
    const { key: stranger } = await buildCaller(['*']);
    expect((await app.call('post', '/v1/document-templates', key).send({ ...invoice(), code: 'Bad Code!' }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    expect((await app.call('post', '/v1/document-templates', key).send({ ...invoice(), margins: { top: '1 mile' } }).expect(400)).body.errors[0].path).toMatch(/margins\/top/);
    expect((await app.call('post', '/v1/document-templates', key).send({ ...invoice(), extra: 1 }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice('dup')).expect(201)).body;
    expect((await app.call('post', '/v1/document-templates', key).send(invoice('dup')).expect(409)).body.code).toBe('ALREADY_EXISTS');
    expect((await app.call('post', '/v1/document-templates', reader).send(invoice()).expect(403)).body.permission).toBe('documents.template.write');
    await app.call('get', `/v1/document-templates/${t.id}`, stranger).expect(404);
    await app.call('get', `/v1/document-templates/${t.id}/parts/body`, key).expect(400);
    await app.call('get', '/v1/document-templates/not-a-uuid', key).expect(400);
    expect((await app.call('put', `/v1/document-templates/${t.id}/parts/base`, key).set('Content-Type', 'application/octet-stream').send(Buffer.from('x')).expect(415)).body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    await app.call('put', `/v1/document-templates/${t.id}`, key).send({ name: 'x' }).expect(400);
    const badPartial = await app.call('put', `/v1/document-templates/${t.id}`, key).send({ name: 'x', parts: { partials: { '../x': 'y' } } }).expect(400);
    expect(badPartial.body.errors[0].path).toBe('/requestBody/parts/partials/../x');
  });

  it('holds a part written on its own (text/plain) to the caps of a whole template: 400 VALIDATION_FAILED as for the same JSON, nothing saved', async () => {
    // The caps are the contract's (DocumentTemplateParts).
    const schema = (loadContract().definition as { components: { schemas: Record<string, { properties: Record<string, { maxLength?: number; maxProperties?: number; additionalProperties?: { maxLength: number } }> }> } }).components.schemas.DocumentTemplateParts.properties;
    expect(PART_LIMITS).toEqual({
      base: schema.base.maxLength, header: schema.header.maxLength, footer: schema.footer.maxLength, css: schema.css.maxLength,
      partial: schema.partials.additionalProperties!.maxLength, partials: schema.partials.maxProperties,
    });
    const { key } = await buildCaller(['documents.template.read', 'documents.template.write']);
    // 50 partials, the most a template may have.
    const partials = Object.fromEntries([['line', '<p>{{ l.description }}</p>'], ...Array.from({ length: 49 }, (_, i) => [`p${i}`, `<i>${i}</i>`])]);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice(undefined, { parts: { ...invoice().parts, partials } })).expect(201)).body;
    const put = (part: string, text: string) => app.call('put', `/v1/document-templates/${t.id}/parts/${part}`, key).set('Content-Type', 'text/plain').send(text);
    const refusals: [string, string, string, string][] = [
      ['base', 'x'.repeat(500_001), '/requestBody', 'must NOT have more than 500000 characters'],
      ['header', 'x'.repeat(50_001), '/requestBody', 'must NOT have more than 50000 characters'],
      ['footer', 'x'.repeat(50_001), '/requestBody', 'must NOT have more than 50000 characters'],
      ['css', 'x'.repeat(200_001), '/requestBody', 'must NOT have more than 200000 characters'],
      ['partials.line', 'x'.repeat(200_001), '/requestBody', 'must NOT have more than 200000 characters'],
      // A 51st partial, however short.
      ['partials.p49', 'x', '/parts/partials', 'must NOT have more than 50 properties'],
    ];
    for (const [part, text, path, message] of refusals) {
      const res = await put(part, text).expect(400);
      expect([part, res.body.code, res.body.errors]).toEqual([part, 'VALIDATION_FAILED', [{ path, message }]]);
    }
    // The whole template with the same violation answers the same.
    const json = await app.call('put', `/v1/document-templates/${t.id}`, key).send({ name: 'x', parts: { header: 'x'.repeat(50_001) } }).expect(400);
    expect([json.body.code, json.body.errors]).toEqual(['VALIDATION_FAILED', [{ path: '/requestBody/parts/header', message: 'must NOT have more than 50000 characters' }]]);
    // Nothing was saved.
    expect((await app.call('get', `/v1/document-templates/${t.id}/versions`, key).expect(200)).body.items.map((v: { version: number }) => v.version)).toEqual([1]);
    expect((await app.call('get', `/v1/document-templates/${t.id}/parts/base`, key).expect(200)).text).toBe(invoice().parts.base);

    // At the caps it saves: characters counted as JSON Schema counts them (an emoji is one); a partial replaced
    // keeps the count; one removed makes room for another.
    expect((await put('header', '😀'.repeat(50_000)).expect(200)).body.version).toBe(2);
    expect((await put('partials.p0', '<b>0</b>').expect(200)).body.version).toBe(3);
    await app.call('delete', `/v1/document-templates/${t.id}/parts/partials.p0`, key).expect(200);
    const added = await put('partials.p49', '<b>49</b>').expect(200);
    expect([added.body.version, Object.keys(added.body.parts.partials).length]).toEqual([5, 50]);
  });

  it('pages the versions of a template newest first: 20 by default, then the rest through nextCursor; a bad cursor or limit is a 400', async () => {
    // The page size is the contract's, by default and at most (a page of whole templates stays within tens of MB).
    const { parameters } = (loadContract().definition as { components: { parameters: Record<string, { schema: { default: number; maximum: number } }> } }).components;
    expect([parameters.VersionLimit.schema.default, parameters.VersionLimit.schema.maximum]).toEqual([VERSION_LIST_LIMIT, VERSION_LIST_LIMIT]);
    const { key } = await buildCaller(['documents.template.read', 'documents.template.write']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    expect((await app.call('get', `/v1/document-templates/${randomUUID()}/versions?limit=${VERSION_LIST_LIMIT + 1}`, key).expect(400)).body.code).toBe('VALIDATION_FAILED');
    for (let i = 0; i < 21; i++) await app.call('put', `/v1/document-templates/${t.id}/parts/css`, key).set('Content-Type', 'text/plain').send(`h1 { z-index: ${i} }`).expect(200);
    const url = `/v1/document-templates/${t.id}/versions`;
    expect(await versionPages(app, key, url)).toEqual([newestFirst(22).slice(0, 20), [2, 1]]);
    expect((await versionPages(app, key, url, 'limit=7')).flat()).toEqual(newestFirst(22));
    // Each version with its parts.
    const first = (await app.call('get', url, key).expect(200)).body;
    expect(first.items[0].parts.css).toBe('h1 { z-index: 20 }');
    expect((await app.call('get', `${url}?cursor=${encodeURIComponent(first.nextCursor)}`, key).expect(200)).body.items[1].parts).toEqual(invoice().parts);
    await expectBadPageParamsRefused(app, key, url, { maxLimit: VERSION_LIST_LIMIT });
  });

  it('holds all parts together to 1,000,000 characters, however they are sent: one character over is a 400, nothing saved; up to it saves', async () => {
    expect(PARTS_TOTAL_LIMIT).toBe(1_000_000);
    const { key } = await buildCaller(['documents.template.read', 'documents.template.write']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const put = (part: string, text: string) => app.call('put', `/v1/document-templates/${t.id}/parts/${part}`, key).set('Content-Type', 'text/plain').send(text);
    type Parts = { base: string; header: string; footer: string; css: string; partials: Record<string, string> };
    const chars = (p: Parts) => [p.base, p.header, p.footer, p.css, ...Object.values(p.partials)].reduce((n, x) => n + [...x].length, 0);
    // Parts written one at a time, each within its own cap: 500,000 + 200,000 + 200,000 + 50,000 and the small ones.
    expect((await put('base', 'b'.repeat(500_000)).expect(200)).body.version).toBe(2);
    expect((await put('partials.a', 'a'.repeat(200_000)).expect(200)).body.version).toBe(3);
    expect((await put('partials.b', 'p'.repeat(200_000)).expect(200)).body.version).toBe(4);
    const v5 = (await put('css', 'c'.repeat(50_000)).expect(200)).body;
    expect(v5.version).toBe(5);
    const room = PARTS_TOTAL_LIMIT - chars(v5.parts);
    expect(room).toBeGreaterThan(49_000);
    // One character more than is left: refused, as a new partial or as a longer part (each within its own cap).
    const message = 'the template\'s parts would have 1000001 characters in all (base, header, footer, css and partials together), over the limit of 1000000';
    for (const [part, text] of [['partials.more', 'm'.repeat(room + 1)], ['css', 'c'.repeat(50_000 + room + 1)]]) {
      const res = await put(part, text).expect(400);
      expect([part, res.body.code, res.body.errors]).toEqual([part, 'VALIDATION_FAILED', [{ path: '/requestBody', message }]]);
    }
    // The whole template sent as JSON with the same parts answers the same, at the parts (PUT and POST).
    const over = { ...v5.parts, partials: { ...v5.parts.partials, more: 'm'.repeat(room + 1) } };
    const json = await app.call('put', `/v1/document-templates/${t.id}`, key).send({ name: 'x', parts: over }).expect(400);
    expect([json.body.code, json.body.errors]).toEqual(['VALIDATION_FAILED', [{ path: '/requestBody/parts', message }]]);
    const created = await app.call('post', '/v1/document-templates', key).send(invoice(undefined, { parts: over })).expect(400);
    expect([created.body.code, created.body.errors]).toEqual(['VALIDATION_FAILED', [{ path: '/requestBody/parts', message }]]);
    // Nothing was saved.
    const versions = (await app.call('get', `/v1/document-templates/${t.id}/versions`, key).expect(200)).body.items;
    expect(versions.map((v: { version: number }) => v.version)).toEqual([5, 4, 3, 2, 1]);
    expect(versions[0].parts).toEqual(v5.parts);
    await app.call('get', `/v1/document-templates/${t.id}/parts/partials.more`, key).expect(404);

    // Up to the cap it saves, characters counted as JSON Schema counts them (an emoji is one, two UTF-16 units).
    const full = (await put('partials.more', `${'m'.repeat(room - 1)}😀`).expect(200)).body;
    expect([full.version, chars(full.parts), full.parts.partials.more.length]).toEqual([6, PARTS_TOTAL_LIMIT, room + 1]);
    expect((await put('partials.one', 'x').expect(400)).body.errors[0].message).toContain('1000001 characters');
    // Clearing or removing a part is never refused, and makes room again.
    expect((await put('header', '').expect(200)).body.version).toBe(7);
    await app.call('delete', `/v1/document-templates/${t.id}/parts/partials.more`, key).expect(200);
    expect((await put('partials.one', 'x').expect(200)).body.version).toBe(9);
  });

  it('deletes a template, but not while a job of it is queued or rendering (409)', async () => {
    const { key, tenant } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const running = await Document.create({
      id: randomUUID(), tenantId: tenant.id, templateId: t.id, templateCode: t.code, templateVersion: 1, batchId: null, batchIndex: null,
      output: 'pdf', fileName: 'x.pdf', objectType: null, objectId: null, data: {}, status: 'rendering', originKey: null, workflowId: 'documents:x:y', createdBy: null,
    });
    const refused = await app.call('delete', `/v1/document-templates/${t.id}`, key).expect(409);
    expect(refused.body).toMatchObject({ code: 'DEPENDENCY_EXISTS', count: 1 });
    await running.update({ status: 'failed' });
    await app.call('delete', `/v1/document-templates/${t.id}`, key).expect(204);
    await app.call('get', `/v1/document-templates/${t.id}`, key).expect(404);
    await app.call('delete', `/v1/document-templates/${t.id}`, key).expect(404);
  });
});

describe('previews', () => {
  it('renders HTML (escaped values) and a PDF from sample data, storing nothing', async () => {
    const { key, tenant } = await buildCaller(['documents.template.read', 'documents.template.write']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const data = { number: 'PV-7', customer: { name: 'Ann <script>' }, lines: lines(2) };
    const html = await app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ data }).expect(200);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.text).toContain('<h1>Invoice PV-7</h1>');
    expect(html.text).toContain('Ann &lt;script&gt;');
    expect(html.text).toContain('Item 2 = 20');
    expect(html.text).toContain('h1 { color: #123456 }');

    const pdf = await app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ data, output: 'pdf' }).buffer(true).parse(binary).expect(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
    const [page] = pdfPages(pdf.body as Buffer);
    expect(page).toContain('Invoice PV-7');
    expect(page).toContain('ACME HEADER PV-7');
    expect(await Document.count({ where: { tenantId: tenant.id } })).toBe(0);
    expect(await StoredFile.count({ where: { tenantId: tenant.id } })).toBe(0);

    await app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ output: 'pdf' }).expect(400);
    await app.call('post', `/v1/document-templates/${randomUUID()}/preview`, key).send({ data }).expect(404);
  });

  it('breaks lines with newline_to_br in the HTML and the PDF, the text still escaped', async () => {
    const { key } = await buildCaller(['documents.template.read', 'documents.template.write']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice(undefined, { parts: { base: '<div>{{ address | newline_to_br }}</div>' } })).expect(201)).body;
    const data = { address: 'ACME <Ltd>\nMain Street 1\n12345 Springfield' };
    const html = await app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ data }).expect(200);
    expect(html.text).toContain('<div>ACME &lt;Ltd&gt;<br />\nMain Street 1<br />\n12345 Springfield</div>');
    const pdf = await app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ data, output: 'pdf' }).buffer(true).parse(binary).expect(200);
    const text = pdfPages(pdf.body as Buffer)[0].split('\n').map((l) => l.trim()).filter(Boolean);
    expect(text).toEqual(['ACME <Ltd>', 'Main Street 1', '12345 Springfield']);
  });
});

describe('documents', () => {
  it('generates a multi-page PDF: 202 + Location, queued → ready, download with header and page numbers on every page', async () => {
    const { key, tenant } = await buildCaller(['documents.template.write', 'documents.generate', 'documents.read']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const res = await app.call('post', '/v1/documents', key)
      .send({ templateCode: t.code, data: { number: 'INV-42', customer: { name: 'Zed Ltd' }, lines: lines(120) }, fileName: 'INV-42.pdf', objectType: 'invoice', objectId: 'INV-42' })
      .expect(202);
    expect(res.headers.location).toBe(`/v1/documents/${res.body.id}`);
    expect(res.body).toMatchObject({ status: 'queued', templateVersion: 1, output: 'pdf', downloadUrl: null, workflowId: `documents:${tenant.id}:${res.body.id}` });
    // The request is audited once, written with the row.
    const requested = await AuditEvent.findAll({ where: { tenantId: tenant.id, entityId: res.body.id, action: 'documents.document.requested' } });
    expect(requested.map((e) => [e.workflowId, e.after])).toEqual([[res.body.workflowId, { templateCode: t.code, templateVersion: 1 }]]);
    const ready = await waitForDocument(res.body.id, key);
    expect(ready.fileId).toEqual(expect.any(String));
    expect(ready.contentHash).toMatch(/^[a-f0-9]{64}$/);

    const file = await download(ready.downloadUrl, key).expect(200);
    expect(file.headers['content-type']).toBe('application/pdf');
    expect(file.headers['content-disposition']).toContain('filename="INV-42.pdf"');
    const pages = pdfPages(file.body as Buffer);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    pages.forEach((p, i) => {
      expect(p).toContain('ACME HEADER INV-42');
      expect(p).toContain(`Page ${i + 1} of ${pages.length}`);
    });
    const all = pages.join('\n');
    expect(all).toContain('Invoice INV-42');
    expect(all).toContain('Customer: Zed Ltd');
    expect(all).toContain('Item 120 = 1200');
    await app.call('get', ready.downloadUrl, key).set('If-None-Match', file.headers.etag).expect(304);

    // The job is a workflow findable by its search attributes (its row is written by an activity, just before the
    // workflow sets its Status and completes).
    const desc = await waitFor(async () => {
      const d = await app.client.workflow.getHandle(ready.workflowId).describe();
      return d.status.name === 'COMPLETED' && d;
    }, { what: 'document workflow completed' });
    expect(desc.searchAttributes.Status).toEqual(['ready']);

    const listed = await app.call('get', '/v1/documents?objectType=invoice&objectId=INV-42', key).expect(200);
    expect(listed.body.items.map((d: { id: string }) => d.id)).toEqual([res.body.id]);
    // Exactly one stored file for the job.
    expect(await StoredFile.count({ where: { tenantId: tenant.id, originKey: `document:${res.body.id}` } })).toBe(1);
  });

  it('renders HTML output, and records the template version used', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    await app.call('put', `/v1/document-templates/${t.id}/parts/base`, key).set('Content-Type', 'text/plain').send('<p>v2 {{ number }}</p>').expect(200);
    const res = await app.call('post', '/v1/documents', key).send({ templateCode: t.code, output: 'html', data: { number: 'H-1' } }).expect(202);
    const ready = await waitForDocument(res.body.id, key);
    expect(ready).toMatchObject({ templateVersion: 2, fileName: `${t.code}.html` });
    const file = await app.call('get', ready.downloadUrl, key).expect(200);
    expect(file.headers['content-type']).toMatch(/^text\/html/);
    expect(file.text).toContain('<p>v2 H-1</p>');
  });

  it('fails a strict template on a missing variable with its path; a lenient one renders it empty', async () => {
    const { key } = await buildCaller(['*']);
    const strict = (await app.call('post', '/v1/document-templates', key).send({ ...invoice(), variables: 'strict' }).expect(201)).body;
    const lenient = (await app.call('post', '/v1/document-templates', key).send({ ...invoice(), variables: 'lenient' }).expect(201)).body;
    const data = { number: 'S-1', lines: [] };
    const s = await app.call('post', '/v1/documents', key).send({ templateCode: strict.code, data }).expect(202);
    const failed = await waitForDocument(s.body.id, key, 'failed');
    expect(failed.error).toMatch(/undefined variable: customer/);
    // The row is marked failed by an activity, then the workflow sets its Status.
    await waitFor(async () => ((await app.client.workflow.getHandle(failed.workflowId).describe()).searchAttributes.Status as string[] | undefined)?.[0] === 'failed',
      { what: 'Status failed in Temporal' });
    expect((await app.call('get', `/v1/documents/${s.body.id}/content`, key).expect(409)).body.code).toBe('DOCUMENT_NOT_READY');
    const l = await app.call('post', '/v1/documents', key).send({ templateCode: lenient.code, data, output: 'html' }).expect(202);
    const ok = await waitForDocument(l.body.id, key);
    expect((await app.call('get', ok.downloadUrl, key).expect(200)).text).toContain('<p>Customer: </p>');
    // The same check answers a preview at once.
    expect((await app.call('post', `/v1/document-templates/${strict.id}/preview`, key).send({ data }).expect(422)).body.code).toBe('TEMPLATE_RENDER_ERROR');
  });

  it('answers bad input: unknown template 422, bad body 400, no permission 403, other tenant 404', async () => {
    const { key, tenant } = await buildCaller(['*']);
    const { key: reader } = await buildCaller(['documents.read'], tenant);
    const { key: stranger } = await buildCaller(['*']);
    expect((await app.call('post', '/v1/documents', key).send({ templateCode: 'nope', data: {} }).expect(422)).body.code).toBe('UNKNOWN_TEMPLATE');
    await app.call('post', '/v1/documents', key).send({ templateCode: 'x' }).expect(400);
    await app.call('post', '/v1/documents', key).send({ templateCode: 'x', data: {}, output: 'docx' }).expect(400);
    await app.call('post', '/v1/documents', key).send({ templateCode: 'x', data: {}, fileName: '../etc/passwd' }).expect(400);
    expect((await app.call('post', '/v1/documents', reader).send({ templateCode: 'x', data: {} }).expect(403)).body.permission).toBe('documents.generate');
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const doc = (await app.call('post', '/v1/documents', key).send({ templateCode: t.code, data: { number: 1, customer: {}, lines: [] }, output: 'html' }).expect(202)).body;
    await app.call('get', `/v1/documents/${doc.id}`, stranger).expect(404);
    await app.call('get', `/v1/documents/${doc.id}/content`, stranger).expect(404);
    await app.call('get', '/v1/documents?status=nope', key).expect(400);
    await waitForDocument(doc.id, key);
  });

  it('returns the same document for a repeated Idempotency-Key', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const body = { templateCode: t.code, output: 'html', data: { number: 'I-1', customer: {}, lines: [] } };
    const a = await app.call('post', '/v1/documents', key).set('Idempotency-Key', 'k1').send(body).expect(202);
    const b = await app.call('post', '/v1/documents', key).set('Idempotency-Key', 'k1').send(body).expect(202);
    expect(b.body.id).toBe(a.body.id);
    await waitForDocument(a.body.id, key);
  });

  it('deletes a ready document and its file; refuses while it is queued (409)', async () => {
    const { key, tenant } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const doc = (await app.call('post', '/v1/documents', key).send({ templateCode: t.code, data: { number: 'D-1', customer: {}, lines: [] } }).expect(202)).body;
    const ready = await waitForDocument(doc.id, key);
    await app.call('delete', `/v1/documents/${doc.id}`, key).expect(204);
    await app.call('get', `/v1/documents/${doc.id}`, key).expect(404);
    expect(await StoredFile.count({ where: { id: ready.fileId } })).toBe(0);
    const queued = await Document.create({
      id: randomUUID(), tenantId: tenant.id, templateId: t.id, templateCode: t.code, templateVersion: 1, batchId: null, batchIndex: null,
      output: 'pdf', fileName: 'q.pdf', objectType: null, objectId: null, data: {}, status: 'queued', originKey: null, workflowId: 'documents:q', createdBy: null,
    });
    expect((await app.call('delete', `/v1/documents/${queued.id}`, key).expect(409)).body.code).toBe('DOCUMENT_BUSY');
    const { key: noDelete } = await buildCaller(['documents.read'], tenant);
    await app.call('delete', `/v1/documents/${queued.id}`, noDelete).expect(403);
  });
});

describe('sandbox', () => {
  it('refuses prototype access, file includes and runaway loops', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send({ ...invoice(), parts: { base: '[{{ x.constructor }}][{{ x.__proto__ }}][{{ x.constructor.constructor }}][{{ x.toString }}][{{ x.hasOwnProperty }}]' } }).expect(201)).body;
    const html = await app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ data: { x: { a: 1 } } }).expect(200);
    expect(html.text).toContain('<body>[][][][][]</body>');

    for (const base of ['{% include "/etc/passwd" %}', '{% render "../../../../etc/hostname" %}', '{% layout "/etc/passwd" %}x']) {
      const bad = (await app.call('post', '/v1/document-templates', key).send({ ...invoice(), parts: { base } }).expect(201)).body;
      const res = await app.call('post', `/v1/document-templates/${bad.id}/preview`, key).send({ data: {} }).expect(422);
      expect(res.body.code).toBe('TEMPLATE_RENDER_ERROR');
      expect(res.body.detail).not.toMatch(/root:/);
    }
    const loop = (await app.call('post', '/v1/document-templates', key).send({ ...invoice(), parts: { base: '{% for i in (1..100000000) %}{{ i }}{% endfor %}' } }).expect(201)).body;
    const started = Date.now();
    expect((await app.call('post', `/v1/document-templates/${loop.id}/preview`, key).send({ data: {} }).expect(422)).body.code).toBe('TEMPLATE_RENDER_ERROR');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('lets a template load nothing from the network: a local server sees no request, the PDF still renders', async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => { seen.push(req.url ?? ''); res.end('body { color: red }'); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const { key } = await buildCaller(['*']);
      const t = (await app.call('post', '/v1/document-templates', key).send({
        ...invoice(),
        parts: {
          base: `<p>Net {{ n }}</p><img src="${base}/img.png"><link rel="stylesheet" href="${base}/style.css"><iframe src="${base}/frame"></iframe>`
            + `<script src="${base}/script.js"></script><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">`,
          css: `@import url("${base}/import.css"); body { background: url("${base}/bg.png") } @font-face { font-family: x; src: url("${base}/font.woff") }`,
          header: `<img src="${base}/header.png">`,
        },
      }).expect(201)).body;
      const doc = (await app.call('post', '/v1/documents', key).send({ templateCode: t.code, data: { n: 'N-1' } }).expect(202)).body;
      const ready = await waitForDocument(doc.id, key);
      expect(pdfPages((await download(ready.downloadUrl, key).expect(200)).body as Buffer)[0]).toContain('Net N-1');
      await app.call('post', `/v1/document-templates/${t.id}/preview`, key).send({ data: { n: 1 }, output: 'pdf' }).expect(200);
      expect(seen).toEqual([]);
    } finally {
      server.close();
    }
  });
});

describe('batches', () => {
  it('renders a batch in chunks with visible progress, and downloads it as a ZIP', async () => {
    const { key, tenant } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const n = 14;
    const items = Array.from({ length: n }, (_, i) => ({ fileName: i === 3 ? 'same.pdf' : i === 4 ? 'same.pdf' : `B-${i}.pdf`, data: { number: `B-${i}`, customer: { name: `C${i}` }, lines: lines(2) } }));
    const res = await app.call('post', '/v1/document-batches', key).send({ templateCode: t.code, items }).expect(202);
    expect(res.headers.location).toBe(`/v1/document-batches/${res.body.id}`);
    expect(res.body).toMatchObject({ status: 'queued', total: n, done: 0, progress: 0, downloadUrl: null });
    expect((await app.call('get', `/v1/document-batches/${res.body.id}/download`, key).expect(409)).body.code).toBe('BATCH_NOT_READY');

    const progress: number[] = [];
    const done = await waitFor(async () => {
      const b = (await app.call('get', `/v1/document-batches/${res.body.id}`, key).expect(200)).body;
      progress.push(b.progress);
      return b.status === 'ready' && b;
    }, { what: 'batch ready', timeoutMs: 90_000, intervalMs: 100 });
    expect(done).toMatchObject({ done: n, failed: 0, progress: 1 });
    expect(progress.some((p) => p > 0 && p < 1)).toBe(true);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);

    const listed = await app.call('get', `/v1/documents?batchId=${res.body.id}&limit=200`, key).expect(200);
    expect(listed.body.items).toHaveLength(n);
    const zip = await download(done.downloadUrl, key).expect(200);
    expect(zip.headers['content-type']).toBe('application/zip');
    const entries = await unzip(zip.body as Buffer);
    expect(entries.map((e) => e.name).sort()).toEqual([...items.map((i) => i.fileName).filter((f) => f !== 'same.pdf'), 'same.pdf', 'same-2.pdf'].sort());
    expect(pdfPages(entries.find((e) => e.name === 'B-9.pdf')!.data)[0]).toContain('Invoice B-9');
    expect(await StoredFile.count({ where: { tenantId: tenant.id } })).toBe(n);
    expect((await DocumentBatch.findByPk(res.body.id))!.status).toBe('ready');
  });

  it('counts items that cannot render as failed and still finishes', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send({ ...invoice(), variables: 'strict' }).expect(201)).body;
    const items = [{ data: { number: 1, customer: { name: 'a' }, lines: [] } }, { data: { number: 2 } }, { data: { number: 3, customer: { name: 'c' }, lines: [] } }];
    const res = await app.call('post', '/v1/document-batches', key).send({ templateCode: t.code, items, output: 'html' }).expect(202);
    const done = await waitFor(async () => { const b = (await app.call('get', `/v1/document-batches/${res.body.id}`, key).expect(200)).body; return b.status === 'ready' && b; }, { what: 'batch ready', timeoutMs: 60_000 });
    expect(done).toMatchObject({ done: 2, failed: 1 });
    const failed = await app.call('get', `/v1/documents?batchId=${res.body.id}&status=failed`, key).expect(200);
    expect(failed.body.items[0].error).toMatch(/customer/);
    expect((await unzip((await download(done.downloadUrl, key).expect(200)).body as Buffer))).toHaveLength(2);
  });

  it('renders a tenant\'s template off the worker\'s event loop: a batch of runaway templates fails each item and holds nothing else up', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send({ ...invoice(), parts: { base: '{% for i in (1..5000) %}{% for j in (1..5000) %}{% endfor %}{% endfor %}' } }).expect(201)).body;
    // The worker runs in this process: its event loop is this one.
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const res = await app.call('post', '/v1/document-batches', key).send({ templateCode: t.code, items: [{ data: {} }, { data: {} }, { data: {} }], output: 'html' }).expect(202);
    const done = await waitFor(async () => { const b = (await app.call('get', `/v1/document-batches/${res.body.id}`, key).expect(200)).body; return b.status === 'ready' && b; }, { what: 'batch ready', timeoutMs: 60_000 });
    delay.disable();
    expect(done).toMatchObject({ done: 0, failed: 3 });
    const failed = await app.call('get', `/v1/documents?batchId=${res.body.id}&status=failed`, key).expect(200);
    expect(failed.body.items.map((d: { error: string }) => d.error)).toEqual(Array(3).fill(expect.stringMatching(/limit/i)));
    // Each item's Liquid ran for its full 2 s limit; on the event loop, that would have held it 2 s at a time.
    expect(delay.max / 1e6).toBeLessThan(1_000);
  }, 60_000);

  it('answers bad input: empty or over 10,000 items 400, unknown template 422, other tenant 404', async () => {
    const { key } = await buildCaller(['*']);
    const { key: stranger } = await buildCaller(['*']);
    await app.call('post', '/v1/document-batches', key).send({ templateCode: 'x', items: [] }).expect(400);
    await app.call('post', '/v1/document-batches', key).send({ templateCode: 'x', items: Array.from({ length: 10_001 }, () => ({ data: {} })) }).expect(400);
    expect((await app.call('post', '/v1/document-batches', key).send({ templateCode: 'nope', items: [{ data: {} }] }).expect(422)).body.code).toBe('UNKNOWN_TEMPLATE');
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const b = (await app.call('post', '/v1/document-batches', key).send({ templateCode: t.code, output: 'html', items: [{ data: { number: 1, customer: {}, lines: [] } }] }).expect(202)).body;
    await app.call('get', `/v1/document-batches/${b.id}`, stranger).expect(404);
    await app.call('get', `/v1/document-batches/${b.id}/download`, stranger).expect(404);
    await waitFor(async () => (await app.call('get', `/v1/document-batches/${b.id}`, key)).body.status === 'ready', { what: 'batch ready' });
  });
});

describe('batch file names', () => {
  it('refuses a file name that is a path, a drive or only dots (.., C:inv.pdf) at creation with 400, writing nothing', async () => {
    const { key, tenant } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    for (const fileName of ['..', '.', 'C:inv.pdf', 'c:', 'a/b.pdf', 'a\\b.pdf']) {
      const res = await app.call('post', '/v1/document-batches', key).send({ templateCode: t.code, output: 'html', items: [{ data: {} }, { fileName, data: {} }] }).expect(400);
      expect([fileName, res.body.code, res.body.errors.map((e: { path: string }) => e.path)]).toEqual([fileName, 'VALIDATION_FAILED', ['/requestBody/items/1/fileName']]);
      const one = await app.call('post', '/v1/documents', key).send({ templateCode: t.code, output: 'html', fileName, data: {} }).expect(400);
      expect([fileName, one.body.code, one.body.errors[0].path]).toEqual([fileName, 'VALIDATION_FAILED', '/requestBody/fileName']);
    }
    expect([await DocumentBatch.count({ where: { tenantId: tenant.id } }), await Document.count({ where: { tenantId: tenant.id } })]).toEqual([0, 0]);
    // Dots and colons inside a name are fine.
    const ok = (await app.call('post', '/v1/document-batches', key).send({ templateCode: t.code, output: 'html', items: [{ fileName: '...hidden..v2.html', data: {} }, { fileName: 'INV:1.html', data: {} }] }).expect(202)).body;
    await waitFor(async () => (await app.call('get', `/v1/document-batches/${ok.id}`, key)).body.status === 'ready', { what: 'batch ready' });
  });

  it('downloads the ZIP of a batch stored with such names (before they were refused) under safe, unique names', async () => {
    const { key, tenant } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send(invoice()).expect(201)).body;
    const items = ['a.html', 'b.html', 'c.html', 'd.html'].map((fileName, i) => ({ fileName, data: { number: i, customer: { name: 'x' }, lines: [] } }));
    const b = (await app.call('post', '/v1/document-batches', key).send({ templateCode: t.code, output: 'html', items }).expect(202)).body;
    const done = await waitFor(async () => { const r = (await app.call('get', `/v1/document-batches/${b.id}`, key).expect(200)).body; return r.status === 'ready' && r; }, { what: 'batch ready', timeoutMs: 60_000 });
    expect(done).toMatchObject({ done: 4, failed: 0 });
    // As a batch stored before the contract refused these names holds them.
    const stored = ['..', 'C:inv.pdf', '..', 'a\\b/c.html'];
    for (const [i, fileName] of stored.entries()) await Document.update({ fileName }, { where: { tenantId: tenant.id, batchId: b.id, batchIndex: i } });
    const zip = await download(done.downloadUrl, key).expect(200);
    const entries = await unzip(zip.body as Buffer);
    expect(entries.map((e) => e.name)).toEqual(['__', 'C_inv.pdf', '__-2', 'a_b_c.html']);
    expect(entries[1].data.toString()).toContain('Invoice 1');
  });
});

describe('purchase orders', () => {
  it('generates the PDF of an approved order from the purchase-order template, listed on the order', async () => {
    const { key, user } = await buildCaller(['*']);
    const roleKey = (await app.call('get', '/v1/me', key).expect(200)).body.roles[0];
    await app.call('post', '/v1/document-templates', key).send({
      code: 'purchase-order', name: 'PO', variables: 'strict',
      parts: { base: '<h1>Purchase order {{ order.number }}</h1><p>{{ order.supplier }}</p>{% for l in order.lines %}<p>{{ l.description }} {{ l.amount }}</p>{% endfor %}<p>Total {{ order.total }} {{ order.currency }}</p>', footer: 'PO {{ order.number }} page <span class="pageNumber"></span>' },
    }).expect(201);
    await app.call('post', '/v1/approval-templates', key).send({ name: 'Auto', objectType: 'purchase_order', autoApproveRoles: [roleKey], stages: [{ name: 'Boss', approvers: { users: [user.id] }, rule: 'any' }] }).expect(201);
    const po = (await app.call('post', '/v1/purchase-orders', key).send({ number: `PO-${randomUUID().slice(0, 6)}`, supplier: 'Paper & Co', currency: 'EUR', lines: [{ description: 'Paper', quantity: 3, unitPrice: 4.5 }] }).expect(201)).body;
    await app.call('post', `/v1/purchase-orders/${po.id}/submit`, key).expect(202);
    await waitFor(async () => (await app.call('get', `/v1/purchase-orders/${po.id}`, key)).body.state === 'approved', { what: 'order approved', timeoutMs: 45_000 });
    const doc = await waitFor(async () => {
      const items = (await app.call('get', `/v1/purchase-orders/${po.id}/documents`, key).expect(200)).body.items;
      return items.length === 1 && items[0].status === 'ready' && items[0];
    }, { what: 'order PDF ready', timeoutMs: 45_000 });
    expect(doc).toMatchObject({ objectType: 'purchase_order', objectId: po.id, templateCode: 'purchase-order', fileName: `${po.number}.pdf` });
    const [page] = pdfPages((await download(doc.downloadUrl, key).expect(200)).body as Buffer);
    expect(page).toContain(`Purchase order ${po.number}`);
    expect(page).toContain('Paper & Co');
    expect(page).toContain('Paper 13.5');
    expect(page).toContain('Total 13.5 EUR');
    expect(page).toContain(`PO ${po.number} page 1`);
    await app.call('get', `/v1/purchase-orders/${randomUUID()}/documents`, key).expect(404);
  });
});
