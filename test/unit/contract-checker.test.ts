// The test-side contract checker is itself tested: each rule refuses the response that breaks it.
import OpenAPIBackend from 'openapi-backend';
import { closeSchema, ContractChecker, isContractViolation, takeViolations } from '../helpers/contract';
import { waitFor } from '../helpers/wait';

const problem = { type: 'object', required: ['code'], properties: { code: { type: 'string' }, detail: { type: 'string' } } };
const thing = { type: 'object', required: ['id'], properties: { id: { type: 'string' }, tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } } } };
const definition = {
  openapi: '3.0.3',
  info: { title: 't', version: '1' },
  paths: {
    '/things': {
      post: {
        operationId: 'createThing',
        responses: {
          default: { description: 'any error', content: { 'application/problem+json': { schema: problem } } },
          '201': {
            description: 'created',
            headers: { Location: { required: true, schema: { type: 'string' } }, 'Idempotent-Replayed': { schema: { type: 'string', enum: ['true'] } } },
            content: { 'application/json': { schema: { allOf: [thing, { type: 'object', required: ['secret'], properties: { secret: { type: 'string' } } }] } } },
          },
          '429': { description: 'slow down', headers: { 'Retry-After': { required: true, schema: { type: 'integer', minimum: 1 } } }, content: { 'application/problem+json': { schema: problem } } },
        },
      },
    },
    '/things/{id}/pdf': {
      get: {
        operationId: 'thingPdf',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the PDF', content: { 'application/pdf': { schema: { type: 'string', format: 'binary' } } } },
          '304': { description: 'not modified', headers: { ETag: { schema: { type: 'string' } } } },
        },
      },
    },
    '/things/{id}': {
      get: {
        operationId: 'getThing',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'ok', content: { 'application/json': { schema: { ...thing, properties: { ...thing.properties, data: { type: 'object', additionalProperties: true } } } } } } },
      },
    },
  },
};

let checker: ContractChecker;
beforeAll(async () => {
  const api = new OpenAPIBackend({ definition: definition as never, quick: true });
  await api.init();
  checker = new ContractChecker(api);
});
afterEach(() => { takeViolations(); });

const json = { 'content-type': 'application/json; charset=utf-8' };
const problemJson = { 'content-type': 'application/problem+json' };
const created = (over: { headers?: Record<string, string>; body?: unknown } = {}) => ({
  status: 201, headers: { ...json, location: '/things/1', ...over.headers }, body: over.body ?? { id: '1', secret: 's', tags: [{ name: 'a' }] },
});
const refusal = (fn: () => void) => {
  try {
    fn();
  } catch (err) {
    if (isContractViolation(err)) return err.message;
    throw err;
  }
  throw new Error('the checker accepted it');
};

it('accepts a response that keeps the contract, allOf parts merged', () => {
  expect(() => checker.check('POST', '/things', created())).not.toThrow();
  expect(() => checker.check('GET', '/things/1', { status: 200, headers: json, body: { id: '1', data: { anything: 1 } } })).not.toThrow();
  expect(() => checker.check('GET', '/things/1/pdf', { status: 200, headers: { 'content-type': 'application/pdf' }, body: Buffer.from('%PDF') })).not.toThrow();
  expect(() => checker.check('GET', '/things/1/pdf', { status: 304, headers: { etag: '"x"' }, body: {} })).not.toThrow();
  expect(takeViolations()).toEqual([]);
});

it('refuses a status the operation does not declare, even with a default response', () => {
  expect(refusal(() => checker.check('POST', '/things', { status: 409, headers: problemJson, body: { code: 'ALREADY_EXISTS' } }))).toMatch(/createThing answered 409, which openapi.yaml does not declare/);
});

it('refuses a field the schema does not name, at any depth and across allOf', () => {
  expect(refusal(() => checker.check('POST', '/things', created({ body: { id: '1', secret: 's', secretHash: 'leak' } })))).toMatch(/must NOT have additional properties/);
  expect(refusal(() => checker.check('POST', '/things', created({ body: { id: '1', secret: 's', tags: [{ name: 'a', internal: true }] } })))).toMatch(/additional properties/);
  expect(refusal(() => checker.check('POST', '/things', created({ body: { id: '1' } })))).toMatch(/must have required property 'secret'/);
});

it('refuses a content type the response does not declare', () => {
  expect(refusal(() => checker.check('GET', '/things/1/pdf', { status: 200, headers: { 'content-type': 'text/html' }, body: '<p>' }))).toMatch(/came as text\/html; openapi.yaml declares application\/pdf/);
  expect(refusal(() => checker.check('GET', '/things/1', { status: 200, headers: { 'content-type': 'text/plain' }, body: 'x' }))).toMatch(/came as text\/plain/);
});

it('refuses a missing required header, a header that breaks its schema, and a client header the contract does not declare', () => {
  const noLocation: Record<string, string> = { ...created().headers };
  delete noLocation.location;
  expect(refusal(() => checker.check('POST', '/things', { ...created(), headers: noLocation }))).toMatch(/lacks the location header/);
  expect(refusal(() => checker.check('POST', '/things', { status: 429, headers: { ...problemJson, 'retry-after': 'soon' }, body: { code: 'RATE_LIMITED' } }))).toMatch(/header retry-after: soon/);
  expect(refusal(() => checker.check('POST', '/things', { status: 429, headers: problemJson, body: { code: 'RATE_LIMITED' } }))).toMatch(/lacks the retry-after header/);
  expect(refusal(() => checker.check('POST', '/things', created({ headers: { 'idempotent-replayed': 'yes' } })))).toMatch(/idempotent-replayed: yes breaks/);
  expect(refusal(() => checker.check('GET', '/things/1', { status: 200, headers: { ...json, etag: '"1"' }, body: { id: '1' } }))).toMatch(/sends etag: "1", which openapi.yaml does not declare/);
});

it('refuses an unknown route that does not answer problem+json', () => {
  expect(refusal(() => checker.check('GET', '/nowhere', { status: 404, headers: json, body: {} }))).toMatch(/no such operation/);
  expect(() => checker.check('GET', '/nowhere', { status: 404, headers: problemJson, body: { code: 'ROUTE_NOT_FOUND' } })).not.toThrow();
});

it('records every violation, so a test that swallowed one still fails', () => {
  try { checker.check('POST', '/things', { status: 418, headers: problemJson, body: { code: 'TEAPOT' } }); } catch { /* swallowed by a careless test */ }
  expect(takeViolations().map((v) => v.message)).toEqual([expect.stringContaining('answered 418')]);
});

it('makes waitFor fail at once on a violation instead of polling on', async () => {
  const started = Date.now();
  let polls = 0;
  const probe = async () => {
    polls++;
    checker.check('POST', '/things', created({ body: { id: '1', secret: 's', extra: 1 } }));
    return true;
  };
  await expect(waitFor(probe, { timeoutMs: 5_000 })).rejects.toThrow(/additional properties/);
  expect(polls).toBe(1);
  expect(Date.now() - started).toBeLessThan(1_000);
});

it('closes schemas on a copy: the definition the server validates with is left as it was', () => {
  const closed = closeSchema(thing) as { additionalProperties: boolean; properties: { tags: { items: { additionalProperties: boolean } } } };
  expect(closed.additionalProperties).toBe(false);
  expect(closed.properties.tags.items.additionalProperties).toBe(false);
  expect(thing).not.toHaveProperty('additionalProperties');
});
