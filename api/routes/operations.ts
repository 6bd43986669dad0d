// Health, readiness, metrics, and the contract itself (raw and rendered).
import fs from 'node:fs';
import path from 'node:path';
import Koa from 'koa';
import { ApiError, RETRY_AFTER_SECONDS } from '../../lib/problems';
import { checkMetricsToken } from '../metrics';
import { RouteDeps, RouteHandlers } from '../types';

const SWAGGER_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const DOCS_ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css',
  'swagger-ui-bundle.js': 'application/javascript',
  'swagger-ui-standalone-preset.js': 'application/javascript',
  'favicon-32x32.png': 'image/png',
};

const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Docket API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"><link rel="icon" href="/docs/assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/docs-init.js"></script></body></html>`;

// Kept out of the HTML so the Content-Security-Policy can forbid inline scripts.
const DOCS_INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.yaml', dom_id: '#swagger-ui', deepLinking: true });`;

async function serveDocsAsset(ctx: Koa.Context, name: string): Promise<void> {
  if (name === 'docs-init.js') {
    ctx.type = 'application/javascript';
    ctx.body = DOCS_INIT;
    return;
  }
  const type = DOCS_ASSETS[name];
  if (!type) throw new ApiError(404, 'ROUTE_NOT_FOUND', `No docs asset ${name}`);
  ctx.type = type;
  ctx.set('Cache-Control', 'public, max-age=86400');
  ctx.body = fs.createReadStream(path.join(SWAGGER_DIR, name));
}

async function check(fn: () => Promise<unknown>, ms = 2000): Promise<'ok' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), ms); });
  try {
    await Promise.race([fn(), timeout]);
    return 'ok';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

export function operationsRoutes(deps: RouteDeps) {
  const started = Date.now();
  return {
    async getHealth(_input, ctx) {
      ctx.body = { status: 'ok', uptimeSeconds: Math.round((Date.now() - started) / 1000) };
    },
    async getReady(_input, ctx) {
      const [postgres, temporal] = await Promise.all([check(() => deps.sequelize.query('SELECT 1')), check(() => deps.temporal.ping())]);
      const ready = postgres === 'ok' && temporal === 'ok';
      ctx.status = ready ? 200 : 503;
      if (!ready) ctx.set('Retry-After', String(RETRY_AFTER_SECONDS.dependency));
      ctx.body = { status: ready ? 'ready' : 'unavailable', checks: { postgres, temporal } };
    },
    async getMetrics(_input, ctx) {
      // With METRICS_PORT they are served there only: this listener may be the public one.
      if (deps.config.metrics.port) throw new ApiError(404, 'ROUTE_NOT_FOUND', 'Metrics are served on METRICS_PORT, not here');
      checkMetricsToken(ctx.get('authorization') || undefined, deps.config.metrics.token);
      ctx.type = deps.metrics.registry.contentType;
      ctx.body = await deps.metrics.registry.metrics();
    },
    async getOpenApi(_input, ctx) {
      ctx.type = 'application/yaml';
      ctx.body = deps.contract.raw;
    },
    async getDocsAsset({ params }, ctx) {
      await serveDocsAsset(ctx, params.asset);
    },
    async getDocs(_input, ctx) {
      ctx.type = 'text/html';
      ctx.body = DOCS_HTML;
    },
  } satisfies RouteHandlers;
}
