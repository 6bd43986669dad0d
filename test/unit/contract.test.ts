// openapi.yaml is the source of truth: these checks keep it complete as domains are added.
import fs from 'node:fs';
import path from 'node:path';
import addFormats from 'ajv-formats';
import OpenAPIBackend from 'openapi-backend';
import { loadContract } from '../../api/contract';

const contract = loadContract();
const def = contract.definition as { paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: { content: Record<string, { example?: unknown; schema?: unknown }> } }>>; components: { schemas: { Problem: { description: string } } } };

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'generated' ? [] : sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

it('names every permission an operation needs in the catalogue', () => {
  const names = contract.permissions.map((p) => p.name);
  const unknown = contract.operations.filter((o) => o.permission && !names.includes(o.permission));
  expect(unknown).toEqual([]);
});

it('documents 401 and 429 on every authenticated operation and 403 on every permissioned one', () => {
  for (const op of contract.operations) {
    const responses = def.paths[op.path][op.method.toLowerCase()].responses;
    // Every credential has a per-minute limit and every address a failed-authentication limit: any of them may answer 429.
    if (!op.public) expect([op.operationId, '401' in responses, '429' in responses]).toEqual([op.operationId, true, true]);
    // A public operation counted per signed link answers 429 past that limit.
    if (op.perLink) expect([op.operationId, op.public, '429' in responses]).toEqual([op.operationId, true, true]);
    if (op.permission) expect([op.operationId, '403' in responses]).toEqual([op.operationId, true]);
    expect([op.operationId, 'default' in responses]).toEqual([op.operationId, true]);
  }
});

it('declares the refusals the app sends for any operation\'s input: 431 for an oversized URL, 400 for bad parameters or body, 413 and 415 for a body', () => {
  const missing: string[] = [];
  for (const op of contract.operations) {
    const item = def.paths[op.path] as unknown as { parameters?: unknown[] } & Record<string, { parameters?: unknown[]; requestBody?: unknown; responses: Record<string, unknown> }>;
    const o = item[op.method.toLowerCase()];
    const takesParams = (o.parameters ?? []).length + (item.parameters ?? []).length > 0;
    const want = ['431', ...(takesParams || o.requestBody ? ['400'] : []), ...(o.requestBody ? ['413'] : []), ...(o.requestBody && op.body !== 'streamed' ? ['415'] : [])];
    missing.push(...want.filter((s) => !(s in o.responses)).map((s) => `${op.operationId} ${s}`));
  }
  expect(missing).toEqual([]);
});

it('declares Idempotent-Replayed on the success responses of every operation that honours Idempotency-Key', () => {
  const missing: string[] = [];
  for (const op of contract.operations.filter((o) => o.idempotent)) {
    const responses = def.paths[op.path][op.method.toLowerCase()].responses as Record<string, { headers?: Record<string, unknown> }>;
    for (const [status, r] of Object.entries(responses)) if (status.startsWith('2') && !r.headers?.['Idempotent-Replayed']) missing.push(`${op.operationId} ${status}`);
  }
  expect(missing).toEqual([]);
});

it('gives every JSON request body an example', () => {
  for (const op of contract.operations) {
    const json = def.paths[op.path][op.method.toLowerCase()].requestBody?.content['application/json'];
    if (json) expect([op.operationId, json.example !== undefined]).toEqual([op.operationId, true]);
  }
});

it('lists every error code the code can send in the Problem schema', () => {
  const documented = def.components.schemas.Problem.description;
  const root = path.resolve(__dirname, '..', '..');
  const used = new Set<string>();
  for (const file of [...sourceFiles(path.join(root, 'api')), ...sourceFiles(path.join(root, 'lib')), ...sourceFiles(path.join(root, 'domains'))]) {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/ApiError\(\d{3}, '([A-Z_]+)'/g)) used.add(m[1]);
  }
  expect(used.size).toBeGreaterThan(10);
  expect([...used].filter((code) => !documented.includes(code))).toEqual([]);
});

it('is valid OpenAPI (the server boots in quick mode, so this is where the document is checked)', async () => {
  const api = new OpenAPIBackend({ definition: contract.definition as never, strict: true, quick: false, validate: true, customizeAjv: (ajv) => addFormats(ajv) });
  await expect(api.init()).resolves.toBeDefined();
});

it('gives every operation a unique operationId', () => {
  const ids = contract.operations.map((o) => o.operationId);
  expect(new Set(ids).size).toBe(ids.length);
});
