/**
 * One registry GC and its last report, kept light (the store only) so `tsbuild registry garbage-collect`
 * starts without the server's Koa and Prometheus stacks. The report goes to `gc/last.json` in the store,
 * where /metrics (registry/server/gc.ts) reads it whichever process ran the GC.
 */
import { collectGarbage, PathNotFoundError, type GcOptions, type GcReport, type Store } from '../../store/index.js';

const LAST_REPORT = 'gc/last.json';

/** One registry GC (the mirror's pins are roots), its report written to gc/last.json unless a dry run. Throws GcLockedError. */
export async function runRegistryGc(store: Store, options: GcOptions = {}): Promise<GcReport> {
  const report = await collectGarbage(store, options);
  if (!report.dryRun) await store.driver.putContent(LAST_REPORT, JSON.stringify(report), { durable: false });
  return report;
}

export async function lastGcReport(store: Store): Promise<GcReport | undefined> {
  try {
    return JSON.parse((await store.driver.getContent(LAST_REPORT)).toString('utf8')) as GcReport;
  } catch (e) {
    if (e instanceof PathNotFoundError || e instanceof SyntaxError) return undefined;
    throw e;
  }
}
