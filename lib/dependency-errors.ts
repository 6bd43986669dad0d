// Which errors mean "a dependency is down or busy, try again" (Postgres unreachable or restarting,
// Temporal unavailable) rather than "this request or job is wrong". The API answers them 503 with
// Retry-After; activities leave them to Temporal, which retries until the dependency is back.

/** Temporal did not answer (unreachable, or no answer in time): the call may or may not have taken effect. */
export class TemporalUnavailableError extends Error {
  constructor(message: string, readonly pending?: Promise<unknown>) {
    super(message);
    this.name = 'TemporalUnavailableError';
  }
}

/** The file store (S3) cannot be reached or answers with a server fault: the bytes are fine, try again. */
export class FileStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FileStoreUnavailableError';
  }
}

// SQLSTATEs of a database that is going away, coming back, overloaded, or asking for a retry.
const RETRYABLE_SQLSTATE = /^(08...|53...|57P0[123]|40001|40P01|55P03)$/;
// Socket-level failures (Node), and the messages pg gives a connection that died under it.
export const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
const DEAD_CONNECTION = /connection terminated|connection ended unexpectedly|encountered a connection error|not queryable|timeout exceeded when trying to connect|terminating connection due to administrator command/i;
// gRPC status codes: DEADLINE_EXCEEDED 4, RESOURCE_EXHAUSTED 8, UNAVAILABLE 14.
const TEMPORAL_RETRYABLE = new Set([4, 8, 14]);

type Chained = { name?: string; code?: unknown; message?: string; cause?: unknown; parent?: unknown; original?: unknown };

/** The error and what it wraps (Sequelize's parent/original, Temporal's cause), a few levels deep. */
function chain(err: unknown): Chained[] {
  const out: Chained[] = [];
  for (let e = err as Chained | undefined, depth = 0; e && typeof e === 'object' && depth < 6; depth++) {
    out.push(e);
    e = (e.parent ?? e.original ?? e.cause) as Chained | undefined;
  }
  return out;
}

/**
 * Postgres cannot be reached or used right now (down, restarting, refusing connections, pool exhausted,
 * asking for a retry). Only errors that come through Sequelize count: a webhook or SMTP server refusing a
 * connection is that recipient's problem, not an outage of Docket's own database.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const links = chain(err);
  const at = links.findIndex((e) => typeof e.name === 'string' && e.name.startsWith('Sequelize'));
  if (at < 0) return false;
  if (/^Sequelize(Connection\w*|HostNotFound|HostNotReachable|InvalidConnection|AccessDenied)Error$/.test(links[at].name!)) return true;
  return links.slice(at).some((e) => (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || RETRYABLE_SQLSTATE.test(e.code)))
    || (typeof e.message === 'string' && DEAD_CONNECTION.test(e.message)));
}

/** Temporal cannot be reached or did not answer in time (gRPC UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED). */
export function isTemporalUnavailable(err: unknown): boolean {
  return chain(err).some((e) => e instanceof TemporalUnavailableError
    || ((e.name === 'ServiceError' || typeof (e as { details?: unknown }).details === 'string') && typeof e.code === 'number' && TEMPORAL_RETRYABLE.has(e.code)));
}

/** The S3 file store cannot be reached (the disk store has no such outage: its errors are the machine's). */
export function isFileStoreUnavailable(err: unknown): boolean {
  return chain(err).some((e) => e instanceof FileStoreUnavailableError);
}

/** An outage worth waiting out (a retry will succeed once the dependency is back), not a fault of the work. */
export function isInfrastructureError(err: unknown): boolean {
  return isDatabaseUnavailable(err) || isTemporalUnavailable(err) || isFileStoreUnavailable(err);
}
