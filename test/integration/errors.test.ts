// Bad input of every kind gets a clear 4xx problem+json with a stable code, never a 500.
import { randomUUID } from 'node:crypto';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';

let app: TestApp;
let key: string;

beforeAll(async () => {
  app = await startTestApp({ JSON_BODY_LIMIT_BYTES: '2048' });
  ({ key } = await buildCaller(['*']));
});
afterAll(() => app.close());

describe('given a caller with every permission', () => {
  it('refuses malformed JSON with MALFORMED_JSON', async () => {
    const res = await app.call('post', '/v1/roles', key).set('Content-Type', 'application/json').send('{"key": "x",').expect(400);
    expect(res.body.code).toBe('MALFORMED_JSON');
  });

  it('refuses wrong types with VALIDATION_FAILED and the path of each field', async () => {
    const res = await app.call('post', '/v1/roles', key).send({ key: 'auditor', title: 42, permissions: 'audit.read' }).expect(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['/requestBody/permissions', '/requestBody/title']);
  });

  it('refuses unknown fields, naming them', async () => {
    const res = await app.call('post', '/v1/roles', key).send({ key: 'auditor', title: 'Auditor', permissions: [], colour: 'red' }).expect(400);
    expect(res.body.errors).toContainEqual({ path: '/requestBody/colour', message: 'must NOT have additional properties' });
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await app.call('post', '/v1/roles', key).send({ key: 'big', title: 'x'.repeat(5000), permissions: [] }).expect(413);
    expect(res.body.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses a non-JSON body on a JSON operation with 415', async () => {
    const res = await app.call('post', '/v1/roles', key).set('Content-Type', 'text/plain').send('key=x').expect(415);
    expect(res.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers unknown routes with 404 ROUTE_NOT_FOUND', async () => {
    const res = await app.call('get', '/v1/nothing-here', key).expect(404);
    expect(res.body.code).toBe('ROUTE_NOT_FOUND');
  });

  it('answers a wrong method with 405 and the allowed methods', async () => {
    const res = await app.call('put', '/v1/me', key).send({}).expect(405);
    expect(res.body.code).toBe('METHOD_NOT_ALLOWED');
    expect(res.headers.allow).toBe('GET, PATCH');
  });

  it('refuses a malformed id with 400 instead of a database error', async () => {
    const res = await app.call('get', '/v1/users/not-a-uuid', key).expect(400);
    expect(res.body.errors[0].path).toBe('/path/userId');
  });

  it('refuses a uuid written as a URN (urn:uuid:…) with 400, in a path and in a body, instead of a database error', async () => {
    const urn = `urn:uuid:${randomUUID()}`;
    expect((await app.call('get', `/v1/users/${urn}`, key).expect(400)).body.errors[0].path).toBe('/path/userId');
    const res = await app.call('post', '/v1/subscriber-exports', key).send({ listId: urn }).expect(400);
    expect(res.body.errors[0].path).toBe('/requestBody/listId');
  });

  it('refuses an out-of-range page size', async () => {
    const res = await app.call('get', '/v1/roles?limit=5000', key).expect(400);
    expect(res.body.errors[0].path).toBe('/query/limit');
  });

  it('refuses a forged cursor', async () => {
    const res = await app.call('get', '/v1/roles?cursor=bm9wZQ', key).expect(400);
    expect(res.body.errors[0].path).toBe('/query/cursor');
  });

  it('echoes a given X-Request-Id, in the header and the problem body', async () => {
    const res = await app.call('get', '/v1/nothing-here', key).set('X-Request-Id', 'trace-123').expect(404);
    expect(res.headers['x-request-id']).toBe('trace-123');
    expect(res.body.requestId).toBe('trace-123');
  });

  it('makes up a request id when none is sent', async () => {
    const res = await app.call('get', '/v1/me', key).expect(200);
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sends security headers', async () => {
    const res = await app.call('get', '/health').expect(200);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
  });
});

describe('rate limiting', () => {
  it('answers 429 with Retry-After once a key spends its budget', async () => {
    const limited = await startTestApp({ RATE_LIMIT_PER_MINUTE: '3' });
    try {
      const { key: k } = await buildCaller(['*']);
      for (let i = 0; i < 3; i++) await limited.call('get', '/v1/me', k).expect(200);
      const res = await limited.call('get', '/v1/me', k).expect(429);
      expect(res.body.code).toBe('RATE_LIMITED');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      // Another key has its own budget.
      const { key: other } = await buildCaller(['*']);
      await limited.call('get', '/v1/me', other).expect(200);
    } finally {
      await limited.close();
    }
  });
});

describe('CORS', () => {
  it('allows configured origins only', async () => {
    const withCors = await startTestApp({ CORS_ORIGINS: 'https://app.example.com' });
    try {
      const ok = await withCors.call('get', '/health').set('Origin', 'https://app.example.com').expect(200);
      expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
      const no = await withCors.call('get', '/health').set('Origin', 'https://evil.example.com').expect(200);
      expect(no.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await withCors.close();
    }
  });
});
