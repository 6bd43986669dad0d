// Operability: health, readiness (with a dependency down), metrics, the contract and its docs.
import YAML from 'yaml';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';

let app: TestApp;
beforeAll(async () => { app = await startTestApp(); });
afterAll(() => app.close());

it('answers /health without credentials', async () => {
  expect((await app.call('get', '/health').expect(200)).body.status).toBe('ok');
});

it('is ready when Postgres and Temporal answer', async () => {
  expect((await app.call('get', '/ready').expect(200)).body).toEqual({ status: 'ready', checks: { postgres: 'ok', temporal: 'ok' } });
});

it('answers 503 on /ready when Temporal is unreachable', async () => {
  const down = await startTestApp({}, { ping: async () => { throw new Error('connection refused'); } });
  try {
    expect((await down.call('get', '/ready').expect(503)).body).toEqual({ status: 'unavailable', checks: { postgres: 'ok', temporal: 'down' } });
  } finally {
    await down.close();
  }
});

it('exposes Prometheus metrics with latency by operationId and error codes', async () => {
  const { key } = await buildCaller(['*']);
  await app.call('get', '/v1/me', key).expect(200);
  await app.call('get', '/v1/me').expect(401);
  const res = await app.call('get', '/metrics').expect(200);
  expect(res.text).toMatch(/docket_http_request_duration_seconds_count\{operation="getMe",method="GET",status="200"\} [1-9]/);
  expect(res.text).toMatch(/docket_errors_total\{code="UNAUTHENTICATED"\} [1-9]/);
});

it('serves the contract it validates against', async () => {
  const res = await app.call('get', '/openapi.yaml').expect(200);
  const doc = YAML.parse(res.text);
  expect(doc.openapi).toBe('3.0.3');
  expect(Object.keys(doc.paths)).toContain('/v1/me');
});

it('renders the docs from local assets only', async () => {
  const html = await app.call('get', '/docs').expect(200);
  const srcs = [...html.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  expect(srcs.length).toBeGreaterThan(1);
  for (const src of srcs) {
    expect(src.startsWith('/docs/assets/')).toBe(true);
    await app.call('get', src).expect(200);
  }
  await app.call('get', '/docs/assets/../../package.json').expect(404);
});
