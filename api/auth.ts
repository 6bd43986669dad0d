// Authentication: API keys (dk_<prefix>_<secret>, stored hashed) and JWT bearer tokens (HS256 or JWKS).
import { timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, JWTPayload, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { ApiKey, Role, Tenant, User } from '../db/models/identity';
import { API_KEY_PATTERN } from '../domains/identity/keys';
import { listen, Listener } from '../lib/pg-listen';
import { sha256Hex } from '../lib/secrets';
import { Config } from '../config';
import { Actor } from '../lib/audit';
import { ApiError } from '../lib/problems';
import { PermissionSet } from '../domains/identity/permissions';

export interface AuthContext {
  tenant: Tenant;
  user: User;
  roles: string[];
  permissions: PermissionSet;
  method: 'api_key' | 'jwt';
  apiKeyId?: string;
  /** The credential, for what is counted or remembered per caller: `key:<api key id>` or `user:<user id>`. */
  principal: string;
  expiresAt: Date | null;
  actor: Actor;
}

const unauthenticated = () => new ApiError(401, 'UNAUTHENTICATED', 'Send an API key (X-API-Key) or a bearer token (Authorization: Bearer …)');
const invalid = (why: string) => new ApiError(401, 'INVALID_CREDENTIALS', why);

async function loadUser(tenantId: string, userId: string): Promise<{ user: User; tenant: Tenant } | null> {
  const user = await User.findOne({ where: { id: userId, tenantId }, include: [{ model: Role, as: 'roles', through: { attributes: [] } }] });
  if (!user || !user.active) return null;
  const tenant = await Tenant.findByPk(tenantId);
  return tenant ? { user, tenant } : null;
}

function rolePermissions(user: User): string[] {
  return [...new Set((user.roles ?? []).flatMap((r) => r.permissions))];
}

/** How long a credential's answer is reused: the revocation bound when change notifications are not arriving. */
export const CACHE_TTL_MS = 5_000;
const REFRESH_AHEAD_MS = 1_000;
/** Sent by Postgres on commit of any change to keys, users, roles or tenants (db/migrations/0026). */
export const CREDENTIALS_CHANNEL = 'docket_credentials';

export class Authenticator {
  // Credentials resolve to the same answer for a few seconds. A change to keys, users, roles or tenants made
  // by any process clears every API process's cache when its commit's NOTIFY arrives (watch()); should the
  // listening connection be down, the TTL still bounds how long a revoked key keeps working.
  private readonly cache = new LRUCache<string, AuthContext>({ max: 10_000, ttl: CACHE_TTL_MS });
  /** Keys whose last use was written within the minute (bounded: a process sees any number of keys over time). */
  private readonly lastUsedWrites = new LRUCache<string, true>({ max: 100_000, ttl: 60_000 });
  // When a cached credential expires, the requests in flight share one lookup instead of each running it.
  private readonly inflight = new Map<string, Promise<AuthContext>>();
  private jwks?: ReturnType<typeof createRemoteJWKSet>;
  /** Bumped by forget(): a lookup that started before it is answered but not cached (it may have read the old rows). */
  private generation = 0;

  constructor(private readonly config: Config) {
    if (config.jwt.jwksUrl) this.jwks = createRemoteJWKSet(new URL(config.jwt.jwksUrl));
  }

  /**
   * The caller of a request. `beforeLookup` runs when the answer is not cached, before any database or
   * key work: the failed-authentication limiter refuses a flooding address there.
   */
  async authenticate(headers: Record<string, string | string[] | undefined>, beforeLookup?: () => void): Promise<AuthContext> {
    const token = extractToken(headers);
    const cacheKey = sha256Hex(token);
    const cached = this.cache.get(cacheKey);
    if (cached && (!cached.expiresAt || cached.expiresAt > new Date())) {
      this.touch(cached);
      if (this.cache.getRemainingTTL(cacheKey) < this.refreshAheadMs()) this.refresh(cacheKey, token);
      return cached;
    }
    beforeLookup?.();
    const auth = await this.lookup(cacheKey, token);
    this.touch(auth);
    return auth;
  }

  /** One lookup per credential at a time (single flight); its answer replaces the cached one. */
  private lookup(cacheKey: string, token: string): Promise<AuthContext> {
    let pending = this.inflight.get(cacheKey);
    if (!pending) {
      const generation = this.generation;
      pending = (token.startsWith('dk_') ? this.fromApiKey(token) : this.fromJwt(token))
        .then((auth) => { if (generation === this.generation) this.cache.set(cacheKey, auth); return auth; })
        .finally(() => this.inflight.delete(cacheKey));
      this.inflight.set(cacheKey, pending);
    }
    return pending;
  }

  /**
   * Refresh ahead: a credential in use is looked up again in the background in the last part of its TTL, so
   * no request waits for the lookup; the hard TTL (the revocation bound for other replicas) is unchanged.
   * Without it, keys first used together expired together and their next requests all queued on the database
   * at once (1,000 keys round robin: p99 79–121 ms against ~10 ms, bench/README.md foundation). A refresh that
   * fails (revoked, expired, owner deactivated) drops the entry: the next request looks up and gets the 401.
   */
  private refresh(cacheKey: string, token: string): void {
    if (this.inflight.has(cacheKey)) return;
    this.lookup(cacheKey, token).catch(() => { this.cache.delete(cacheKey); });
  }

  /** 1–2 s before expiry, spread so entries cached together do not all refresh on the same request. */
  private refreshAheadMs(): number {
    return REFRESH_AHEAD_MS * (1 + Math.random());
  }

  /** Drops every cached credential (after a revocation, a role or user change). */
  forget(): void {
    this.generation++;
    this.cache.clear();
  }

  /**
   * Clears the cache on every credential change any process commits (NOTIFY docket_credentials), and whenever
   * the listening connection is lost or re-established (a notification may have been missed then).
   */
  watch(databaseUrl: string, onError?: (err: unknown) => void): Listener {
    return listen({
      databaseUrl, channel: CREDENTIALS_CHANNEL, applicationName: 'docket-api-credentials',
      onNotify: () => this.forget(), onGap: () => this.forget(), onError,
    });
  }

  private async fromApiKey(token: string): Promise<AuthContext> {
    const m = API_KEY_PATTERN.exec(token);
    if (!m) throw invalid('Malformed API key');
    const key = await ApiKey.findOne({ where: { prefix: m[1] } });
    const given = Buffer.from(sha256Hex(m[2]), 'hex');
    const matches = (hash: string | null | undefined) => timingSafeEqual(hash ? Buffer.from(hash, 'hex') : Buffer.alloc(32), given);
    // The current secret, or the one its last rotation replaced (both compared, so the time taken tells nothing).
    const current = matches(key?.secretHash);
    const replaced = matches(key?.previousSecretHash);
    if (!key || (!current && !replaced)) throw invalid('Unknown API key');
    if (key.revokedAt) throw new ApiError(401, 'CREDENTIALS_REVOKED', 'This API key was revoked');
    const now = new Date();
    if (key.expiresAt && key.expiresAt <= now) throw new ApiError(401, 'CREDENTIALS_EXPIRED', 'This API key has expired');
    // A replaced secret is cached only until its overlap ends.
    let expiresAt = key.expiresAt;
    if (!current) {
      const until = key.previousValidUntil;
      if (!until || until <= now) throw new ApiError(401, 'CREDENTIALS_EXPIRED', "This API key's secret was replaced (rotated) and no longer works");
      if (!expiresAt || until < expiresAt) expiresAt = until;
    }
    const found = await loadUser(key.tenantId, key.userId);
    if (!found) throw invalid('The owner of this API key is inactive');
    return {
      ...found, roles: (found.user.roles ?? []).map((r) => r.key),
      permissions: new PermissionSet(rolePermissions(found.user), key.scopes),
      method: 'api_key', apiKeyId: key.id, principal: `key:${key.id}`, expiresAt, actor: { type: 'api_key', id: key.id },
    };
  }

  private async fromJwt(token: string): Promise<AuthContext> {
    const { secret, jwksUrl, audience, issuer, tenants } = this.config.jwt;
    if (!secret && !jwksUrl) throw invalid('JWT authentication is not configured');
    let payload: JWTPayload;
    try {
      // A token without exp would be valid forever: refused.
      const opts = { audience, issuer, requiredClaims: ['exp'], algorithms: secret ? ['HS256'] : ['RS256', 'ES256', 'PS256', 'EdDSA'] };
      ({ payload } = secret
        ? await jwtVerify(token, new TextEncoder().encode(secret), opts)
        : await jwtVerify(token, this.jwks!, opts));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new ApiError(401, 'CREDENTIALS_EXPIRED', 'The token has expired');
      throw invalid(`Invalid token: ${(err as Error).message}`);
    }
    const tenantId = payload.tid ?? payload.tenant_id;
    if (typeof payload.sub !== 'string' || typeof tenantId !== 'string') throw invalid('The token needs the claims sub (user id) and tid (tenant id)');
    const scope = tokenScope(payload.scope);
    const found = await loadUser(tenantId, payload.sub).catch(() => null);
    if (!found) throw invalid('Unknown or inactive user');
    if (tenants.length && !tenants.includes(found.tenant.id) && !tenants.includes(found.tenant.slug)) {
      throw invalid('Tokens are not accepted for this tenant (JWT_TENANTS)');
    }
    return {
      ...found, roles: (found.user.roles ?? []).map((r) => r.key),
      permissions: new PermissionSet(rolePermissions(found.user), scope),
      method: 'jwt', principal: `user:${found.user.id}`, expiresAt: new Date(payload.exp! * 1000), actor: { type: 'user', id: found.user.id },
    };
  }

  /** Records last use of a key at most once a minute, off the request path. */
  private touch(auth: AuthContext): void {
    if (!auth.apiKeyId) return;
    if (this.lastUsedWrites.has(auth.apiKeyId)) return;
    this.lastUsedWrites.set(auth.apiKeyId, true);
    // silent: a use is not an edit of the key (updated_at stays when it was last changed).
    ApiKey.update({ lastUsedAt: new Date() }, { where: { id: auth.apiKeyId }, silent: true }).catch(() => undefined);
  }
}

/**
 * The `scope` claim narrows the token: a space-separated string (RFC 8693) or an array of names. Any other
 * shape is refused rather than ignored, since an ignored scope would grant all the user's permissions.
 */
function tokenScope(claim: unknown): string[] | null {
  if (claim === undefined) return null;
  if (typeof claim === 'string') return claim.split(' ').filter(Boolean);
  if (Array.isArray(claim) && claim.every((s) => typeof s === 'string')) return claim.flatMap((s: string) => s.split(' ')).filter(Boolean);
  throw invalid('The scope claim must be a space-separated string or an array of strings');
}

/**
 * The one credential of a request. A credential that is present counts even when it is bad: an invalid
 * X-API-Key beside a valid bearer token (or the other way round), or two different credentials, answer
 * 401 instead of one being silently preferred. The same key sent in both headers is one credential.
 */
function extractToken(headers: Record<string, string | string[] | undefined>): string {
  const found: string[] = [];
  const apiKey = headers['x-api-key'];
  if (apiKey !== undefined) {
    const value = (Array.isArray(apiKey) ? apiKey.join(',') : apiKey).trim();
    if (!value) throw invalid('X-API-Key is empty');
    found.push(value);
  }
  const authz = headers.authorization;
  if (authz !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(String(authz).trim());
    if (!m) throw invalid('Authorization must be "Bearer <API key or token>"');
    found.push(m[1]);
  }
  if (!found.length) throw unauthenticated();
  if (found.length === 2 && found[0] !== found[1]) throw invalid('Send one credential: X-API-Key and Authorization carry different ones');
  return found[0];
}
