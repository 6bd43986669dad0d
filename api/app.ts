// createApp(deps) → a Koa app: request ids, problem+json, auth, permissions, then openapi-backend.
import { randomUUID } from 'node:crypto';
import cors from '@koa/cors';
import addFormats from 'ajv-formats';
import Koa from 'koa';
import helmet from 'koa-helmet';
import OpenAPIBackend, { Context as OpenApiContext, Document } from 'openapi-backend';
import getRawBody from 'raw-body';
import { Authenticator } from './auth';
import { BodyKind, Contract, loadContract, OperationInfo } from './contract';
import { CursorSeal } from './cursors';
import { ApiError, FieldError, permissionDenied, validationFailed } from '../lib/problems';
import { sendProblem, toApiError } from './errors';
import { withIdempotency } from './idempotency';
import { isDateTime, jsonTooDeep, MAX_JSON_DEPTH, unstorableTextErrors } from './input';
import { isUuid } from '../lib/uuid';
import { operationsRoutes } from './routes/operations';
import { sha256Hex } from '../lib/secrets';
import { AnyHandler, AppDeps, DocketState, Input, OperationId, RouteDeps } from './types';
import { Domain, DOMAINS } from '../domains';
import { mergeDeclared, UnionToIntersection } from '../domains/module';
import { RateDecision, SharedRateLimiter } from '../lib/rate-limit';


export interface DocketApp {
  app: Koa<DocketState>;
  api: OpenAPIBackend;
  contract: Contract;
  authenticator: Authenticator;
  /** Requests per credential, and failed authentications per client address (absent when turned off). */
  rateLimits: { perCredential?: SharedRateLimiter; authFailures?: SharedRateLimiter; links?: SharedRateLimiter };
  /** Stops the rate limiters' sync timers and the credential-change listener (before the database pool closes). */
  close(): Promise<void>;
}

interface AjvError { instancePath: string; message?: string; keyword: string; params: Record<string, unknown> }

function fieldErrors(errors: AjvError[] | null | undefined): FieldError[] {
  return (errors ?? []).map((e) => {
    let path = e.instancePath || '/';
    if (e.keyword === 'additionalProperties') path = `${e.instancePath}/${String(e.params.additionalProperty)}`;
    if (e.keyword === 'required') path = `${e.instancePath}/${String(e.params.missingProperty)}`;
    return { path, message: e.message ?? e.keyword };
  });
}

/** The request path as logged: a one-click link's token is a credential, so its segment is left out. */
export function loggedPath(path: string): string {
  return path.replace(/^(\/v1\/(?:approval-links|unsubscribe)\/)[^/]+/, '$1[redacted]');
}

export async function createApp(deps: AppDeps): Promise<DocketApp> {
  const contract = loadContract();
  const authenticator = new Authenticator(deps.config);
  let listenErrorLogged = 0;
  const credentialChanges = authenticator.watch(deps.config.databaseUrl, (err) => {
    if (Date.now() - listenErrorLogged < 60_000) return;
    listenErrorLogged = Date.now();
    deps.logger.warn({ err }, 'credential changes are not being heard from Postgres; other processes\' revocations take effect within 5 s meanwhile');
  });
  await credentialChanges.ready;
  const routeDeps: RouteDeps = { ...deps, authenticator, contract };
  // The API's own operations (health, docs …) and every domain's, as domains/index.ts lists them. The types
  // (HandledOperations below) make a missing handler a compile error; this check also covers a contract
  // edited without regenerating its types.
  const handlers = mergeDeclared<AnyHandler>('operation', [
    { domain: 'operations', declared: operationsRoutes(routeDeps) as unknown as Record<string, AnyHandler> },
    ...DOMAINS.flatMap((d) => ('routes' in d ? [{ domain: d.name, declared: d.routes(routeDeps) as unknown as Record<string, AnyHandler> }] : [])),
  ]);
  const byId = new Map(contract.operations.map((o) => [o.operationId, o]));
  const missing = contract.operations.filter((o) => !Object.hasOwn(handlers, o.operationId)).map((o) => o.operationId);
  if (missing.length) throw new Error(`openapi.yaml operations without a handler: ${missing.join(', ')}`);

  const api = new OpenAPIBackend({
    definition: contract.definition as unknown as Document,
    strict: true,
    // Validators compile on an operation's first request, not all at boot; openapi.yaml itself is
    // validated by a unit test (test/unit/contract.test.ts) instead of at every start.
    quick: true,
    validate: true,
    // Query and path parameters arrive as text; validation converts them to the contract's types (limit=20 → 20).
    coerceTypes: true,
    ajvOpts: { allErrors: true, strict: false },
    customizeAjv: (ajv) => {
      addFormats(ajv); // uuid, date-time, email … are checked, so a malformed id is a 400, never a database error
      // …and a date-time is one Postgres and JavaScript can both hold (years 0001–9999).
      ajv.addFormat('date-time', { type: 'string', validate: isDateTime });
      // …and a uuid is the bare form Postgres's uuid columns take: ajv-formats also accepts a `urn:uuid:` prefix,
      // which passed validation and then failed the query (a 500).
      ajv.addFormat('uuid', { type: 'string', validate: isUuid });
      return ajv;
    },
  });
  /** Operations allowed a larger body than JSON_BODY_LIMIT_BYTES. */
  const bodyLimits: Record<string, number> = { createDocumentBatch: deps.config.documents.batchBodyBytes };
  const { perMinute, authFailuresPerMinute, linksPerMinute, syncMs } = deps.config.rateLimit;
  let syncErrorLogged = 0;
  const onSyncError = (err: unknown) => {
    // Limits keep holding per process meanwhile; say so at most once a minute.
    if (Date.now() - syncErrorLogged < 60_000) return;
    syncErrorLogged = Date.now();
    deps.logger.warn({ err }, 'rate limit counters could not be shared through Postgres; limiting per process until it answers');
  };
  const limiterOf = (name: string, points: number) => (points > 0 ? new SharedRateLimiter({ sequelize: deps.sequelize, name, points, syncMs, onSyncError }) : undefined);
  const rateLimits = {
    perCredential: limiterOf('credential', perMinute), authFailures: limiterOf('auth-failures', authFailuresPerMinute), links: limiterOf('links', linksPerMinute),
  };
  const cursors = new CursorSeal(deps.config.linkSecret);

  /** Each operation's handler behind Idempotency-Key, where the contract marks the operation (x-idempotent). */
  const run: Record<string, AnyHandler> = {};
  for (const [operationId, handler] of Object.entries(handlers)) {
    run[operationId] = async (input, ctx) => {
      const op = byId.get(operationId)!;
      const state = ctx.state as DocketState;
      const key = ctx.get('idempotency-key');
      if (op.idempotent && key && state.auth) {
        await withIdempotency(ctx, { tenantId: state.auth.tenant.id, principal: state.auth.principal, operationId, key, ttlHours: deps.config.idempotencyTtlHours }, () => handler(input, ctx));
      } else {
        await handler(input, ctx);
      }
    };
  }
  // What openapi-backend answers itself: only unmatched paths and methods reach it (below).
  api.register({
    validationFail: async (c: OpenApiContext) => { throw validationFailed(fieldErrors(c.validation.errors as AjvError[])); },
    notFound: async (c: OpenApiContext) => { throw new ApiError(404, 'ROUTE_NOT_FOUND', `No route ${c.request.method.toUpperCase()} ${c.request.path}`); },
    methodNotAllowed: async (c: OpenApiContext, ctx: Koa.Context) => {
      const allowed = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((method) => api.router.matchOperation({ method, path: c.request.path, headers: {} }));
      throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${ctx.method} is not allowed here; use ${allowed.join(', ')}`, { headers: { Allow: allowed.join(', ') } });
    },
    notImplemented: async () => { throw new ApiError(501, 'NOT_IMPLEMENTED', 'This operation is not implemented yet'); },
    unauthorizedHandler: async () => { throw new ApiError(401, 'UNAUTHENTICATED', 'Credentials are required'); },
  });
  // Credentials were checked before validation (step 2 below); the contract's schemes only confirm it.
  for (const scheme of ['apiKey', 'bearer']) api.registerSecurityHandler(scheme, (_c, ctx: Koa.Context) => Boolean(ctx.state.auth));
  await api.init();
  // openapi-backend 5.21 rebuilds the whole operation list on every lookup, several times per request;
  // the definition never changes after init, so the list is computed once.
  const operations = api.router.getOperations();
  api.router.getOperations = () => operations;
  // A path without parameters is matched by a Map lookup: openapi-backend's matchOperation tries exact paths
  // first too, so a hit here is what it would answer; anything else (templated paths, a trailing slash,
  // unknown paths) still goes through it.
  const exactRoutes = new Map(operations.filter((o) => !o.path.includes('{')).map((o) => [`${o.method.toLowerCase()} ${o.path}`, o]));
  const matchOperation = (request: { method: string; path: string; headers: Record<string, string>; query: Record<string, string> }) =>
    exactRoutes.get(`${request.method.toLowerCase()} ${request.path}`) ?? api.router.matchOperation(request);
  // Helmet's headers do not depend on the request (no CSP nonces), so they are computed once and set from a
  // list; running helmet per request cost ~5 % of the API's CPU on GET /v1/me.
  const securityHeaders = await staticHeaders(helmet({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"], styleSrc: ["'self'", "'unsafe-inline'"], imgSrc: ["'self'", 'data:'],
        // Only where Docket is served over https: over plain http (e.g. an intranet host) it would send the
        // approval page's form to an https address that does not answer.
        upgradeInsecureRequests: deps.config.publicUrl.startsWith('https:') ? [] : null,
      },
    },
  }));
  // One histogram child per (operation, method, status): observing through a label object hashes the labels every time.
  const durationByLabels = new Map<string, ReturnType<typeof deps.metrics.httpDuration.labels>>();
  const observeDuration = (operation: string, method: string, status: number, seconds: number) => {
    const labelKey = `${operation} ${method} ${status}`;
    let child = durationByLabels.get(labelKey);
    if (!child) {
      child = deps.metrics.httpDuration.labels({ operation, method, status: String(status) });
      durationByLabels.set(labelKey, child);
    }
    child.observe(seconds);
  };
  const logRequests = () => deps.logger.isLevelEnabled('info');

  const app = new Koa<DocketState>();
  // X-Forwarded-For names the client only when it was set by proxies we trust (TRUST_PROXY_HOPS); otherwise
  // a client could claim any address and escape the failed-authentication limit.
  app.proxy = deps.config.trustProxyHops > 0;
  app.maxIpsCount = deps.config.trustProxyHops;
  app.silent = true;

  // 1. For every request, in one middleware (each layer costs a promise and a dispatch): request id, security
  // headers, anything thrown made problem+json (unexpected errors logged, never shown), then the log line and
  // the latency metric with the status as sent.
  app.use(async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    ctx.state.requestId = /^[A-Za-z0-9._:-]{1,100}$/.test(incoming) ? incoming : randomUUID();
    ctx.set('X-Request-Id', ctx.state.requestId);
    for (const [name, value] of securityHeaders) ctx.res.setHeader(name, value);
    const start = process.hrtime.bigint();
    try {
      await next();
    } catch (err) {
      const problem = toApiError(err);
      if (problem.status >= 500) deps.logger.error({ err, requestId: ctx.state.requestId }, 'unhandled error');
      deps.metrics.errors.inc({ code: problem.code });
      sendProblem(ctx, problem);
    } finally {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const operation = ctx.state.operationId ?? 'unmatched';
      observeDuration(operation, ctx.method, ctx.status, seconds);
      if (logRequests()) deps.logger.info({ requestId: ctx.state.requestId, method: ctx.method, path: loggedPath(ctx.path), operation, status: ctx.status, ms: Math.round(seconds * 1000) }, 'request');
    }
  });

  if (deps.config.cors.origins.length) {
    const allowed = new Set(deps.config.cors.origins);
    app.use(cors({
      origin: (ctx) => (allowed.has('*') || allowed.has(ctx.get('origin')) ? ctx.get('origin') : ''),
      exposeHeaders: ['ETag', 'Location', 'X-Request-Id', 'Retry-After', 'Idempotent-Replayed'],
      allowHeaders: ['Authorization', 'X-API-Key', 'Content-Type', 'If-Match', 'If-None-Match', 'Idempotency-Key', 'X-Request-Id'],
    }));
  }

  // 2. Match the operation; authenticate, rate-limit and check its permission before validating input.
  app.use(async (ctx) => {
    // A copy: the cursor is replaced by what it seals below, and Koa caches ctx.query.
    const query = { ...ctx.query } as Record<string, string>;
    const request = { method: ctx.method, path: ctx.path, headers: ctx.headers as Record<string, string>, query };
    const op = matchOperation(request);
    const info = op ? byId.get(op.operationId!) : undefined;
    if (info) {
      ctx.state.operationId = info.operationId;
      if (!info.public) {
        const auth = await authenticate(ctx);
        ctx.state.auth = auth;
        if (rateLimits.perCredential) refuseIfLimited(rateLimits.perCredential.consume(auth.principal), 'Too many requests');
        if (info.permission && !auth.permissions.has(info.permission)) {
          throw permissionDenied(`This needs the permission '${info.permission}'`, info.permission);
        }
      } else if (info.perLink && rateLimits.links) {
        // A signed link is its own credential: without a limit, one valid link could be replayed from anywhere as
        // fast as the API answers (each use reads the database; a confirm runs an Update). Counted per link, not per
        // address: one-click unsubscribes arrive from a mail provider's few servers for all its users. Counted once
        // the signature verifies (the handler calls it before any lookup), so made-up tokens add no counters.
        const links = rateLimits.links;
        (ctx.state as DocketState).countLinkUse = (token) => refuseIfLimited(links.consume(`link:${sha256Hex(token)}`), 'This link was used too often; try again in a minute');
      }
      // Most requests (GETs) carry no body: nothing to read, and no promise to wait for.
      ctx.state.body = info.body === 'streamed' || hasBody(ctx) ? await readBody(ctx, info.body, bodyLimits[info.operationId] ?? deps.config.limits.jsonBodyBytes) : undefined;
      refuseUnstorableText(info, ctx.path, query, ctx.state.body);
      if (typeof query.cursor === 'string') query.cursor = cursors.open(info.operationId, query.cursor);
    }
    const req = { ...request, body: ctx.state.body };
    if (!op || !info) {
      // Unknown path or method: openapi-backend's routing answers with the notFound / 405 handlers.
      await api.handleRequest(req, ctx);
      return;
    }
    // The operation is matched and the caller authorised above, so validate once against that
    // operation and call its handler directly: api.handleRequest() would parse the request three
    // times and route it again (~30 % of the CPU of a cheap request, see bench/README.md).
    // An operation without parameters or body (e.g. GET /v1/me) has nothing to validate or parse.
    const takesInput = Boolean(op.parameters?.length || op.requestBody);
    let input: Input<OperationId> | { params: Record<string, unknown>; query: Record<string, unknown>; body: unknown } = { params: {}, query: {}, body: undefined };
    if (takesInput) {
      const validation = api.validator.validateRequest(req, op);
      if (validation.errors) throw validationFailed(fieldErrors(validation.errors as AjvError[]));
      // The body as read above (parsed JSON, form fields, text); parameters as validated, in the contract's types.
      const { params, query: coerced } = validation.coerced ?? {};
      input = { params: params ?? {}, query: (coerced ?? {}) as Record<string, unknown>, body: ctx.state.body };
    }
    await run[info.operationId](input as Parameters<AnyHandler>[0], ctx);
    // Lists hand out cursors sealed for themselves (api/cursors.ts).
    const body = ctx.body as { nextCursor?: unknown } | null;
    if (body && typeof body === 'object' && typeof body.nextCursor === 'string') body.nextCursor = cursors.seal(info.operationId, body.nextCursor);
  });

  /**
   * The caller; an address with too many failed authentications this minute is refused before its
   * credential is looked up (a cached, valid credential still passes: it costs no lookup).
   */
  async function authenticate(ctx: Koa.Context) {
    const failures = rateLimits.authFailures;
    if (!failures) return authenticator.authenticate(ctx.headers);
    const address = `ip:${ctx.ip}`;
    try {
      return await authenticator.authenticate(ctx.headers, () => refuseIfLimited(failures.check(address), 'Too many failed authentications from this address'));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) failures.consume(address);
      throw err;
    }
  }

  return {
    app, api, contract, authenticator, rateLimits,
    async close() {
      await Promise.all([rateLimits.perCredential?.close(), rateLimits.authFailures?.close(), rateLimits.links?.close(), credentialChanges.close()]);
    },
  };
}

/** The headers a helmet middleware sets, read by running it once against a stand-in response. */
async function staticHeaders(middleware: Koa.Middleware): Promise<[string, string | number | readonly string[]][]> {
  const headers: [string, string | number | readonly string[]][] = [];
  const res = { setHeader: (name: string, value: string | number | readonly string[]) => { headers.push([name, value]); }, removeHeader: () => undefined };
  await middleware({ req: {}, res } as unknown as Koa.Context, async () => undefined);
  return headers;
}

function refuseIfLimited(decision: RateDecision, why: string): void {
  if (decision.allowed) return;
  const retryAfter = decision.retryAfterSeconds;
  throw new ApiError(429, 'RATE_LIMITED', `${why}; retry in ${retryAfter} s`, { headers: { 'Retry-After': String(retryAfter) } });
}

/**
 * NUL characters and unpaired surrogates anywhere in the input — path parameters, query, JSON (values and
 * keys), form fields, text bodies — are refused whole, naming where: Postgres cannot store them in text, and
 * quietly rewriting them would store something other than what was sent.
 */
function refuseUnstorableText(info: OperationInfo, path: string, query: Record<string, unknown>, body: unknown): void {
  const errors: FieldError[] = [];
  const template = info.path.includes('{') ? info.path.split('/') : [];
  if (template.length) path.split('/').forEach((segment, i) => {
    const name = /^\{(.+)\}$/.exec(template[i] ?? '')?.[1];
    if (!name) return;
    let value: string;
    try {
      value = decodeURIComponent(segment);
    } catch {
      errors.push({ path: `/path/${name}`, message: 'is not valid percent-encoded UTF-8' });
      return;
    }
    errors.push(...unstorableTextErrors(value, `/path/${name}`));
  });
  errors.push(...unstorableTextErrors(query, '/query'), ...unstorableTextErrors(body, '/requestBody'));
  if (errors.length) throw validationFailed(errors);
}

/** The request body as the operation's contract declares it (BodyKind in api/contract.ts). */
async function readBody(ctx: Koa.Context, kind: BodyKind, limit: number): Promise<unknown> {
  switch (kind) {
    // Read by its handler; the validator sees an empty form (binary parts are never schema-checked),
    // the handler checks the parts it needs.
    case 'streamed': return {};
    case 'form': return readFormBody(ctx, limit);
    case 'text': return readBodyText(ctx, limit, ['text/*'], 'text/plain');
    case 'json': return readJsonBody(ctx, limit);
  }
}

const hasBody = (ctx: Koa.Context) => ctx.request.length > 0 || ctx.get('transfer-encoding') !== '';

/** The body as text if there is one, after checking its media type; undefined when there is none. */
async function readBodyText(ctx: Koa.Context, limit: number, types: string[], expected: string): Promise<string | undefined> {
  if (!hasBody(ctx)) return undefined;
  if (!ctx.is(...types)) {
    throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `Send the body as ${expected}, not ${ctx.get('content-type') || 'an untyped body'}`);
  }
  return getRawBody(ctx.req, { limit, length: ctx.request.length, encoding: 'utf8' });
}

async function readFormBody(ctx: Koa.Context, limit: number): Promise<Record<string, string> | undefined> {
  const text = await readBodyText(ctx, limit, ['application/x-www-form-urlencoded'], 'application/x-www-form-urlencoded');
  return text === undefined ? undefined : Object.fromEntries(new URLSearchParams(text));
}

async function readJsonBody(ctx: Koa.Context, limit: number): Promise<unknown> {
  const text = await readBodyText(ctx, limit, ['application/json', 'application/*+json'], 'application/json');
  if (text === undefined || text.trim() === '') return undefined;
  if (jsonTooDeep(text)) throw validationFailed([{ path: '/requestBody', message: `is nested deeper than ${MAX_JSON_DEPTH} levels` }]);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'MALFORMED_JSON', `The body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Every operation some route module handles; an operation of openapi.yaml missing from it fails `npm run typecheck`. */
type HandledOperations = keyof (ReturnType<typeof operationsRoutes> & UnionToIntersection<ReturnType<Extract<Domain, { routes: unknown }>['routes']>>);
type Unhandled = Exclude<OperationId, HandledOperations>;
export const everyOperationHasAHandler: [Unhandled] extends [never] ? true : { operationsWithoutAHandler: Unhandled } = true;
