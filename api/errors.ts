// Every API error as a problem+json body (RFC 9457): a stable code and an HTTP status, never a stack trace.
// The errors themselves (ApiError …) are lib/problems.ts', so the domains' commands throw the same ones.
import Koa from 'koa';
import { isDatabaseUnavailable, isFileStoreUnavailable, isTemporalUnavailable } from '../lib/dependency-errors';
import { ApiError, RETRY_AFTER_SECONDS, serviceUnavailable } from '../lib/problems';
import { WorkflowStartError } from '../lib/temporal';
import { WorkPoolBusyError } from '../lib/work-pool';

const TITLES: Record<number, string> = {
  400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not found', 405: 'Method not allowed',
  408: 'Request timeout', 409: 'Conflict', 412: 'Precondition failed', 413: 'Payload too large', 415: 'Unsupported media type',
  422: 'Unprocessable content', 429: 'Too many requests', 431: 'Request header fields too large', 500: 'Internal error', 501: 'Not implemented', 503: 'Service unavailable',
};

export function problemBody(err: ApiError, requestId: string) {
  return {
    type: `https://docket.dev/problems/${err.code.toLowerCase().replace(/_/g, '-')}`,
    title: TITLES[err.status] ?? 'Error',
    status: err.status,
    code: err.code,
    detail: err.detail,
    requestId,
    ...(err.extra.errors ? { errors: err.extra.errors } : {}),
    ...(err.extra.permission ? { permission: err.extra.permission } : {}),
    ...(err.extra.count !== undefined ? { count: err.extra.count } : {}),
  };
}

export function sendProblem(ctx: Koa.Context, err: ApiError): void {
  ctx.status = err.status;
  for (const [k, v] of Object.entries(err.extra.headers ?? {})) ctx.set(k, v);
  ctx.type = 'application/problem+json';
  ctx.body = problemBody(err, ctx.state.requestId);
}

/**
 * Maps anything thrown to an ApiError: known client errors keep their status, a dependency that is down
 * (Postgres unreachable or restarting, Temporal unavailable, the file store unreachable, the work pool full) is a 503 with Retry-After,
 * the rest become 500.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof WorkflowStartError || isTemporalUnavailable(err)) return serviceUnavailable('Temporal is unreachable; nothing was changed, try again shortly');
  if (isDatabaseUnavailable(err)) return serviceUnavailable('The database is unreachable or busy; try again shortly');
  if (isFileStoreUnavailable(err)) return serviceUnavailable('The file store is unreachable; nothing was stored or sent, try again shortly');
  if (err instanceof WorkPoolBusyError) return serviceUnavailable('The API is busy with other rendering or recurrence work; try again shortly', RETRY_AFTER_SECONDS.busy);
  const e = err as { status?: number; statusCode?: number; type?: string; expose?: boolean; message?: string; name?: string };
  const status = e?.status ?? e?.statusCode;
  if (e?.type === 'entity.too.large' || status === 413) return new ApiError(413, 'PAYLOAD_TOO_LARGE', 'The request body is over the size limit');
  if (e?.type === 'request.aborted') return new ApiError(400, 'REQUEST_ABORTED', 'The client aborted the request');
  if (e?.name === 'SequelizeUniqueConstraintError') return new ApiError(409, 'ALREADY_EXISTS', 'A resource with the same key already exists');
  if (status && status >= 400 && status < 500 && e.expose) return new ApiError(status, 'BAD_REQUEST', e.message ?? 'Bad request');
  return new ApiError(500, 'INTERNAL_ERROR', 'An unexpected error happened; quote the requestId when reporting it');
}
