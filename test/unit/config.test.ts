// Configuration is read once and fails fast, naming the variable at fault.
import { ConfigError, loadConfig } from '../../config';

const base = { DATABASE_URL: 'postgres://x@localhost/db', TEMPORAL_ADDRESS: 'localhost:7233' };

it('reads defaults', () => {
  const c = loadConfig(base);
  expect(c.port).toBe(3000);
  expect(c.temporal.namespace).toBe('default');
  expect(c.limits.uploadBytes).toBe(50 * 1024 * 1024);
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
