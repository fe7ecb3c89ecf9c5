import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** One registry per service instance, so tests can run several services in one process. */
export interface Metrics {
  readonly registry: Registry;
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status'>;
  readonly jobs: Counter<'queue' | 'outcome'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'cloudpi_http_request_duration_seconds',
      help: 'HTTP request latency by route template and status code',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    jobs: new Counter({
      name: 'cloudpi_jobs_total',
      help: 'Jobs processed, by queue and outcome (completed, retried, failed, dead_lettered)',
      labelNames: ['queue', 'outcome'] as const,
      registers: [registry],
    }),
  };
}
