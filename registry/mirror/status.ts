import type { Digest } from '../../oci/index.js';
import type { Store } from '../../store/index.js';
import { scanCache } from './eviction.js';
import { readPins } from './pins.js';
import { readStats, sumTotals, zeroTotals, type UpstreamTotals } from './stats.js';

/** `tsbuild mirror status` (also its `--format json`). Bytes are bytes; times ISO 8601. */
export interface MirrorStatus {
  /** Configured upstreams, and upstreams the counters name (mirrored before, configured no more). */
  upstreams: ({ registry: string; url?: string } & UpstreamTotals)[];
  /** All upstreams added up. `bytesServedFromCache` is what the cache spared the upstreams. */
  totals: UpstreamTotals;
  cache: {
    /** Distinct blob bytes (manifests included) under mirrored names. */
    bytes: number;
    blobs: number;
    repositories: number;
    /** Top-level manifests/indexes cached (images, by digest). */
    images: number;
    /** `mirror.max-size`, when configured. */
    maxBytes?: number;
  };
  pins: { reference: string; repository: string; tag?: string; digest?: Digest; pinned: string; cached: boolean }[];
  /** When counting started, and the last time a process wrote its counters. */
  counters: { since: string; updated: string };
}

/**
 * Reads what the mirror knows about a store: the counters every process added to mirror/stats.json (a
 * running server writes its own every ~10 s, so the last seconds may be missing), the cache's size
 * (scanned now) and the pins.
 */
export async function mirrorStatus(store: Store, configured: { registry: string; url: string }[], maxBytes?: number): Promise<MirrorStatus> {
  const stats = await readStats(store.driver);
  const names = [...new Set([...configured.map((u) => u.registry), ...Object.keys(stats.upstreams)])].sort();
  const upstreams = names.map((registry) => {
    const url = configured.find((u) => u.registry === registry)?.url;
    return { registry, ...(url ? { url } : {}), ...(stats.upstreams[registry] ?? zeroTotals()) };
  });
  const scan = await scanCache(store, names);
  const blobs = new Set<Digest>();
  for (const unit of scan.units) for (const d of unit.digests) if (scan.sizes.has(d)) blobs.add(d);
  const pins = [];
  for (const pin of await readPins(store.driver)) {
    const digest = pin.digest ?? (pin.tag ? await store.repositories.resolveTag(pin.repository, pin.tag).catch(() => undefined) : undefined);
    const cached = digest !== undefined && scan.units.some((u) => u.repository === pin.repository && u.manifests.includes(digest));
    pins.push({
      reference: pin.reference,
      repository: pin.repository,
      ...(pin.tag ? { tag: pin.tag } : {}),
      ...(digest ? { digest } : {}),
      pinned: pin.pinned,
      cached,
    });
  }
  return {
    upstreams,
    totals: sumTotals(upstreams),
    cache: {
      bytes: scan.bytes,
      blobs: blobs.size,
      repositories: new Set(scan.units.map((u) => u.repository)).size,
      images: scan.units.filter((u) => u.top !== undefined).length,
      ...(maxBytes !== undefined ? { maxBytes } : {}),
    },
    pins,
    counters: { since: stats.since, updated: stats.updated },
  };
}
