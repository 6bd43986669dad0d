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
