// The environment, read and validated once at boot into one typed object.
import { isIP, isIPv4 } from 'node:net';
import path from 'node:path';
import { PROJECT_ROOT } from './lib/paths';
import { secretsKey } from './lib/secrets';

export interface Config {
  env: 'development' | 'test' | 'production';
  port: number;
  host: string;
  /** Unset in development: scripts/dev.ts starts an embedded Postgres and sets it. */
  databaseUrl: string;
  temporal: { address: string; namespace: string };
  /** Task queues this worker process serves (WORKER_QUEUES=audit,files …); empty = all. */
  workerQueues: string[];
  /**
   * Workflows each queue's worker keeps in memory between tasks (the sticky cache); 0 = the SDK's default,
   * which is sized from the heap limit (~2,200 on a 4 GB heap) and took a worker past 1.2 GB with thousands of
   * open approval flows; 250 kept it at ~630 MB with 10,000 open (bench/README.md, suite approvals).
   */
  workerMaxCachedWorkflows: number;
  dataDir: string;
  /** The disk store's folder; with FILE_STORE=s3, only the local scratch folder for partial files (its `tmp/`). */
  fileStoreDir: string;
  /** Where file bytes live: the disk (default, one machine) or an S3-compatible bucket (several hosts). */
  fileStore: FileStoreConfig;
  limits: { jsonBodyBytes: number; uploadBytes: number };
  /**
   * perMinute: requests per minute per API key (or JWT user), counted in each process and reconciled with
   * the other API processes through Postgres every syncMs; authFailuresPerMinute: failed authentications
   * per client address before that address is refused (429) without looking credentials up;
   * linksPerMinute: uses of one signed link (approve/reject, unsubscribe) per minute: those operations need
   * no credential and so have no other limit.
   */
  rateLimit: { perMinute: number; syncMs: number; authFailuresPerMinute: number; linksPerMinute: number };
  /** Reverse proxies in front of the API whose X-Forwarded-For is trusted (0: the socket's address is the client). */
  trustProxyHops: number;
  cors: { origins: string[] };
  /** `tenants`: tenant ids or slugs allowed to sign in with a JWT (empty: every tenant). */
  jwt: { secret?: string; jwksUrl?: string; audience?: string; issuer?: string; tenants: string[] };
  /** /metrics on its own port (then not on the API's), and/or behind a bearer token. */
  metrics: { port?: number; token?: string };
  logLevel: string;
  /** Email (SMTP_URL unset: messages are logged, not sent) and the links they carry. */
  mail: { smtpUrl?: string; from: string };
  publicUrl: string;
  linkSecret: string;
  /** Things an operator must hear at boot (the built-in development link secret, an unrestricted JWT secret). */
  warnings: string[];
  /** Encrypts secrets kept at rest (webhook secrets): SECRETS_KEY, or derived from the link secret. */
  secretsKey: Buffer;
  /** Audit export paging: rows per page, and an optional pause between pages to spare the database. */
  auditExport: { pageSize: number; pagePauseMs: number };
  /** Segments: each statement of a preview (count, sample) is cancelled by Postgres past this budget (422 SEGMENT_TOO_EXPENSIVE). */
  segments: { previewBudgetMs: number };
  /**
   * Imports: the largest file accepted (413 above it), the most bytes an XLSX may unpack to (zip bombs fail with
   * FILE_TOO_LARGE), how long one staging/merging activity runs before the workflow's pause point (an XLSX's
   * staging: `xlsxChunkMs`, as each new activity re-reads the workbook from its start), rows per committed staging
   * chunk, staged rows per merge transaction and merge transactions at once.
   */
  imports: { maxFileBytes: number; maxUncompressedBytes: number; revertWaitMs: number; chunkMs: number; xlsxChunkMs: number; stageRows: number; mergeRows: number; mergeConcurrency: number };
  /**
   * Campaigns: recipients per batch (outcomes written per batch: the most that can go out twice after a crash),
   * messages in flight per worker (and pooled SMTP connections), how long one send chunk runs before the
   * workflow's pause/cancel point, and an optional mailto: address for List-Unsubscribe. `snapshotTimeoutMs`: the
   * statement_timeout of the audience snapshot's statements (past it the campaign fails with SNAPSHOT_TIMEOUT).
   */
  campaigns: { batchSize: number; concurrency: number; chunkMs: number; lanes: number; snapshotTimeoutMs: number; unsubscribeMailto?: string };
  /**
   * Sender domains (SENDER_DOMAINS): `verified`, the default, lets a campaign send From only a domain its tenant has
   * proven it controls (or a subdomain of one); `any` lets any From through (a deployment for one organisation).
   * `dnsServers` (DNS_SERVERS, ip or ip:port, IPv6 as [ip]:port): the resolvers a verification asks (empty: the
   * system's); `dnsTimeoutMs` (DNS_TIMEOUT_MS): how long it waits for them before answering 503.
   */
  senderDomains: { mode: 'verified' | 'any'; dnsServers: string[]; dnsTimeoutMs: number };
  /** Idempotency keys older than this are forgotten (a housekeeping job purges them). */
  idempotencyTtlHours: number;
  /** PDF rendering in the worker: Chromium binary, pages in the pool, deadline per render, batch chunk size. */
  documents: { chromiumPath: string; poolSize: number; renderTimeoutMs: number; batchChunkSize: number; batchBodyBytes: number };
  /** Per-attempt timeout of a webhook delivery (reminders' webhook channel, the http job). */
  webhookTimeoutMs: number;
  /** Webhooks and http jobs may call private/loopback addresses (off unless OUTBOUND_ALLOW_PRIVATE_NETWORKS=true). */
  outboundAllowPrivateNetworks: boolean;
  /**
   * Webhook endpoints: how often a tenant's relay reads the outbox, and each delivery's retry schedule (first retry
   * after initialMs, doubling up to maxMs, given up — `dead` — after giveUpMs). An endpoint whose every attempt
   * has failed for autoDisableAfterMs is disabled and its tenant's administrators told.
   */
  webhooks: { relayEveryMs: number; retryInitialMs: number; retryMaxMs: number; giveUpMs: number; autoDisableAfterMs: number };
  /** How old a start intent must be before the start reconciler acts on it (the API's own start comes first). */
  reconcileStartsGraceSeconds: number;
  /** How often the start reconciler's Schedule runs (workers serving the `system` queue keep it so at boot). */
  reconcileStartsEverySeconds: number;
}

export type FileStoreConfig =
  | { kind: 'disk' }
  | { kind: 's3'; bucket: string; region: string; endpoint?: string; accessKeyId?: string; secretAccessKey?: string; forcePathStyle: boolean };

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw !== 'true' && raw !== 'false') throw new ConfigError(`${name} must be true or false, got "${raw}"`);
  return raw === 'true';
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new ConfigError(`${name} is required (see README: Configuration)`);
  return v;
}

function list(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

export const DEVELOPMENT_LINK_SECRET = 'docket-development-link-signing-secret-not-for-production';

/**
 * Signs one-click email links. The built-in value is public (it is in this file), so it is only taken when
 * NODE_ENV says development or test explicitly: a deployment that forgot NODE_ENV must not sign with it.
 */
function linkSecret(env: NodeJS.ProcessEnv): { secret: string; builtIn: boolean } {
  const secret = env.LINK_SIGNING_SECRET;
  if (secret) {
    if (secret.length < 32) throw new ConfigError('LINK_SIGNING_SECRET must be at least 32 characters');
    return { secret, builtIn: false };
  }
  if (env.NODE_ENV !== 'development' && env.NODE_ENV !== 'test') {
    throw new ConfigError(`LINK_SIGNING_SECRET is required (32+ characters, e.g. \`openssl rand -hex 32\`) unless NODE_ENV=development; NODE_ENV is ${env.NODE_ENV ? `"${env.NODE_ENV}"` : 'unset'} (see README: Configuration)`);
  }
  return { secret: DEVELOPMENT_LINK_SECRET, builtIn: true };
}

function optionalPort(env: NodeJS.ProcessEnv, name: string): number | undefined {
  if (!env[name]) return undefined;
  const port = int(env, name, 0);
  if (port < 1 || port > 65535) throw new ConfigError(`${name} must be a port number (1-65535), got "${env[name]}"`);
  return port;
}

function configSecretsKey(env: NodeJS.ProcessEnv, link: string): Buffer {
  try {
    return secretsKey(env.SECRETS_KEY || undefined, link);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

function fileStore(env: NodeJS.ProcessEnv): FileStoreConfig {
  const kind = env.FILE_STORE || 'disk';
  if (kind === 'disk') return { kind };
  if (kind !== 's3') throw new ConfigError(`FILE_STORE must be disk or s3, got "${kind}"`);
  const endpoint = env.S3_ENDPOINT || undefined;
  if (endpoint && !/^https?:\/\/[^/]+/.test(endpoint)) throw new ConfigError(`S3_ENDPOINT must be an http(s) URL, got "${endpoint}"`);
  const accessKeyId = env.S3_ACCESS_KEY_ID || undefined;
  const secretAccessKey = env.S3_SECRET_ACCESS_KEY || undefined;
  if (!accessKeyId !== !secretAccessKey) throw new ConfigError('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are set together (or neither: the AWS default credential chain)');
  return {
    kind, bucket: required(env, 'S3_BUCKET'), region: env.S3_REGION || 'us-east-1', endpoint, accessKeyId, secretAccessKey,
    forcePathStyle: bool(env, 'S3_FORCE_PATH_STYLE', false),
  };
}

/** DNS_SERVERS: IP addresses (node:dns takes no host names), each with an optional port. */
function dnsServers(env: NodeJS.ProcessEnv): string[] {
  const servers = list(env.DNS_SERVERS);
  for (const s of servers) {
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
    const v4 = /^([^:]+)(?::(\d+))?$/.exec(s);
    const [ip, port] = v6 ? [v6[1], v6[2]] : v4 ? [v4[1], v4[2]] : [s, undefined];
    const ok = (v6 ? isIP(ip) === 6 : v4 ? isIPv4(ip) : isIP(ip) === 6) && (port === undefined || (Number(port) >= 1 && Number(port) <= 65535));
    if (!ok) throw new ConfigError(`DNS_SERVERS must be IP addresses with optional ports (127.0.0.1:53, [::1]:53), comma-separated; got "${s}"`);
  }
  return servers;
}

function senderDomainMode(env: NodeJS.ProcessEnv): 'verified' | 'any' {
  const mode = env.SENDER_DOMAINS || 'verified';
  if (mode !== 'verified' && mode !== 'any') throw new ConfigError(`SENDER_DOMAINS must be verified or any, got "${mode}"`);
  return mode;
}

/** Only DATABASE_URL: what tools that touch nothing but the database (migrate, bootstrap-tenant) need. */
export function loadDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return required(env, 'DATABASE_URL');
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const nodeEnv = (env.NODE_ENV || 'development') as Config['env'];
  if (!['development', 'test', 'production'].includes(nodeEnv)) {
    throw new ConfigError(`NODE_ENV must be development, test or production, got "${nodeEnv}"`);
  }
  const dataDir = path.resolve(env.DOCKET_DATA_DIR || path.join(PROJECT_ROOT, '.data'));
  const databaseUrl = loadDatabaseUrl(env);
  const temporalAddress = required(env, 'TEMPORAL_ADDRESS');
  const link = linkSecret(env);
  const jwtTenants = list(env.JWT_TENANTS);
  const warnings: string[] = [];
  if (link.builtIn && nodeEnv === 'development') {
    warnings.push('INSECURE: LINK_SIGNING_SECRET is unset, so one-click email links are signed with the built-in development secret that anyone can read in the source; never expose this instance (set LINK_SIGNING_SECRET, 32+ characters)');
  }
  // A JWKS (an identity provider's keys) signs the tokens of every application that provider serves; without an
  // audience, a token the provider issued for another of them would sign its user in here.
  if (env.JWT_JWKS_URL && !env.JWT_AUDIENCE) {
    throw new ConfigError("JWT_JWKS_URL needs JWT_AUDIENCE (the 'aud' your identity provider puts in tokens for this API): its keys also sign tokens for other applications, which would otherwise be accepted here");
  }
  if (env.JWT_SECRET && !jwtTenants.length && nodeEnv !== 'test') {
    warnings.push('JWT_SECRET is set without JWT_TENANTS: whoever holds the secret can sign in as any user of any tenant; list the tenants it may sign for in JWT_TENANTS');
  }
  const port = int(env, 'PORT', 3000);
  const metricsPort = optionalPort(env, 'METRICS_PORT');
  if (metricsPort !== undefined && metricsPort === port) throw new ConfigError('METRICS_PORT must differ from PORT');
  const metricsToken = env.METRICS_TOKEN || undefined;
  if (metricsToken !== undefined && metricsToken.length < 16) throw new ConfigError('METRICS_TOKEN must be at least 16 characters');
  return {
    env: nodeEnv,
    port,
    host: env.HOST || '0.0.0.0',
    databaseUrl,
    temporal: {
      address: temporalAddress,
      namespace: env.TEMPORAL_NAMESPACE || 'default',
    },
    workerQueues: list(env.WORKER_QUEUES),
    workerMaxCachedWorkflows: int(env, 'WORKER_MAX_CACHED_WORKFLOWS', 250),
    dataDir,
    fileStoreDir: path.resolve(env.FILE_STORE_DIR || path.join(dataDir, 'files')),
    fileStore: fileStore(env),
    limits: {
      jsonBodyBytes: int(env, 'JSON_BODY_LIMIT_BYTES', 1024 * 1024),
      uploadBytes: int(env, 'UPLOAD_LIMIT_BYTES', 256 * 1024 * 1024),
    },
    rateLimit: {
      perMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 6000),
      syncMs: Math.max(10, int(env, 'RATE_LIMIT_SYNC_MS', 1000)),
      authFailuresPerMinute: int(env, 'AUTH_FAILURE_LIMIT_PER_MINUTE', 30),
      linksPerMinute: int(env, 'LINK_LIMIT_PER_MINUTE', 30),
    },
    trustProxyHops: int(env, 'TRUST_PROXY_HOPS', 0),
    cors: { origins: list(env.CORS_ORIGINS) },
    jwt: {
      secret: env.JWT_SECRET || undefined,
      jwksUrl: env.JWT_JWKS_URL || undefined,
      audience: env.JWT_AUDIENCE || undefined,
      issuer: env.JWT_ISSUER || undefined,
      tenants: jwtTenants,
    },
    metrics: { port: metricsPort, token: metricsToken },
    logLevel: env.LOG_LEVEL || (nodeEnv === 'test' ? 'silent' : 'info'),
    idempotencyTtlHours: int(env, 'IDEMPOTENCY_TTL_HOURS', 24),
    webhookTimeoutMs: Math.max(1, int(env, 'WEBHOOK_TIMEOUT_MS', 10_000)),
    // Off in every mode: a tenant's webhook must not reach the machine's own services unless an operator says so.
    outboundAllowPrivateNetworks: bool(env, 'OUTBOUND_ALLOW_PRIVATE_NETWORKS', false),
    webhooks: {
      relayEveryMs: Math.max(100, int(env, 'WEBHOOK_RELAY_EVERY_MS', 1000)),
      retryInitialMs: Math.max(100, int(env, 'WEBHOOK_RETRY_INITIAL_MS', 30_000)),
      retryMaxMs: Math.max(100, int(env, 'WEBHOOK_RETRY_MAX_MS', 6 * 3600_000)),
      // WEBHOOK_GIVE_UP_SECONDS, when set, is the finer knob (tests, benchmarks); otherwise hours.
      giveUpMs: env.WEBHOOK_GIVE_UP_SECONDS
        ? Math.max(1, int(env, 'WEBHOOK_GIVE_UP_SECONDS', 1)) * 1000
        : Math.max(1, int(env, 'WEBHOOK_GIVE_UP_HOURS', 72)) * 3600_000,
      autoDisableAfterMs: Math.max(1, int(env, 'WEBHOOK_AUTO_DISABLE_AFTER_SECONDS', 5 * 86_400)) * 1000,
    },
    mail: { smtpUrl: env.SMTP_URL || undefined, from: env.MAIL_FROM || 'Docket <docket@localhost>' },
    publicUrl: (env.PUBLIC_URL || `http://localhost:${port}`).replace(/\/$/, ''),
    linkSecret: link.secret,
    warnings,
    secretsKey: configSecretsKey(env, link.secret),
    documents: {
      chromiumPath: env.CHROMIUM_PATH || '/usr/bin/chromium',
      poolSize: Math.max(1, int(env, 'PDF_POOL_SIZE', 2)),
      renderTimeoutMs: Math.max(1000, int(env, 'PDF_RENDER_TIMEOUT_MS', 30_000)),
      batchChunkSize: Math.max(1, int(env, 'DOCUMENT_BATCH_CHUNK', 25)),
      batchBodyBytes: int(env, 'DOCUMENT_BATCH_BODY_LIMIT_BYTES', 32 * 1024 * 1024),
    },
    auditExport: { pageSize: Math.max(1, int(env, 'AUDIT_EXPORT_PAGE_SIZE', 2000)), pagePauseMs: int(env, 'AUDIT_EXPORT_PAGE_PAUSE_MS', 0) },
    segments: { previewBudgetMs: Math.max(1, int(env, 'SEGMENT_PREVIEW_BUDGET_MS', 5_000)) },
    reconcileStartsGraceSeconds: int(env, 'RECONCILE_STARTS_GRACE_SECONDS', 60),
    reconcileStartsEverySeconds: Math.max(1, int(env, 'RECONCILE_STARTS_EVERY_SECONDS', 60)),
    imports: {
      maxFileBytes: Math.max(1, int(env, 'IMPORT_MAX_FILE_BYTES', 1024 * 1024 * 1024)),
      maxUncompressedBytes: Math.max(1, int(env, 'IMPORT_MAX_UNCOMPRESSED_BYTES', 1024 * 1024 * 1024)),
      // How long POST …/revert waits for the revert's outcome before answering 202 (it goes on in the worker).
      revertWaitMs: Math.max(0, int(env, 'IMPORT_REVERT_WAIT_MS', 5_000)),
      chunkMs: Math.max(100, int(env, 'IMPORT_CHUNK_MS', 20_000)),
      xlsxChunkMs: Math.max(100, int(env, 'IMPORT_XLSX_CHUNK_MS', 15 * 60_000)),
      stageRows: Math.max(1, int(env, 'IMPORT_STAGE_CHUNK_ROWS', 50_000)),
      mergeRows: Math.max(1, int(env, 'IMPORT_MERGE_CHUNK_ROWS', 25_000)),
      mergeConcurrency: Math.max(1, int(env, 'IMPORT_MERGE_CONCURRENCY', 2)),
    },
    campaigns: {
      batchSize: Math.max(1, int(env, 'CAMPAIGN_BATCH_SIZE', 500)),
      concurrency: Math.max(1, int(env, 'CAMPAIGN_CONCURRENCY', 10)),
      chunkMs: Math.max(100, int(env, 'CAMPAIGN_CHUNK_MS', 2_000)),
      // One per campaign worker process: a send's lanes run at once, each on whichever worker takes its chunk.
      lanes: Math.min(64, Math.max(1, int(env, 'CAMPAIGN_LANES', 1))),
      // Under the snapshot activity's 5-minute start-to-close: Postgres ends the statement before Temporal starts
      // another attempt beside it. A million recipients take 12 to 20 s (bench/README.md).
      snapshotTimeoutMs: Math.min(240_000, Math.max(1, int(env, 'CAMPAIGN_SNAPSHOT_TIMEOUT_MS', 240_000))),
      unsubscribeMailto: env.CAMPAIGN_UNSUBSCRIBE_MAILTO || undefined,
    },
    senderDomains: {
      mode: senderDomainMode(env),
      dnsServers: dnsServers(env),
      dnsTimeoutMs: Math.max(100, int(env, 'DNS_TIMEOUT_MS', 3_000)),
    },
  };
}
