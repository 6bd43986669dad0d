// Signed, expiring action links (e.g. "approve from the email without logging in").
//
// A token proves who may do what to which subject until when; it does not prove it has not been
// used. Single use is the caller's job: record the claims' nonce (linkNonceKey) in the database in
// the same transaction as the action, under a unique constraint, and refuse a nonce already there.
// Rows may be purged once their exp has passed, since an expired token is refused here anyway.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long an emailed link is valid (hours): a used link's nonce must be kept at least this long after its use. */
export const LINK_TTL_HOURS = 72;

export interface LinkClaims {
  tenantId: string;
  subjectType: string;
  subjectId: string;
  userId: string;
  action: string;
  stage?: number;
  nonce: string;
  /** Unix seconds; the token is refused from this second on. */
  exp: number;
}

export type LinkErrorCode = 'LINK_INVALID' | 'LINK_EXPIRED';

export class LinkError extends Error {
  override readonly name = 'LinkError';
  constructor(
    readonly code: LinkErrorCode,
    message: string,
  ) {
    super(message);
  }
}

// HMAC-SHA256 keys shorter than this are guessable offline from a single leaked link.
const MIN_SECRET_LENGTH = 32;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

function checkSecret(secret: string): void {
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
    throw new Error(`link secret must be at least ${MIN_SECRET_LENGTH} characters`);
  }
}

function sign(payloadPart: string, secret: string): string {
  return createHmac('sha256', secret).update(payloadPart).digest('base64url');
}

export function signLink(
  input: Omit<LinkClaims, 'nonce' | 'exp'> & { ttlSeconds: number; now?: Date },
  secret: string,
): { token: string; claims: LinkClaims } {
  checkSecret(secret);
  if (!Number.isFinite(input.ttlSeconds) || input.ttlSeconds <= 0) throw new RangeError('ttlSeconds must be a positive number');
  const nowSeconds = Math.floor((input.now ?? new Date()).getTime() / 1000);
  // Built field by field so nothing else the caller passed (ttlSeconds, now, extras) leaks into the token.
  const claims: LinkClaims = {
    tenantId: input.tenantId,
    subjectType: input.subjectType,
    subjectId: input.subjectId,
    userId: input.userId,
    action: input.action,
    ...(input.stage === undefined ? {} : { stage: input.stage }),
    nonce: randomBytes(16).toString('base64url'),
    exp: nowSeconds + Math.ceil(input.ttlSeconds),
  };
  const payloadPart = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return { token: `${payloadPart}.${sign(payloadPart, secret)}`, claims };
}

function parseClaims(payloadPart: string): LinkClaims {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    throw new LinkError('LINK_INVALID', 'link payload is not JSON');
  }
  const c = raw as Record<string, unknown>;
  const strings = ['tenantId', 'subjectType', 'subjectId', 'userId', 'action', 'nonce'] as const;
  if (
    typeof raw !== 'object' || raw === null || Array.isArray(raw)
    || strings.some((k) => typeof c[k] !== 'string' || c[k] === '')
    || !Number.isInteger(c.exp)
    || (c.stage !== undefined && !Number.isInteger(c.stage))
  ) {
    throw new LinkError('LINK_INVALID', 'link claims are malformed');
  }
  return {
    tenantId: c.tenantId as string,
    subjectType: c.subjectType as string,
    subjectId: c.subjectId as string,
    userId: c.userId as string,
    action: c.action as string,
    ...(c.stage === undefined ? {} : { stage: c.stage as number }),
    nonce: c.nonce as string,
    exp: c.exp as number,
  };
}

/** Returns the claims of a genuine, unexpired token; does not check (or record) single use. */
export function verifyLink(token: string, secret: string, now = new Date()): LinkClaims {
  checkSecret(secret);
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 2 || !BASE64URL.test(parts[0]) || !BASE64URL.test(parts[1])) {
    throw new LinkError('LINK_INVALID', 'link token is malformed');
  }
  const [payloadPart, signaturePart] = parts;
  // Compared as text, not decoded bytes: base64url decoding ignores the spare bits of the last
  // character, so several spellings decode to the same signature and would all pass a byte check.
  const expected = Buffer.from(sign(payloadPart, secret));
  const given = Buffer.from(signaturePart);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new LinkError('LINK_INVALID', 'link signature does not match');
  }
  const claims = parseClaims(payloadPart);
  if (now.getTime() >= claims.exp * 1000) throw new LinkError('LINK_EXPIRED', 'link has expired');
  return claims;
}

/** The key under which a caller records a used link; one per token, the same for every copy of it. */
export function linkNonceKey(claims: Pick<LinkClaims, 'nonce'>): string {
  return `link:${claims.nonce}`;
}
