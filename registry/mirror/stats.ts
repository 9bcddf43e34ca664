import { PeriodicFlush } from './periodic-flush.js';
import type { StorageDriver } from '../../store/index.js';
import type { MirrorMetrics } from './metrics.js';
import { readState, updateState } from './state-file.js';

/** The mirror's counters of one upstream, as MirrorMetrics keeps them in memory (counts, and bytes). */
export interface UpstreamTotals {
  /** Lookups answered from the cache (blobs, manifests, fresh tags). */
  hits: number;
  /** Lookups that went to the upstream. */
  misses: number;
  /** Lookups that joined a fetch already under way. */
  coalesced: number;
  /** Cached tags served because the upstream failed or was slow. */
  stale: number;
  /** Blob bytes taken from the upstream. */
  upstreamBytes: number;
  /** Failed upstream requests. */
  upstreamErrors: number;
  /** Blob bytes served from the cache (what the upstream was spared). */
  bytesServedFromCache: number;
}

/** `mirror/stats.json`: the counters of every process that served or filled the cache, added up. */
export interface StatsDocument {
  version: 1;
  /** When counting started (ISO 8601). */
  since: string;
  /** Last write (ISO 8601). */
  updated: string;
  /** By upstream registry (`docker.io`). */
  upstreams: Record<string, UpstreamTotals>;
}

export const STATS_PATH = 'mirror/stats.json';
const KEYS: (keyof UpstreamTotals)[] = ['hits', 'misses', 'coalesced', 'stale', 'upstreamBytes', 'upstreamErrors', 'bytesServedFromCache'];

export function zeroTotals(): UpstreamTotals {
  return { hits: 0, misses: 0, coalesced: 0, stale: 0, upstreamBytes: 0, upstreamErrors: 0, bytesServedFromCache: 0 };
}

function emptyStats(): StatsDocument {
  const now = new Date().toISOString();
  return { version: 1 as const, since: now, updated: now, upstreams: {} };
}

/** The persisted counters (zeros when none were written yet). */
export async function readStats(driver: StorageDriver): Promise<StatsDocument> {
  const doc = await readState(driver, STATS_PATH, emptyStats);
  const upstreams: Record<string, UpstreamTotals> = {};
  for (const [name, t] of Object.entries(doc.upstreams ?? {})) {
    const clean = zeroTotals();
    for (const k of KEYS) clean[k] = Number.isFinite(t?.[k]) ? Number(t[k]) : 0;
    upstreams[name] = clean;
  }
  return { version: 1 as const, since: doc.since ?? emptyStats().since, updated: doc.updated ?? doc.since ?? emptyStats().updated, upstreams };
}

/** The sum of several upstreams' counters. */
export function sumTotals(all: Iterable<UpstreamTotals>): UpstreamTotals {
  const sum = zeroTotals();
  for (const t of all) for (const k of KEYS) sum[k] += t[k];
  return sum;
}

/**
 * Persists a process's MirrorMetrics totals into `mirror/stats.json`, so `tsbuild mirror status` sees
 * them across restarts: every `flush` adds what was counted since the previous flush to the file (a
 * read-modify-write under the state lock), so a server, a `mirror sync` and the next server on the same
 * store all add up instead of overwriting each other. A crash loses at most one interval of counts.
 */
export class StatsRecorder extends PeriodicFlush {
  private readonly flushed = new Map<string, UpstreamTotals>();

  constructor(
    private readonly driver: StorageDriver,
    private readonly metrics: MirrorMetrics,
  ) {
    super();
  }

  /** Adds the counts since the last flush to the file; does nothing when there are none. */
  protected async flushNow(): Promise<void> {
    const delta = new Map<string, UpstreamTotals>();
    const seen = new Map<string, UpstreamTotals>();
    for (const [upstream, now] of this.metrics.totals) {
      const copy = { ...now };
      seen.set(upstream, copy);
      const before = this.flushed.get(upstream) ?? zeroTotals();
      const d = zeroTotals();
      let any = false;
      for (const k of KEYS) {
        d[k] = copy[k] - before[k];
        if (d[k] !== 0) any = true;
      }
      if (any) delta.set(upstream, d);
    }
    if (delta.size === 0) return;
    await updateState(this.driver, STATS_PATH, emptyStats, (doc) => {
      const upstreams = { ...(doc.upstreams ?? {}) };
      for (const [upstream, d] of delta) {
        const t = { ...zeroTotals(), ...upstreams[upstream] };
        for (const k of KEYS) t[k] = (Number.isFinite(t[k]) ? t[k] : 0) + d[k];
        upstreams[upstream] = t;
      }
      return { version: 1 as const, since: doc.since ?? new Date().toISOString(), updated: new Date().toISOString(), upstreams };
    });
    for (const [upstream, copy] of seen) if (delta.has(upstream)) this.flushed.set(upstream, copy);
  }
}

/**
 * Makes sure the counters name `registries` (with zeros when new), so that `tsbuild mirror status`
 * without a config still knows the store caches their content (after `mirror import`).
 */
export async function noteUpstreams(driver: StorageDriver, registries: Iterable<string>): Promise<void> {
  const names = [...new Set(registries)];
  const known = await readStats(driver);
  if (names.every((n) => known.upstreams[n])) return;
  await updateState(driver, STATS_PATH, emptyStats, (doc) => {
    const upstreams = { ...(doc.upstreams ?? {}) };
    for (const n of names) upstreams[n] ??= zeroTotals();
    return { version: 1 as const, since: doc.since ?? new Date().toISOString(), updated: doc.updated ?? new Date().toISOString(), upstreams };
  });
}
