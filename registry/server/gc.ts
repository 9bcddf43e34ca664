/**
 * Garbage collection for a registry's store: the periodic online GC a running registry does (`gc.interval`
 * in the YAML), the same run for `tsbuild registry garbage-collect`, and their Prometheus metrics.
 *
 * Every run writes its report to `gc/last.json` in the store, so /metrics shows the last GC whichever
 * process ran it (a registry's own, or the CLI beside it):
 *   tsbuild_gc_last_duration_seconds, tsbuild_gc_last_bytes_reclaimed, tsbuild_gc_last_objects_swept{kind="blob|manifest"},
 *   tsbuild_gc_last_run_timestamp_seconds; and this process's totals: tsbuild_gc_runs_total{result="ok|error"},
 *   tsbuild_gc_bytes_reclaimed_total, tsbuild_gc_objects_swept_total{kind}.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import { GcLockedError, type GcReport, type Store } from '../../store/index.js';
import { lastGcReport, runRegistryGc } from './gc-report.js';

/** The GC metrics, registered in the server's Prometheus registry. */
export class GcMetrics {
  readonly runs: Counter<'result'>;
  readonly bytes: Counter;
  readonly swept: Counter<'kind'>;

  constructor(store: Store, registry: PromRegistry) {
    const registers = [registry];
    this.runs = new Counter({ name: 'tsbuild_gc_runs_total', help: 'Garbage collections run by this process', labelNames: ['result'], registers });
    this.bytes = new Counter({ name: 'tsbuild_gc_bytes_reclaimed_total', help: "Bytes of blobs deleted by this process's garbage collections", registers });
    this.swept = new Counter({
      name: 'tsbuild_gc_objects_swept_total',
      help: "Blobs deleted and manifests unlinked by this process's garbage collections",
      labelNames: ['kind'],
      registers,
    });
    const last = (name: string, help: string, pick: (r: GcReport, g: Gauge<'kind'>) => void, labelNames: 'kind'[] = []) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          const report = await lastGcReport(store).catch(() => undefined);
          if (report) pick(report, this);
        },
      });
    last('tsbuild_gc_last_duration_seconds', 'Duration of the last garbage collection of this store (any process)', (r, g) => g.set(r.durationMs / 1000));
    last('tsbuild_gc_last_bytes_reclaimed', 'Bytes the last garbage collection of this store deleted', (r, g) => g.set(r.bytesReclaimed));
    last('tsbuild_gc_last_run_timestamp_seconds', 'When the last garbage collection of this store began', (r, g) => g.set(r.startedAt / 1000));
    last(
      'tsbuild_gc_last_objects_swept',
      'Objects the last garbage collection of this store removed',
      (r, g) => {
        g.set({ kind: 'blob' }, r.blobsDeleted);
        g.set({ kind: 'manifest' }, r.manifestsDeleted.length);
      },
      ['kind'],
    );
  }

  record(report: GcReport): void {
    this.runs.inc({ result: 'ok' });
    this.bytes.inc(report.bytesReclaimed);
    this.swept.inc({ kind: 'blob' }, report.blobsDeleted);
    this.swept.inc({ kind: 'manifest' }, report.manifestsDeleted.length);
  }
}

export interface OnlineGcOptions {
  /** ms between runs; the first run comes one interval after start. */
  intervalMs: number;
  graceMs: number;
  deleteUntagged?: boolean;
  /** Upload sessions idle this long are removed by each run. */
  uploadExpiryMs?: number;
  /** Only the registry's roots: a shared bucket holds none of this machine's local images or build cache. */
  registryOnly?: boolean;
}

/**
 * Runs a GC every `intervalMs` while the registry serves; returns stop (waits for a run under way).
 * Several registries on one store (replicas on S3, or processes sharing a directory) each run this
 * timer; a run is skipped when the store's last GC, by whichever process, began less than an interval
 * ago, and the store's GC lock (gc-claims.ts) keeps two from overlapping. `collected` is told each report
 * (replicas drop what it unlinked from their caches).
 */
export function startOnlineGc(
  store: Store,
  options: OnlineGcOptions,
  metrics: GcMetrics,
  logger: Logger,
  collected?: (report: GcReport) => Promise<void>,
): () => Promise<void> {
  let running: Promise<void> | undefined;
  const run = async (): Promise<void> => {
    try {
      const last = await lastGcReport(store).catch(() => undefined);
      // a tenth of an interval of slack: timers of replicas started together fire a few ms apart
      if (last && Date.now() - last.startedAt < options.intervalMs * 0.9) return;
      const report = await runRegistryGc(store, {
        graceMs: options.graceMs,
        deleteUntagged: !!options.deleteUntagged,
        registryOnly: !!options.registryOnly,
        ...(options.uploadExpiryMs !== undefined ? { uploadExpiryMs: options.uploadExpiryMs } : {}),
      });
      metrics.record(report);
      await collected?.(report).catch((e: unknown) => logger.warn({ err: e }, 'telling the replicas what the garbage collection unlinked failed'));
      logger.info(
        { blobs: report.blobsDeleted, bytes: report.bytesReclaimed, manifests: report.manifestsDeleted.length, ms: report.durationMs },
        'garbage collected',
      );
    } catch (e) {
      if (e instanceof GcLockedError) {
        logger.info(e.message);
        return;
      }
      metrics.runs.inc({ result: 'error' });
      logger.warn({ err: e }, 'garbage collection failed');
    }
  };
  const timer = setInterval(() => {
    if (!running) running = run().finally(() => (running = undefined));
  }, options.intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
