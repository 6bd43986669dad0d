// Prometheus metrics: one registry per process, passed in (tests build their own).
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'operation' | 'method' | 'status'>;
  workflowStarts: Counter<'workflow_type'>;
  errors: Counter<'code'>;
}

export function createMetrics(opts: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'docket_http_request_duration_seconds',
      help: 'HTTP request latency by OpenAPI operationId',
      labelNames: ['operation', 'method', 'status'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    workflowStarts: new Counter({
      name: 'docket_workflow_starts_total',
      help: 'Workflows started through the API',
      labelNames: ['workflow_type'],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'docket_errors_total',
      help: 'Problem responses by stable error code',
      labelNames: ['code'],
      registers: [registry],
    }),
  };
}
