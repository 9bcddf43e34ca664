import type { Digest } from '../../oci/index.js';
import type { Store } from '../../store/index.js';
import { AccessLog } from './access.js';
import { evictCache, type EvictionReport } from './eviction.js';
import type { MirrorMetrics } from './metrics.js';
import { StatsRecorder } from './stats.js';

/** The cache settings of `tsbuild registry` (`mirror.max-size`, `mirror.eviction-grace` in the YAML). */
export interface MirrorCacheOptions {
  /** Keep the cache (distinct blob bytes under mirrored names) at most this big; no limit when absent. */
  maxBytes?: number | undefined;
  /** Nothing pulled or written within this many ms is evicted or deleted; default 10 minutes. */
  graceMs?: number;
  /** A full size check at least this often (ms); default 5 minutes. */
  checkIntervalMs?: number;
  /** How often the counters are added to mirror/stats.json (ms); default 10 s. */
  statsIntervalMs?: number;
  /** How often access times are written, and the size estimate looked at (ms); default 5 s. */
  accessIntervalMs?: number;
}

export const DEFAULT_EVICTION_GRACE_MS = 10 * 60_000;

/** Where the maintenance reports (the server's pino logger fits). */
export interface MaintenanceLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/**
 * The mirror's housekeeping inside a running registry: counters persisted to mirror/stats.json, touches
 * persisted to mirror/access.json, and the size limit. The size is measured by a full scan at least every
 * `checkIntervalMs`; between scans it is estimated as the last scan plus the bytes fetched from upstreams
 * since, so a burst of fetches triggers eviction within seconds without rescanning after every blob.
 * Content that other processes add (`mirror sync`, `import`) is seen at the next full scan.
 */
export class MirrorMaintenance {
  readonly access: AccessLog;
  readonly stats: StatsRecorder;
  private timer: NodeJS.Timeout | undefined;
  private lastScanAt = 0;
  private lastScanBytes = 0;
  private upstreamBytesAtScan = 0;
  private wasOver = false;
  private evicting: Promise<EvictionReport | undefined> | undefined;

  constructor(
    private readonly store: Store,
    private readonly metrics: MirrorMetrics,
    private readonly upstreams: string[],
    private readonly options: MirrorCacheOptions = {},
    private readonly log?: MaintenanceLog,
  ) {
    this.access = new AccessLog(store);
    this.stats = new StatsRecorder(store.driver, metrics);
  }

  /** The MirrorRegistry's touch hook. */
  readonly touch = (cached: string, digest: Digest): void => this.access.touch(cached, digest);

  start(): void {
    const onError = (what: string) => (e: unknown) => this.log?.warn({ err: (e as Error)?.message }, `mirror: writing ${what} failed`);
    this.stats.start(this.options.statsIntervalMs ?? 10_000, onError('mirror/stats.json'));
    this.access.start(this.options.accessIntervalMs ?? 5000, onError('mirror/access.json'));
    if (this.options.maxBytes !== undefined) {
      this.timer = setInterval(() => void this.checkSize().catch(onError('evictions')), this.options.accessIntervalMs ?? 5000);
      this.timer.unref();
    }
  }

  private upstreamBytes(): number {
    let n = 0;
    for (const t of this.metrics.totals.values()) n += t.upstreamBytes;
    return n;
  }

  /** Evicts when the estimated size is over the limit or a full check is due; undefined when neither. */
  async checkSize(force = false): Promise<EvictionReport | undefined> {
    const max = this.options.maxBytes;
    if (max === undefined) return undefined;
    const fetched = this.upstreamBytes() - this.upstreamBytesAtScan;
    const due = Date.now() - this.lastScanAt >= (this.options.checkIntervalMs ?? 5 * 60_000);
    // Over the limit with nothing fetched since the last scan (all pinned, recent or shared): only the
    // periodic check looks again (by then, content may have left the grace period).
    if (!force && !due && (fetched === 0 || this.lastScanBytes + fetched <= max)) return undefined;
    return this.evictNow();
  }

  /** Runs one eviction pass (one at a time: a pass under way is joined). */
  evictNow(): Promise<EvictionReport | undefined> {
    const max = this.options.maxBytes;
    if (max === undefined) return Promise.resolve(undefined);
    this.evicting ??= (async () => {
      try {
        const fetchedBefore = this.upstreamBytes();
        await this.access.flush().catch(() => undefined);
        const report = await evictCache(this.store, { upstreams: this.upstreams, maxBytes: max, graceMs: this.options.graceMs ?? DEFAULT_EVICTION_GRACE_MS });
        this.lastScanAt = Date.now();
        this.lastScanBytes = report.after;
        this.upstreamBytesAtScan = fetchedBefore;
        const newlyOver = report.stillOver && !this.wasOver;
        this.wasOver = report.stillOver;
        if (report.evicted.length > 0 || newlyOver) {
          this.log?.info(
            {
              before: report.before,
              after: report.after,
              maxBytes: max,
              evicted: report.evicted.length,
              deletedBlobs: report.deletedBlobs,
              deletedBytes: report.deletedBytes,
              stillOver: report.stillOver,
            },
            report.stillOver ? 'mirror: cache over mirror.max-size; the rest is pinned, recent or shared' : 'mirror: evicted least recently pulled images',
          );
        }
        return report;
      } finally {
        this.evicting = undefined;
      }
    })();
    return this.evicting;
  }

  /** Stops the timers and writes the last counters and access times. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.evicting?.catch(() => undefined);
    await Promise.allSettled([this.access.close(), this.stats.close()]);
  }
}
