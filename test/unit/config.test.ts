// Configuration is read once and fails fast, naming the variable at fault.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, DEVELOPMENT_LINK_SECRET, loadConfig } from '../../config';
import { ensureDevSecret } from '../../scripts/dev-secret';

const base = { NODE_ENV: 'test', DATABASE_URL: 'postgres://x@localhost/db', TEMPORAL_ADDRESS: 'localhost:7233' };
const SECRET = 'a-link-signing-secret-of-at-least-32-chars';

it('reads defaults', () => {
  const c = loadConfig(base);
  expect(c.port).toBe(3000);
  expect(c.temporal.namespace).toBe('default');
  expect(c.limits.uploadBytes).toBe(256 * 1024 * 1024);
  expect(c.workerQueues).toEqual([]);
});

it('names a missing required variable', () => {
  expect(() => loadConfig({ TEMPORAL_ADDRESS: 'x' })).toThrow(new ConfigError('DATABASE_URL is required (see README: Configuration)'));
  expect(() => loadConfig({ DATABASE_URL: 'x' })).toThrow(/TEMPORAL_ADDRESS/);
});

it('refuses a malformed number, naming it', () => {
  expect(() => loadConfig({ ...base, PORT: 'eighty' })).toThrow(/PORT must be a non-negative integer/);
});

it('splits lists and ignores blanks', () => {
  expect(loadConfig({ ...base, WORKER_QUEUES: 'audit, ,files', CORS_ORIGINS: '' }).workerQueues).toEqual(['audit', 'files']);
});

it('reads the documents settings: Chromium path, pool size, render deadline, batch chunk', () => {
  expect(loadConfig(base).documents).toEqual({ chromiumPath: '/usr/bin/chromium', poolSize: 2, renderTimeoutMs: 30_000, batchChunkSize: 25, batchBodyBytes: 32 * 1024 * 1024 });
  const c = loadConfig({ ...base, CHROMIUM_PATH: '/opt/chrome', PDF_POOL_SIZE: '4', PDF_RENDER_TIMEOUT_MS: '5000', DOCUMENT_BATCH_CHUNK: '50' }).documents;
  expect(c).toMatchObject({ chromiumPath: '/opt/chrome', poolSize: 4, renderTimeoutMs: 5000, batchChunkSize: 50 });
  expect(loadConfig({ ...base, PDF_POOL_SIZE: '0' }).documents.poolSize).toBe(1);
  expect(() => loadConfig({ ...base, PDF_POOL_SIZE: 'many' })).toThrow(/PDF_POOL_SIZE/);
});

describe('the link signing secret', () => {
  it('refuses the built-in one unless NODE_ENV says development (or test) explicitly', () => {
    const noEnv = { DATABASE_URL: base.DATABASE_URL, TEMPORAL_ADDRESS: base.TEMPORAL_ADDRESS };
    expect(() => loadConfig(noEnv)).toThrow(/LINK_SIGNING_SECRET is required .*NODE_ENV is unset/);
    expect(() => loadConfig({ ...noEnv, NODE_ENV: 'production' })).toThrow(/LINK_SIGNING_SECRET is required .*NODE_ENV is "production"/);
    expect(loadConfig({ ...noEnv, LINK_SIGNING_SECRET: SECRET }).linkSecret).toBe(SECRET);
    expect(loadConfig({ ...noEnv, NODE_ENV: 'production', LINK_SIGNING_SECRET: SECRET }).warnings).toEqual([]);
  });

  it('takes it in development, and says so loudly', () => {
    const c = loadConfig({ ...base, NODE_ENV: 'development' });
    expect(c.linkSecret).toBe(DEVELOPMENT_LINK_SECRET);
    expect(c.warnings).toEqual([expect.stringMatching(/^INSECURE: LINK_SIGNING_SECRET is unset/)]);
    expect(loadConfig({ ...base, NODE_ENV: 'development', LINK_SIGNING_SECRET: SECRET }).warnings).toEqual([]);
  });

  it('takes it silently in tests', () => {
    expect(loadConfig(base).warnings).toEqual([]);
  });

  it('refuses a short one', () => {
    expect(() => loadConfig({ ...base, LINK_SIGNING_SECRET: 'short' })).toThrow(/at least 32 characters/);
  });

  it('npm start makes a random one once into its data folder and reads it back later', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-secret-'));
    const file = path.join(dir, 'link-signing-secret.txt');
    const first = ensureDevSecret(file);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(ensureDevSecret(file)).toBe(first);
    expect(ensureDevSecret(path.join(dir, 'other.txt'))).not.toBe(first);
    expect(loadConfig({ ...base, NODE_ENV: 'production', LINK_SIGNING_SECRET: first }).linkSecret).toBe(first);
  });
});

it('refuses outbound calls to private networks in every mode unless OUTBOUND_ALLOW_PRIVATE_NETWORKS=true', () => {
  for (const NODE_ENV of ['development', 'test', 'production']) {
    expect([NODE_ENV, loadConfig({ ...base, NODE_ENV, LINK_SIGNING_SECRET: SECRET }).outboundAllowPrivateNetworks]).toEqual([NODE_ENV, false]);
  }
  expect(loadConfig({ ...base, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }).outboundAllowPrivateNetworks).toBe(true);
  expect(() => loadConfig({ ...base, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'yes' })).toThrow(/OUTBOUND_ALLOW_PRIVATE_NETWORKS must be true or false/);
});

it('refuses a JWKS without an audience: the provider\'s tokens for other applications would be accepted', () => {
  expect(() => loadConfig({ ...base, JWT_JWKS_URL: 'https://idp.example/.well-known/jwks.json' })).toThrow(/JWT_JWKS_URL needs JWT_AUDIENCE/);
  expect(loadConfig({ ...base, JWT_JWKS_URL: 'https://idp.example/.well-known/jwks.json', JWT_AUDIENCE: 'https://api.docket.example' }).jwt)
    .toMatchObject({ jwksUrl: 'https://idp.example/.well-known/jwks.json', audience: 'https://api.docket.example' });
});

it('reads the JWT tenant allow-list, and warns about a shared secret without one', () => {
  expect(loadConfig({ ...base, JWT_TENANTS: 'acme, 1b0c5a3e-9d7e-4f51-8d3e-2f4b7a0c9e11' }).jwt.tenants).toEqual(['acme', '1b0c5a3e-9d7e-4f51-8d3e-2f4b7a0c9e11']);
  const prod = { ...base, NODE_ENV: 'production', LINK_SIGNING_SECRET: SECRET, JWT_SECRET: 'x'.repeat(32) };
  expect(loadConfig(prod).warnings).toEqual([expect.stringMatching(/JWT_SECRET is set without JWT_TENANTS/)]);
  expect(loadConfig({ ...prod, JWT_TENANTS: 'acme' }).warnings).toEqual([]);
});

it('reads the metrics port and token, refusing a clash with PORT and a short token', () => {
  expect(loadConfig(base).metrics).toEqual({ port: undefined, token: undefined });
  expect(loadConfig({ ...base, METRICS_PORT: '9464', METRICS_TOKEN: 'scrape-token-0123456789' }).metrics).toEqual({ port: 9464, token: 'scrape-token-0123456789' });
  expect(() => loadConfig({ ...base, METRICS_PORT: '3000' })).toThrow(/METRICS_PORT must differ from PORT/);
  expect(() => loadConfig({ ...base, METRICS_PORT: '70000' })).toThrow(/METRICS_PORT must be a port number/);
  expect(() => loadConfig({ ...base, METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN must be at least 16 characters/);
});

it('reads the rate limits and trusts no proxy by default', () => {
  expect(loadConfig(base).rateLimit).toEqual({ perMinute: 6000, syncMs: 1000, authFailuresPerMinute: 30, linksPerMinute: 30 });
  expect(loadConfig(base).trustProxyHops).toBe(0);
  expect(loadConfig({ ...base, RATE_LIMIT_SYNC_MS: '250', AUTH_FAILURE_LIMIT_PER_MINUTE: '5', LINK_LIMIT_PER_MINUTE: '0', TRUST_PROXY_HOPS: '1' })).toMatchObject({ rateLimit: { syncMs: 250, authFailuresPerMinute: 5, linksPerMinute: 0 }, trustProxyHops: 1 });
});
