// /metrics (Prometheus): optionally behind a bearer token (METRICS_TOKEN) and optionally served on a port of
// its own (METRICS_PORT) instead of the API's, so it can be kept off the public listener.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { sha256Hex } from '../lib/secrets';
import { ApiError } from '../lib/problems';
import { problemBody } from './errors';
import { Metrics } from '../lib/metrics';

/** Refuses a scrape without the configured token (compared in constant time). */
export function checkMetricsToken(authorization: string | undefined, token: string | undefined): void {
  if (token === undefined) return;
  const given = /^Bearer\s+(\S+)$/i.exec(authorization?.trim() ?? '')?.[1];
  const ok = given !== undefined && timingSafeEqual(Buffer.from(sha256Hex(given), 'hex'), Buffer.from(sha256Hex(token), 'hex'));
  if (!ok) throw new ApiError(401, 'UNAUTHENTICATED', 'Metrics need the bearer token set in METRICS_TOKEN');
}

/** A listener that serves GET /metrics only (METRICS_PORT). */
export function createMetricsServer(opts: { metrics: Metrics; token?: string }): http.Server {
  return http.createServer((req, res) => {
    const send = (status: number, type: string, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': type, ...headers });
      res.end(body);
    };
    const problem = (err: ApiError) => send(err.status, 'application/problem+json', JSON.stringify(problemBody(err, randomUUID())), err.extra.headers);
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') return problem(new ApiError(404, 'ROUTE_NOT_FOUND', `No route ${req.method} ${path}; this port serves GET /metrics`));
    if (req.method !== 'GET') return problem(new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here; use GET`, { headers: { Allow: 'GET' } }));
    try {
      checkMetricsToken(req.headers.authorization, opts.token);
    } catch (err) {
      return problem(err as ApiError);
    }
    opts.metrics.registry.metrics().then(
      (text) => send(200, opts.metrics.registry.contentType, text),
      () => problem(new ApiError(500, 'INTERNAL_ERROR', 'Metrics could not be collected')),
    );
  });
}
