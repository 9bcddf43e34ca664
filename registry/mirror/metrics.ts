import { Counter, type Registry as PromRegistry } from 'prom-client';

export type MirrorResult = 'hit' | 'miss' | 'coalesced' | 'stale';

/** The mirror's Prometheus counters, by upstream registry. */
export class MirrorMetrics {
  readonly requests: Counter<'upstream' | 'kind' | 'result'>;
  readonly upstreamBytes: Counter<'upstream'>;
  readonly upstreamErrors: Counter<'upstream'>;
  /** Totals kept in memory too, for `tsbuild mirror status` (a stats file written by the server). */
  readonly totals = new Map<
    string,
    { hits: number; misses: number; coalesced: number; stale: number; upstreamBytes: number; upstreamErrors: number; bytesServedFromCache: number }
  >();

  constructor(registers: PromRegistry[]) {
    this.requests = new Counter({
      name: 'tsbuild_mirror_requests_total',
      help: 'Mirror lookups by upstream, kind (blob, manifest, tag) and result: hit (served from the cache), miss (fetched from upstream), coalesced (joined a fetch under way), stale (cached tag served because the upstream failed or was slow)',
      labelNames: ['upstream', 'kind', 'result'],
      registers,
    });
    this.upstreamBytes = new Counter({
      name: 'tsbuild_mirror_upstream_bytes_total',
      help: 'Blob bytes fetched from upstream registries',
      labelNames: ['upstream'],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'tsbuild_mirror_upstream_errors_total',
      help: 'Failed upstream requests (unreachable, timeouts, cut transfers, bad digests)',
      labelNames: ['upstream'],
      registers,
    });
  }

  private total(upstream: string) {
    let t = this.totals.get(upstream);
    if (!t) this.totals.set(upstream, (t = { hits: 0, misses: 0, coalesced: 0, stale: 0, upstreamBytes: 0, upstreamErrors: 0, bytesServedFromCache: 0 }));
    return t;
  }

  count(upstream: string, kind: 'blob' | 'manifest' | 'tag', result: MirrorResult): void {
    this.requests.inc({ upstream, kind, result });
    const t = this.total(upstream);
    if (result === 'hit') t.hits++;
    else if (result === 'miss') t.misses++;
    else if (result === 'coalesced') t.coalesced++;
    else t.stale++;
  }

  bytes(upstream: string, n: number): void {
    this.upstreamBytes.inc({ upstream }, n);
    this.total(upstream).upstreamBytes += n;
  }

  servedFromCache(upstream: string, n: number): void {
    this.total(upstream).bytesServedFromCache += n;
  }

  error(upstream: string): void {
    this.upstreamErrors.inc({ upstream });
    this.total(upstream).upstreamErrors++;
  }
}
