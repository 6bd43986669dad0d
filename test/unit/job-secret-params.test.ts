// An http job's header values: sealed when given, "***" keeping a stored one, shown as "***", opened for the job only,
// scrubbed from what the job records; other job types' params untouched.
import { checkJobParams, JobParamsError } from '../../domains/jobs/job-types';
import { openJobParams, plainHeaderNames, redactJobParams, resealJobParams, scrubSecrets, sealJobParams, secretValues } from '../../domains/jobs/secret-params';
import { sealSecret, secretsKey } from '../../lib/secrets';

const key = secretsKey('b'.repeat(64), 'x');
const params = { url: 'https://api.example.com/hook', headers: { Authorization: 'Bearer token-123456789', 'X-Trace': 'abc' } };

test('sealed when given, opened for the job, shown as "***"', () => {
  const sealed = sealJobParams('http', params, key);
  expect(sealed).toEqual({ url: params.url, headers: { Authorization: expect.stringMatching(/^enc:v1:/), 'X-Trace': expect.stringMatching(/^enc:v1:/) } });
  expect(openJobParams('http', sealed, key)).toEqual(params);
  expect(redactJobParams('http', sealed)).toEqual({ url: params.url, headers: { Authorization: '***', 'X-Trace': '***' } });
  // A value that looks sealed, given by a caller, is sealed like any other: it is sent as given, never opened.
  const looksSealed = sealSecret('someone else\'s secret', key);
  expect(openJobParams('http', sealJobParams('http', { ...params, headers: { A: looksSealed } }, key), key)).toEqual({ ...params, headers: { A: looksSealed } });
  // Sealed values of any length pass the check (their plain value was checked), as do plain ones.
  checkJobParams('http', sealJobParams('http', { ...params, headers: { A: 'é'.repeat(2000) } }, key));
  // Other job types are left alone.
  expect(sealJobParams('audit.retention_purge', { olderThanDays: 3 }, key)).toEqual({ olderThanDays: 3 });
});

test('"***" keeps the stored value of the header of that name (any case); without one it is refused', () => {
  const stored = { jobType: 'http', params: sealJobParams('http', params, key) };
  const kept = sealJobParams('http', { ...params, headers: { authorization: '***', 'X-Trace': 'new' } }, key, stored);
  expect(kept.headers).toEqual({ authorization: (stored.params.headers as Record<string, string>).Authorization, 'X-Trace': expect.stringMatching(/^enc:v1:/) });
  expect(openJobParams('http', kept, key).headers).toEqual({ authorization: params.headers.Authorization, 'X-Trace': 'new' });
  expect(() => sealJobParams('http', { ...params, headers: { Other: '***' } }, key, stored)).toThrow(JobParamsError);
  expect(() => sealJobParams('http', { ...params, headers: { Authorization: '***' } }, key)).toThrow(/params\.headers\.Authorization/);
  // A stored value from before sealing is sealed when kept.
  const legacy = { jobType: 'http', params };
  expect(sealJobParams('http', { ...params, headers: { Authorization: '***' } }, key, legacy).headers).toEqual({ Authorization: expect.stringMatching(/^enc:v1:/) });
  expect(resealJobParams('http', params, key).headers).toEqual({ Authorization: expect.stringMatching(/^enc:v1:/), 'X-Trace': expect.stringMatching(/^enc:v1:/) });
  // Values stored before sealing are used as they are.
  expect(openJobParams('http', params, key)).toEqual(params);
});

test('names the headers whose stored value is still plain (what the backfill seals), and only an http job\'s', () => {
  expect(plainHeaderNames('http', params)).toEqual(['Authorization', 'X-Trace']);
  expect(plainHeaderNames('http', resealJobParams('http', params, key))).toEqual([]);
  const mixed = { ...params, headers: { ...resealJobParams('http', params, key).headers as object, Accept: 'json', 'X-Count': 3 } };
  expect(plainHeaderNames('http', mixed)).toEqual(['Accept']);
  expect(plainHeaderNames('http', { url: params.url })).toEqual([]);
  expect(plainHeaderNames('audit.retention_purge', params)).toEqual([]);
});

test('a value that cannot be opened, or that fetch() would refuse, is named without being shown', () => {
  const sealed = sealJobParams('http', params, key);
  expect(() => openJobParams('http', sealed, secretsKey('c'.repeat(64), 'x'))).toThrow(/^params\.headers\.Authorization: its sealed value cannot be opened/);
  for (const headers of [{ Authorization: 'Bearer a\r\nX-Injected: 1' }, { Authorization: 'Bearer \u20ac' }, { 'Bad Name': 'Bearer secret' }]) {
    let message = '';
    try {
      checkJobParams('http', { ...params, headers });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^params\.headers/);
    expect(message).not.toContain('Bearer');
  }
});

test('an answer echoing a header has its value, and the credentials after its scheme, replaced', () => {
  const secrets = secretValues('http', params);
  expect(secrets).toEqual(['Bearer token-123456789', 'token-123456789']);
  expect(scrubSecrets('got Bearer token-123456789 and token-123456789 and abc', secrets)).toBe('got *** and *** and abc');
});
