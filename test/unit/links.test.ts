// Action links: only an untampered, unexpired token signed with our secret yields its claims.
import { createHmac } from 'node:crypto';
import { LinkError, linkNonceKey, signLink, verifyLink } from '../../domains/approvals/links';

const SECRET = 'unit-test-link-secret-0123456789abcdef';
const NOW = new Date('2026-11-23T10:00:00Z');
const base = { tenantId: 't-1', subjectType: 'approval', subjectId: 'a-42', userId: 'u-7', action: 'approve', stage: 2 };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof LinkError) return err.code;
    throw err;
  }
  return undefined;
}

// Replaces one character with a different base64url character.
function flip(s: string, i: number): string {
  return s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
}

it('round-trips: the verified claims are exactly the signed ones', () => {
  const { token, claims } = signLink({ ...base, ttlSeconds: 3600, now: NOW }, SECRET);
  expect(claims).toEqual({ ...base, nonce: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/), exp: NOW.getTime() / 1000 + 3600 });
  expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  expect(verifyLink(token, SECRET, new Date(NOW.getTime() + 1000))).toEqual(claims);
});

it('keeps only the claims in the token, and leaves stage out when not given', () => {
  const noStage: Partial<typeof base> = { ...base };
  delete noStage.stage;
  const { token, claims } = signLink({ ...noStage, ttlSeconds: 60, now: NOW, extra: 'x' } as unknown as Parameters<typeof signLink>[0], SECRET);
  const payload = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
  expect(Object.keys(payload).sort()).toEqual(['action', 'exp', 'nonce', 'subjectId', 'subjectType', 'tenantId', 'userId']);
  expect(verifyLink(token, SECRET, NOW)).toEqual(claims);
  expect('stage' in claims).toBe(false);
});

it('gives every link its own nonce, and the nonce key is stable for one link', () => {
  const a = signLink({ ...base, ttlSeconds: 60, now: NOW }, SECRET);
  const b = signLink({ ...base, ttlSeconds: 60, now: NOW }, SECRET);
  expect(a.claims.nonce).not.toBe(b.claims.nonce);
  expect(linkNonceKey(verifyLink(a.token, SECRET, NOW))).toBe(linkNonceKey(a.claims));
  expect(linkNonceKey(a.claims)).not.toBe(linkNonceKey(b.claims));
});

it('refuses a tampered payload, even one re-encoded with changed claims', () => {
  const { token } = signLink({ ...base, ttlSeconds: 60, now: NOW }, SECRET);
  const [payload, sig] = token.split('.');
  expect(codeOf(() => verifyLink(`${flip(payload, 5)}.${sig}`, SECRET, NOW))).toBe('LINK_INVALID');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  const forged = Buffer.from(JSON.stringify({ ...claims, userId: 'u-attacker' })).toString('base64url');
  expect(codeOf(() => verifyLink(`${forged}.${sig}`, SECRET, NOW))).toBe('LINK_INVALID');
});

it('refuses a tampered signature, including a different spelling of the same signature bytes', () => {
  const { token } = signLink({ ...base, ttlSeconds: 60, now: NOW }, SECRET);
  const [payload, sig] = token.split('.');
  expect(codeOf(() => verifyLink(`${payload}.${flip(sig, 10)}`, SECRET, NOW))).toBe('LINK_INVALID');
  // 43 characters carry 258 bits for a 256-bit MAC: the last character's low 2 bits are ignored on decode.
  const last = sig[sig.length - 1];
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const sibling = alphabet[alphabet.indexOf(last) ^ 1];
  const respelled = sig.slice(0, -1) + sibling;
  expect(Buffer.from(respelled, 'base64url').equals(Buffer.from(sig, 'base64url'))).toBe(true);
  expect(codeOf(() => verifyLink(`${payload}.${respelled}`, SECRET, NOW))).toBe('LINK_INVALID');
});

it('refuses a token signed with another secret', () => {
  const { token } = signLink({ ...base, ttlSeconds: 60, now: NOW }, 'another-secret-another-secret-123456');
  expect(codeOf(() => verifyLink(token, SECRET, NOW))).toBe('LINK_INVALID');
});

it.each([
  ['empty', ''],
  ['no separator', 'abc'],
  ['three parts', 'a.b.c'],
  ['empty signature', 'abc.'],
  ['non-base64url characters', 'ab+c.de/f'],
])('refuses a malformed token (%s)', (_what, token) => {
  expect(codeOf(() => verifyLink(token, SECRET, NOW))).toBe('LINK_INVALID');
});

it('refuses correctly signed but malformed claims', () => {
  const sign = (obj: unknown) => {
    const p = Buffer.from(JSON.stringify(obj)).toString('base64url');
    return `${p}.${createHmac('sha256', SECRET).update(p).digest('base64url')}`;
  };
  const good = signLink({ ...base, ttlSeconds: 60, now: NOW }, SECRET).claims;
  expect(verifyLink(sign(good), SECRET, NOW)).toEqual(good);
  expect(codeOf(() => verifyLink(sign({ ...good, exp: String(good.exp) }), SECRET, NOW))).toBe('LINK_INVALID');
  expect(codeOf(() => verifyLink(sign({ ...good, userId: '' }), SECRET, NOW))).toBe('LINK_INVALID');
  expect(codeOf(() => verifyLink(sign([good]), SECRET, NOW))).toBe('LINK_INVALID');
});

it('expires at exp: valid the second before, LINK_EXPIRED from then on', () => {
  const { token, claims } = signLink({ ...base, ttlSeconds: 600, now: NOW }, SECRET);
  expect(verifyLink(token, SECRET, new Date(claims.exp * 1000 - 1))).toEqual(claims);
  expect(codeOf(() => verifyLink(token, SECRET, new Date(claims.exp * 1000)))).toBe('LINK_EXPIRED');
  expect(codeOf(() => verifyLink(token, SECRET, new Date(NOW.getTime() + 86_400_000)))).toBe('LINK_EXPIRED');
});

it('reports a bad signature rather than expiry for an expired forgery', () => {
  const { token } = signLink({ ...base, ttlSeconds: 1, now: NOW }, 'another-secret-another-secret-123456');
  expect(codeOf(() => verifyLink(token, SECRET, new Date(NOW.getTime() + 60_000)))).toBe('LINK_INVALID');
});

it('refuses a short secret and a non-positive ttl', () => {
  expect(() => signLink({ ...base, ttlSeconds: 60 }, 'short')).toThrow(/at least 32/);
  expect(() => verifyLink('a.b', 'short')).toThrow(/at least 32/);
  expect(() => signLink({ ...base, ttlSeconds: 0 }, SECRET)).toThrow(RangeError);
});
