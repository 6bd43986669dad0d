// Adversarial input, class by class, against every operation in openapi.yaml: each bad input gets a
// 4xx problem+json with a stable code — never a 500 — and leaves the database exactly as it was.
// The operations, their parameters and their bodies are read from the contract, so an operation added
// later is fuzzed too; the contract's own request examples are the valid bodies edge values go into.
import { randomUUID } from 'node:crypto';
import net, { AddressInfo } from 'node:net';
import type { Response } from 'supertest';
import { QueryTypes } from 'sequelize';
import { flushStartIntents } from '../../lib/temporal';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';

// No worker runs: nothing changes the database behind a request's back, so any change is the request's.
let app: TestApp;
let key: string;
let tenantId: string;

type Schema = {
  type?: string; uniqueItems?: boolean; format?: string; enum?: unknown[]; pattern?: string; example?: unknown;
  properties?: Record<string, Schema>; additionalProperties?: boolean | Schema; items?: Schema;
  minimum?: number; maximum?: number; maxItems?: number; minLength?: number; maxLength?: number;
  oneOf?: Schema[]; anyOf?: Schema[]; allOf?: Schema[];
};
interface Param { name: string; in: 'path' | 'query' | 'header'; schema?: Schema }
interface Op {
  operationId: string; method: string; path: string; parameters: Param[]; security: unknown[];
  requestBody?: { required?: boolean; content: Record<string, { schema?: Schema; example?: unknown }> };
}

let ops: Op[] = [];
/** A real resource of the tenant for each path parameter, so a request gets past "not found". */
const fixtures: Record<string, string> = {};
let codes: Set<string>;

const jsonBody = (op: Op) => op.requestBody?.content['application/json'];
const pathParams = (op: Op) => op.parameters.filter((p) => p.in === 'path');
const queryParams = (op: Op) => op.parameters.filter((p) => p.in === 'query');

function urlOf(op: Op, override: Record<string, string> = {}, query = ''): string {
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => override[name] ?? encodeURIComponent(fixtures[name] ?? randomUUID()));
  return query ? `${path}?${query}` : path;
}

function send(op: Op, opts: { url?: string; body?: unknown; raw?: string; type?: string } = {}) {
  const t = app.call(op.method as 'get', opts.url ?? urlOf(op), key);
  if (opts.raw !== undefined) return t.set('Content-Type', opts.type ?? 'application/json').send(opts.raw);
  if (opts.body !== undefined) return t.set('Content-Type', opts.type ?? 'application/json').send(opts.body as object);
  return t;
}

/** This tenant's rows in every table (a hash per table) and the row count of tables without a tenant. */
let fingerprintSql = '';
async function fingerprint(): Promise<Record<string, string>> {
  // The start intents of the fixtures' workflows are removed a moment after their starts (lib/temporal.ts): that
  // earlier work lands now, not between the two fingerprints of a refused request.
  await flushStartIntents();
  const rows = await app.sequelize.query<{ t: string; h: string }>(fingerprintSql, { replacements: { tenantId }, type: QueryTypes.SELECT });
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}

/** Asserts a refusal: 4xx, problem+json, a code the contract lists, and not one stored change. */
async function refused(res: Response, before: Record<string, string>, status?: number): Promise<Response> {
  const what = `${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
  if (status) expect([what, res.status]).toEqual([what, status]);
  expect([what, res.status >= 400 && res.status < 500]).toEqual([what, true]);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect([res.body.code, codes.has(res.body.code)]).toEqual([res.body.code, true]);
  expect(await fingerprint()).toEqual(before);
  return res;
}

/** An instance of `schema` with every property present (optional ones too) and one entry per map and array. */
function skeleton(schema: Schema | undefined, example?: unknown): unknown {
  if (!schema) return example ?? 'x';
  const alt = schema.oneOf ?? schema.anyOf ?? schema.allOf;
  if (alt) return skeleton(alt[0], example);
  if (example !== undefined && (schema.type !== 'object' || typeof example !== 'object') && schema.type !== 'array') return example;
  switch (schema.type) {
    case 'object': {
      const ex = (example ?? {}) as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [k, s] of Object.entries(schema.properties ?? {})) out[k] = skeleton(s, ex[k]);
      for (const [k, v] of Object.entries(ex)) if (!(k in out)) out[k] = v;
      if (typeof schema.additionalProperties === 'object' && Object.keys(out).length === 0) out.k = skeleton(schema.additionalProperties);
      else if (schema.additionalProperties === true && Object.keys(out).length === 0) out.k = 'x';
      return out;
    }
    case 'array': return [skeleton(schema.items, Array.isArray(example) ? example[0] : undefined)];
    case 'integer': case 'number': return schema.minimum ?? 1;
    case 'boolean': return true;
    default: return schema.enum?.[0] ?? schema.example ?? 'x';
  }
}

type Leaf = { pointer: string[]; schema?: Schema; value: unknown };
/** Every leaf of `value` (strings, numbers, booleans), with its JSON pointer and the schema that governs it. */
function leaves(value: unknown, schema: Schema | undefined, pointer: string[] = []): Leaf[] {
  const s = schema?.oneOf?.[0] ?? schema?.anyOf?.[0] ?? schema?.allOf?.[0] ?? schema;
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, s?.items, [...pointer, String(i)]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => leaves(v, s?.properties?.[k] ?? (typeof s?.additionalProperties === 'object' ? s.additionalProperties : undefined), [...pointer, k]));
  }
  return [{ pointer, schema: s, value }];
}

function withLeaf(value: unknown, pointer: string[], leaf: unknown): unknown {
  const copy = structuredClone(value) as Record<string, unknown>;
  let at = copy;
  for (const k of pointer.slice(0, -1)) at = at[k] as Record<string, unknown>;
  at[pointer[pointer.length - 1]] = leaf;
  return copy;
}

const pointerOf = (base: string, pointer: string[]) => [base, ...pointer.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1'))].join('/');
const NUL = 'must not contain NUL (\\u0000) characters';
const SURROGATE = 'must be well-formed Unicode: an unpaired surrogate (\\uD800–\\uDFFF) cannot be stored';
const errorPaths = (res: Response) => (res.body.errors ?? []).map((e: { path: string; message: string }) => `${e.path} ${e.message}`);

beforeAll(async () => {
  app = await startTestApp();
  const admin = await buildCaller(['*']);
  key = admin.key;
  tenantId = admin.tenant.id;
  ops = app.docket.api.router.getOperations() as unknown as Op[];
  const problem = (app.docket.api.definition as unknown as { components: { schemas: { Problem: { description: string } } } }).components.schemas.Problem;
  codes = new Set(problem.description.match(/\b[A-Z][A-Z0-9_]{2,}\b/g));

  const tables = await app.sequelize.query<{ table_name: string; tenant: boolean }>(
    `SELECT c.table_name, bool_or(c.column_name = 'tenant_id') AS tenant FROM information_schema.columns c
     WHERE c.table_schema = 'public' AND c.table_name <> 'schema_migrations' GROUP BY c.table_name ORDER BY c.table_name`,
    { type: QueryTypes.SELECT },
  );
  // api_keys.last_used_at is touched by authentication itself (at most once a minute), not by the request.
  fingerprintSql = tables.map(({ table_name: t, tenant }) => tenant
    ? `SELECT '${t}' AS t, coalesce(md5(string_agg((to_jsonb(x) - 'last_used_at')::text, ',' ORDER BY (to_jsonb(x) - 'last_used_at')::text)), '') AS h FROM "${t}" x WHERE x.tenant_id = :tenantId`
    : `SELECT '${t}' AS t, count(*)::text AS h FROM "${t}"`).join(' UNION ALL ');

  // One real resource per path parameter (workflows are started but never run: no worker).
  const post = async (url: string, body: object) => (await app.call('post', url, key).send(body).expect((r) => { if (r.status >= 300) throw new Error(`${url}: ${r.status} ${JSON.stringify(r.body)}`); })).body;
  const example = (id: string) => structuredClone(jsonBody(ops.find((o) => o.operationId === id)!)!.example) as Record<string, unknown>;
  await post('/v1/roles', { key: 'approver', title: 'Approver', permissions: [] });
  await post('/v1/roles', { key: 'buyer', title: 'Buyer', permissions: [] });
  fixtures.roleKey = (await post('/v1/roles', { key: 'auditor', title: 'Auditor', permissions: ['audit.read'] })).key;
  fixtures.userId = (await post('/v1/users', { email: 'adv@example.com', name: 'Adversary', roles: ['auditor'] })).id;
  fixtures.apiKeyId = (await post('/v1/api-keys', { name: 'second' })).id;
  fixtures.fileId = (await app.call('post', '/v1/files?filename=f.txt', key).set('Content-Type', 'text/plain').send('bytes').expect(201)).body.id;
  fixtures.exportId = (await post('/v1/audit-exports', {})).id;
  fixtures.templateId = (await post('/v1/approval-templates', { name: 'T', objectType: 'purchase_order', stages: [{ name: 'S', approvers: { users: [admin.user.id] }, rule: 'all' }] })).id;
  fixtures.orderId = (await post('/v1/purchase-orders', { ...example('createPurchaseOrder'), number: 'PO-FIXTURE' })).id;
  fixtures.documentTemplateId = (await post('/v1/document-templates', example('createDocumentTemplate'))).id;
  fixtures.documentId = (await post('/v1/documents', { ...example('createDocument'), output: 'html' })).id;
  fixtures.batchId = (await post('/v1/document-batches', { templateCode: 'invoice', output: 'html', items: [{ data: {} }] })).id;
  fixtures.reminderId = (await post('/v1/reminders', { subject: 'Fixture', recipients: { emails: ['ops@example.com'] }, channels: ['email'], dueAt: '2099-01-01T00:00:00Z' })).id;
  fixtures.scheduleId = (await post('/v1/job-schedules', { name: 'Fixture', jobType: 'files.orphan_purge', cron: '0 3 * * *', paused: true })).id;
  Object.assign(fixtures, { part: 'base', asset: 'swagger-ui.css', stage: '0', objectType: 'purchase_order', objectId: 'PO-FIXTURE', token: 'not-a-token' });
});
afterAll(() => app.close());

describe('NUL characters, anywhere', () => {
  it('in any string of any JSON body (values and keys): 400 VALIDATION_FAILED naming where', async () => {
    const before = await fingerprint();
    let tried = 0;
    for (const op of ops.filter(jsonBody)) {
      const json = jsonBody(op)!;
      const body = skeleton(json.schema, json.example);
      const strings = leaves(body, json.schema).filter((l) => typeof l.value === 'string');
      for (const leaf of strings) {
        const res = await refused(await send(op, { body: withLeaf(body, leaf.pointer, `a\u0000${String(leaf.value)}`) }), before, 400);
        expect(errorPaths(res)).toContain(`${pointerOf('/requestBody', leaf.pointer)} ${NUL}`);
        tried++;
      }
      const res = await refused(await send(op, { body: { ...(body as object), 'b\u0000d': 1 } }), before, 400);
      expect(errorPaths(res)).toContain(`/requestBody/b\u0000d ${NUL}`);
    }
    expect(tried).toBeGreaterThan(100);
  });

  it('an unpaired surrogate in any JSON body (values and keys): 400 naming where, never a 500', async () => {
    const before = await fingerprint();
    let tried = 0;
    for (const op of ops.filter(jsonBody)) {
      const json = jsonBody(op)!;
      const body = skeleton(json.schema, json.example);
      // One string leaf per operation (the NUL test above walks them all; the check is the same walk).
      const leaf = leaves(body, json.schema).find((l) => typeof l.value === 'string');
      if (leaf) {
        const res = await refused(await send(op, { body: withLeaf(body, leaf.pointer, `a\ud800${String(leaf.value)}`) }), before, 400);
        expect(errorPaths(res)).toContain(`${pointerOf('/requestBody', leaf.pointer)} ${SURROGATE}`);
        tried++;
      }
      const res = await refused(await send(op, { body: { ...(body as object), 'b\udc00d': 1 } }), before, 400);
      expect(errorPaths(res)).toContain(`/requestBody/b\udc00d ${SURROGATE}`);
    }
    expect(tried).toBeGreaterThan(30);
  });

  it('in every query and path parameter: 400 naming the parameter', async () => {
    const before = await fingerprint();
    for (const op of ops) {
      for (const p of queryParams(op)) {
        const res = await refused(await send(op, { url: urlOf(op, {}, `${encodeURIComponent(p.name)}=a%00b`) }), before, 400);
        expect(errorPaths(res)).toContain(`/query/${p.name} ${NUL}`);
      }
      for (const p of pathParams(op)) {
        const res = await refused(await send(op, { url: urlOf(op, { [p.name]: `${encodeURIComponent(fixtures[p.name] ?? 'x')}%00` }) }), before, 400);
        expect(errorPaths(res)).toContain(`/path/${p.name} ${NUL}`);
      }
    }
  });

  it('in text bodies, form fields and an upload\'s file name', async () => {
    const before = await fingerprint();
    for (const op of ops.filter((o) => o.requestBody?.content['text/plain'])) {
      expect(errorPaths(await refused(await send(op, { raw: '<p>a\u0000b</p>', type: 'text/plain' }), before, 400))).toContain(`/requestBody ${NUL}`);
    }
    for (const op of ops.filter((o) => o.requestBody?.content['application/x-www-form-urlencoded'])) {
      const res = await refused(await send(op, { raw: 'decision=approve&note=a%00b', type: 'application/x-www-form-urlencoded' }), before, 400);
      expect(errorPaths(res)).toContain(`/requestBody/note ${NUL}`);
    }
    const upload = ops.find((o) => o.operationId === 'uploadFile')!;
    const multipart = '--XX\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8\'\'a%00.txt\r\nContent-Type: text/plain\r\n\r\nbytes\r\n--XX--\r\n';
    const res = await refused(await send(upload, { raw: multipart, type: 'multipart/form-data; boundary=XX' }), before, 400);
    expect(errorPaths(res)).toContain(`/requestBody/file/filename ${NUL}`);
  });
});

describe('JSON nested 10,000 deep', () => {
  it('is refused by every JSON operation before anything parses it', async () => {
    const before = await fingerprint();
    const deep = `{"data":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    for (const op of ops.filter(jsonBody)) {
      const res = await refused(await send(op, { raw: deep }), before, 400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: '/requestBody', message: 'is nested deeper than 64 levels' }] });
    }
  });

  it('a free-form field nested just within the limit is stored (no 500)', async () => {
    const nested = JSON.parse(`${'{"a":'.repeat(60)}1${'}'.repeat(60)}`);
    const res = await app.call('post', '/v1/documents', key).send({ templateCode: 'invoice', output: 'html', data: nested });
    expect(res.status).toBe(202);
  });
});

describe('cursors the server did not issue', () => {
  it('are refused by every list: wrong length, wrong types, nested values, unsigned, another list\'s, tampered', async () => {
    const roles = await app.call('get', '/v1/roles?limit=1', key).expect(200);
    const issued = roles.body.nextCursor as string;
    await app.call('get', `/v1/roles?limit=1&cursor=${encodeURIComponent(issued)}`, key).expect(200);
    const [payload, mac] = issued.split('.');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const forged = [
      'bm9wZQ', b64([]), b64(['a', 'b', 'c', 'd']), b64([{ $gt: 1 }, [1]]), b64(['not a date', 'not a uuid']), b64([1e308, null]),
      b64(['0000-01-01T00:00:00Z', randomUUID()]), payload, `${payload}.`, `${payload}.${mac.slice(0, -2)}`, `${b64(['2026-01-01T00:00:00.000Z', randomUUID()])}.${mac}`,
    ];
    const before = await fingerprint();
    for (const op of ops.filter((o) => queryParams(o).some((p) => p.name === 'cursor'))) {
      for (const cursor of [...forged, ...(op.operationId === 'listRoles' ? [] : [issued])]) {
        const res = await refused(await send(op, { url: urlOf(op, {}, `cursor=${encodeURIComponent(cursor)}`) }), before, 400);
        expect(errorPaths(res)).toContain('/query/cursor is not a cursor returned by this list');
      }
    }
  });
});

const BAD_DATES = ['0000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '-000001-01-01T00:00:00Z', '0001-01-01T00:00:00+01:00', '2026-12-31T23:59:60Z', '2026-02-30T00:00:00Z', '10000-01-01T00:00:00Z'];

describe('dates Postgres cannot hold', () => {
  it('are refused in every date-time body field and query parameter', async () => {
    const before = await fingerprint();
    let tried = 0;
    for (const op of ops) {
      const json = jsonBody(op);
      const body = json && skeleton(json.schema, json.example);
      const dates = json ? leaves(body, json.schema).filter((l) => l.schema?.format === 'date-time') : [];
      const queries = queryParams(op).filter((p) => p.schema?.format === 'date-time');
      for (const bad of BAD_DATES) {
        for (const leaf of dates) {
          const res = await refused(await send(op, { body: withLeaf(body, leaf.pointer, bad) }), before, 400);
          expect(errorPaths(res)).toContain(`${pointerOf('/requestBody', leaf.pointer)} must match format "date-time"`);
          tried++;
        }
        for (const p of queries) {
          const res = await refused(await send(op, { url: urlOf(op, {}, `${p.name}=${encodeURIComponent(bad)}`) }), before, 400);
          expect(errorPaths(res)).toContain(`/query/${p.name} must match format "date-time"`);
          tried++;
        }
      }
    }
    expect(tried).toBeGreaterThan(50);
  });

  it('the first and last instants accepted never give a 500, in a valid body or a query', async () => {
    for (const op of ops.filter((o) => !WAITS_ON_A_WORKFLOW.has(o.operationId))) {
      const json = jsonBody(op);
      const dates = json?.example ? leaves(json.example, json.schema).filter((l) => l.schema?.format === 'date-time') : [];
      for (const edge of ['0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z']) {
        for (const leaf of dates) await notAServerError(await send(op, { body: withLeaf(json!.example, leaf.pointer, edge) }));
        for (const p of queryParams(op).filter((q) => q.schema?.format === 'date-time')) {
          await notAServerError(await send(op, { url: urlOf(op, {}, `${p.name}=${encodeURIComponent(edge)}`) }));
        }
      }
    }
  });
});

describe('dates a dependency cannot hold', () => {
  it('a single job run after 2100 (where Temporal schedules end) is a 422, not a 500', async () => {
    const before = await fingerprint();
    const res = await refused(await app.call('post', '/v1/job-schedules', key).send({ name: 'Far', jobType: 'files.orphan_purge', runAt: '9999-12-31T00:00:00Z' }), before, 422);
    expect(res.body.code).toBe('INVALID_JOB');
    await refused(await app.call('patch', `/v1/job-schedules/${fixtures.scheduleId}`, key).send({ runAt: '2101-01-01T00:00:00Z' }), before, 422);
  });
});

/** Operations that wait for a running workflow to answer (a Temporal Update): with no worker they would hang. */
const WAITS_ON_A_WORKFLOW = new Set(['signApprovalFlow', 'cancelApprovalFlow', 'removeApprovalSignature', 'confirmApprovalLink', 'rescheduleReminder', 'snoozeReminder', 'acknowledgeReminder', 'pauseReminder', 'resumeReminder', 'cancelReminder', 'submitPurchaseOrder']);

/** A refusal (4xx problem+json, nothing stored) or a success — never a 500. */
async function notAServerError(res: Response): Promise<void> {
  const what = `${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
  expect([what, res.status < 500]).toEqual([what, true]);
  if (res.status >= 400) expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
}

/** The contract's examples name a user that does not exist here; this tenant's user stands in for it. */
const EXAMPLE_USER = '0f8fad5b-d9cb-469f-a165-70867728950e';
const localised = (example: unknown) => JSON.parse(JSON.stringify(example).replaceAll(EXAMPLE_USER, fixtures.userId));

/** The example body with every number at its schema's maximum and every array as long as allowed (≤ 500). */
function atMaxima(schema: Schema | undefined, example: unknown): unknown {
  if (!schema || schema.uniqueItems) return example;
  if (schema.type === 'array' && Array.isArray(example) && example.length) {
    return Array.from({ length: Math.min(schema.maxItems ?? 1, 500) }, () => atMaxima(schema.items, example[0]));
  }
  if (schema.type === 'object' && example && typeof example === 'object') {
    return Object.fromEntries(Object.entries(example).map(([k, v]) => [k, atMaxima(schema.properties?.[k], v)]));
  }
  if ((schema.type === 'number' || schema.type === 'integer') && schema.maximum !== undefined) return schema.maximum;
  return example;
}

describe('numbers', () => {
  it('past a maximum, under a minimum or not whole are refused, in bodies and queries', async () => {
    const before = await fingerprint();
    for (const op of ops) {
      const json = jsonBody(op);
      const body = json && skeleton(json.schema, json.example);
      const numbers = json ? leaves(body, json.schema).filter((l) => l.schema?.type === 'number' || l.schema?.type === 'integer') : [];
      for (const leaf of numbers) {
        const s = leaf.schema!;
        for (const bad of [s.maximum !== undefined ? s.maximum + 1 : undefined, s.minimum !== undefined ? s.minimum - 1 : undefined, s.type === 'integer' ? 1.5 : undefined]) {
          if (bad === undefined) continue;
          const res = await refused(await send(op, { body: withLeaf(body, leaf.pointer, bad) }), before, 400);
          expect(errorPaths(res).some((e: string) => e.startsWith(`${pointerOf('/requestBody', leaf.pointer)} `))).toBe(true);
        }
        // 1e400 parses to Infinity: no column holds it.
        const raw = JSON.stringify(withLeaf(body, leaf.pointer, 'INF')).replace('"INF"', '1e400');
        await refused(await send(op, { raw }), before, 400);
      }
      for (const p of [...queryParams(op), ...pathParams(op)].filter((q) => q.schema?.type === 'integer')) {
        for (const bad of ['99999999999999999999', '-1', '1.5', '1e3']) {
          const res = p.in === 'query' ? await send(op, { url: urlOf(op, {}, `${p.name}=${bad}`) }) : await send(op, { url: urlOf(op, { [p.name]: bad }) });
          await refused(res, before, 400);
        }
      }
    }
  });

  it('at every maximum the contract allows (arrays as long as allowed) never give a 500: the maxima fit the columns', async () => {
    for (const op of ops.filter((o) => jsonBody(o)?.example && !WAITS_ON_A_WORKFLOW.has(o.operationId))) {
      const json = jsonBody(op)!;
      const before = await fingerprint();
      const res = await send(op, { body: atMaxima(json.schema, localised(json.example)) });
      await notAServerError(res);
      if (res.status >= 400) expect(await fingerprint()).toEqual(before);
    }
  });

  it('a purchase order of 500 lines of 1,000,000 × 100,000,000 is refused with 422 TOTAL_TOO_LARGE, and nothing is stored', async () => {
    const before = await fingerprint();
    const lines = Array.from({ length: 500 }, () => ({ description: 'Gold', quantity: 1e6, unitPrice: 1e8 }));
    const res = await refused(await app.call('post', '/v1/purchase-orders', key).send({ number: 'PO-HUGE', supplier: 'S', currency: 'EUR', lines }), before, 422);
    expect(res.body.code).toBe('TOTAL_TOO_LARGE');
    await refused(await app.call('patch', `/v1/purchase-orders/${fixtures.orderId}`, key).send({ lines }), before, 422);
  });
});

describe('template part names', () => {
  it('that name a member of a JavaScript object are refused when read or written', async () => {
    const before = await fingerprint();
    for (const op of ops.filter((o) => pathParams(o).some((p) => p.name === 'part'))) {
      for (const name of Object.getOwnPropertyNames(Object.prototype)) {
        for (const part of [`partials.${name}`, name]) {
          const res = op.method === 'put'
            ? await send(op, { url: urlOf(op, { part }), raw: '<b>x</b>', type: 'text/plain' })
            : await send(op, { url: urlOf(op, { part }) });
          expect(errorPaths(await refused(res, before, 400))[0]).toMatch(/^\/path\/part must match pattern/);
        }
      }
    }
  });

  it('and are refused inside a whole template\'s partials', async () => {
    const before = await fingerprint();
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const raw = `{"code":"evil","name":"Evil","parts":{"base":"x","partials":{"${name}":"y"}}}`;
      const res = await refused(await app.call('post', '/v1/document-templates', key).set('Content-Type', 'application/json').send(raw), before, 400);
      expect(errorPaths(res)[0]).toMatch(new RegExp(`^/requestBody/parts/partials/${name} must match`));
    }
  });
});

describe('missing and malformed requests', () => {
  it('a body-taking operation sent no body answers 400 and stores nothing (POST /v1/files included)', async () => {
    const before = await fingerprint();
    for (const op of ops.filter((o) => o.requestBody?.required)) {
      const res = await refused(await send(op), before, 400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    }
  });

  it('a path parameter that is not valid percent-encoding is a 400', async () => {
    const before = await fingerprint();
    for (const op of ops) {
      for (const p of pathParams(op)) {
        const res = await refused(await send(op, { url: urlOf(op, { [p.name]: '%E0%A4%A' }) }), before, 400);
        expect(errorPaths(res)).toContain(`/path/${p.name} is not valid percent-encoded UTF-8`);
      }
    }
  });

  it('a request that is not valid HTTP answers 400 MALFORMED_REQUEST as problem+json, not a bare status line', async () => {
    const { port } = app.server.listening ? (app.server.address() as AddressInfo) : await new Promise<AddressInfo>((resolve) => app.server.listen(0, '127.0.0.1', () => resolve(app.server.address() as AddressInfo)));
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /v1/me HTTP/1.1\r\nHost: x\r\nNot a header line\r\n\r\n'));
      let text = '';
      socket.on('data', (c) => { text += c.toString(); });
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    const [head, body] = raw.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(body)).toMatchObject({ status: 400, code: 'MALFORMED_REQUEST' });
  });

  it('a URL over 16 KiB answers 431 problem+json on every operation', async () => {
    const before = await fingerprint();
    for (const op of ops) {
      const res = await refused(await send(op, { url: urlOf(op, {}, `q=${'a'.repeat(17 * 1024)}`) }), before, 431);
      expect(res.body.code).toBe('HEADERS_TOO_LARGE');
    }
  });
});
