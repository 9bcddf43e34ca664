import type { Context, Next } from './state.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Registry as RepositoryServices } from '../repository/index.js';

/** Prometheus metrics of one server (its own registry, so several servers can live in one process). */
export class RegistryMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly duration: Histogram<'route' | 'method'>;
  readonly bytesReceived: Counter;
  readonly bytesSent: Counter;

  constructor(services: RepositoryServices) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'tsbuild_registry_http_requests_total',
      help: 'HTTP requests by endpoint, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'tsbuild_registry_http_request_duration_seconds',
      help: 'Time to answer a request, by endpoint and method',
      labelNames: ['route', 'method'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    });
    this.bytesReceived = new Counter({ name: 'tsbuild_registry_bytes_received_total', help: 'Blob and manifest bytes received', registers });
    this.bytesSent = new Counter({ name: 'tsbuild_registry_bytes_sent_total', help: 'Blob and manifest bytes sent', registers });
    new Gauge({
      name: 'tsbuild_registry_upload_sessions',
      help: 'Upload sessions (resumable ingests) open in the store',
      registers,
      async collect() {
        this.set(await services.uploadSessionCount());
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'tsbuild_registry_' });
  }

  /** Counts every request once it is answered (outermost middleware, so error statuses are seen too). */
  middleware() {
    return async (ctx: Context, next: Next): Promise<void> => {
      const start = performance.now();
      try {
        await next();
      } finally {
        const route = ctx.state.route?.route ?? (ctx.path === '/healthz' || ctx.path === '/metrics' ? ctx.path.slice(1) : 'other');
        this.requests.inc({ route, method: ctx.method, status: ctx.status });
        this.duration.observe({ route, method: ctx.method }, (performance.now() - start) / 1000);
        if (ctx.method === 'GET' && ctx.status < 300 && ctx.length) this.bytesSent.inc(ctx.length);
        if (typeof ctx.state.bytesIn === 'number' && ctx.state.bytesIn > 0) this.bytesReceived.inc(ctx.state.bytesIn);
      }
    };
  }

  async serve(ctx: Context): Promise<void> {
    ctx.set('Content-Type', this.registry.contentType);
    ctx.body = await this.registry.metrics();
  }
}
