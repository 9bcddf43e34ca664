/**
 * Online garbage collection of the store: mark what the roots reach (reachability.ts), sweep the rest,
 * while registries, builds and mirrors keep writing to the same store.
 *
 * Distribution's `registry garbage-collect` must run with the registry stopped or read-only: a blob
 * uploaded between its mark and its sweep is deleted. Here (as zot and Harbor do with a delay) nothing
 * written or linked at or after the cutoff — the GC's start minus the grace period, or the start of the
 * oldest running build (leases.ts), whichever is earlier — is ever a candidate, and deletion goes
 * through claims (gc-claims.ts): candidates are moved aside, every root is marked again, and only what
 * is still unreached is deleted; writers confirm their blobs after linking them, restoring a claimed one.
 *
 * A GC killed at any point (SIGKILL included) leaves every reachable blob readable (claimed blobs are
 * restored by any reader, and all of them by the next GC, which then finishes the job).
 */
import { mapLimit, type Digest } from '../oci/index.js';
import type { GcLock } from './gc-claims.js';
import { liveLeases } from './leases.js';
import { blobFileInfo, markReachable, type DocumentRefs, type MarkOptions } from './reachability.js';
import type { Store } from './store.js';

/** File operations (stats, renames, deletes) in flight at once: the filesystem's latency, not its CPU, bounds a GC. */
const IO_CONCURRENCY = 64;

export interface GcOptions {
  /** Nothing written or linked within this many ms before the GC began is collected. Default 1 h. */
  graceMs?: number;
  /**
   * The grace period of the registry's side (repository links, manifests, uploads) when it differs:
   * `prune` deletes what a build wrote a second ago (grace 0) but never a push under way (1 h).
   */
  linkGraceMs?: number;
  /** Untagged manifests (not listed by a tagged index, not referring to a kept manifest) are unlinked first. */
  deleteUntagged?: boolean;
  /** Report what would go; change nothing. */
  dryRun?: boolean;
  /** Digests held besides the store's own roots (the mirror's pins). */
  extraRoots?: Iterable<Digest>;
  /** Only the registry's roots (a store whose local images and build cache belong to nobody). Default false. */
  registryOnly?: boolean;
  /** Upload sessions idle this long are removed too (default: left alone). */
  uploadExpiryMs?: number;
  /** Called once the candidates are claimed, before the second mark (tests race writers here). */
  onClaimed?: ((count: number) => Promise<void> | void) | undefined;
  /** Called after the second mark, before the deletes (tests race writers here too). */
  onMarkedAgain?: (() => Promise<void> | void) | undefined;
  now?: number;
}

export interface GcReport {
  /** ms since the epoch; the cutoffs: no blob written, nothing linked at or after them was swept. */
  startedAt: number;
  cutoff: number;
  linkCutoff: number;
  durationMs: number;
  dryRun: boolean;
  /** Blobs deleted (would be, on a dry run) and their bytes. */
  blobsDeleted: number;
  bytesReclaimed: number;
  /** The blobs deleted (would be, on a dry run). */
  deletedDigests: Digest[];
  /** Untagged manifests unlinked from their repositories. */
  manifestsDeleted: { repository: string; digest: Digest }[];
  /** Candidates kept after all: linked or restored during the GC, or written meanwhile. */
  blobsKept: number;
  /** Claimed blobs a killed GC had left, put back first. */
  restoredFromCrash: number;
  uploadsExpired: number;
  blobsMarked: number;
  blobsTotal: number;
  repositories: number;
  manifests: number;
}

/** The cutoff for a GC starting at `startedAt`: before the grace period and before the oldest running build. */
export async function gcCutoff(store: Store, startedAt: number, graceMs: number): Promise<number> {
  let cutoff = startedAt - graceMs;
  for (const lease of await liveLeases(store.root)) cutoff = Math.min(cutoff, lease.startedAt);
  return cutoff;
}

export interface SweepResult {
  deleted: Digest[];
  bytes: number;
  kept: Digest[];
}

/**
 * Deletes those `candidates` nothing reaches, safely beside live writers: each is claimed, the roots
 * are marked again (`mark`, with its own cutoff for links), and a claimed blob is deleted only when still
 * unreached and written before `cutoff`; the others are put back. Candidates not in the store are skipped.
 */
export async function sweepBlobs(
  store: Store,
  candidates: Iterable<Digest>,
  options: {
    cutoff: number;
    mark: MarkOptions;
    onClaimed?: ((count: number) => Promise<void> | void) | undefined;
    onMarkedAgain?: (() => Promise<void> | void) | undefined;
    /** The GC lock, checked before deciding (a shared lock may lapse). */
    lock?: GcLock | undefined;
  },
): Promise<SweepResult> {
  const result: SweepResult = { deleted: [], bytes: 0, kept: [] };
  const { claims } = store;
  const wanted = [...new Set(candidates)];
  const taken = await mapLimit(wanted, IO_CONCURRENCY, (d) => claims.claim(d, options.cutoff));
  const claimed = wanted.filter((_, i) => taken[i]);
  if (claimed.length === 0) return result;
  try {
    await options.onClaimed?.(claimed.length);
    const again = await markReachable(store, options.mark);
    await options.onMarkedAgain?.();
    options.lock?.check();
    await mapLimit(claimed, IO_CONCURRENCY, async (d) => {
      if (again.marked.has(d)) {
        await claims.restore(d);
        result.kept.push(d);
        return;
      }
      const info = await claims.claimedInfo(d);
      if (!info) {
        result.kept.push(d); // a reader or writer took it back: it is wanted
        return;
      }
      if (info.modTime >= options.cutoff) {
        await claims.restore(d); // a fresh copy was claimed: written during this GC
        result.kept.push(d);
        return;
      }
      if (!(await claims.deleteClaimed(d))) {
        result.kept.push(d); // taken back at the last moment
        return;
      }
      result.deleted.push(d);
      result.bytes += info.size;
    });
  } catch (e) {
    // whatever was not decided goes back
    for (const d of claimed) if (!result.deleted.includes(d)) await claims.restore(d).catch(() => undefined);
    throw e;
  }
  return result;
}

/**
 * The mirror eviction's sweep: deletes `candidates` that nothing holds (every repository link holds,
 * as eviction unlinks what it evicts) and that were written at least `minAgeMs` ago.
 */
export async function deleteUnheld(store: Store, candidates: Iterable<Digest>, options: { minAgeMs: number; now?: number }): Promise<SweepResult> {
  const cutoff = await gcCutoff(store, options.now ?? Date.now(), options.minAgeMs);
  return sweepBlobs(store, candidates, { cutoff, mark: { cutoff, allLinksHold: true } });
}

/** One garbage collection (see the module comment). Throws GcLockedError when another one runs. */
export async function collectGarbage(store: Store, options: GcOptions = {}): Promise<GcReport> {
  const lock = await store.claims.lock();
  try {
    return await collect(store, options, lock);
  } finally {
    await lock.release();
  }
}

async function collect(store: Store, options: GcOptions, lock: GcLock): Promise<GcReport> {
  const startedAt = options.now ?? Date.now();
  const clock = performance.now();
  const dryRun = !!options.dryRun;
  const restoredFromCrash = dryRun ? 0 : await store.claims.restoreAll();
  const graceMs = options.graceMs ?? 3_600_000;
  const cutoff = await gcCutoff(store, startedAt, graceMs);
  const linkCutoff = await gcCutoff(store, startedAt, options.linkGraceMs ?? graceMs);
  const documents = new Map<Digest, DocumentRefs>();
  const markOptions: MarkOptions = {
    cutoff: linkCutoff,
    untaggedAreGarbage: !!options.deleteUntagged,
    ...(options.extraRoots ? { extraRoots: [...options.extraRoots] } : {}),
    registryOnly: !!options.registryOnly,
    documents,
  };
  const first = await markReachable(store, markOptions);
  const report: GcReport = {
    startedAt,
    cutoff,
    linkCutoff,
    durationMs: 0,
    dryRun,
    blobsDeleted: 0,
    bytesReclaimed: 0,
    deletedDigests: [],
    manifestsDeleted: [],
    blobsKept: 0,
    restoredFromCrash,
    uploadsExpired: 0,
    blobsMarked: first.marked.size,
    blobsTotal: 0,
    repositories: first.repositories,
    manifests: first.manifests,
  };
  // untagged manifests go first: their blobs become candidates below
  for (const { repository, digest } of first.unreachedManifests) {
    const linkedAt = (await store.repositories.manifestLinkedAt(repository, digest))?.getTime();
    if (linkedAt === undefined || linkedAt >= linkCutoff) continue;
    if (!dryRun) await store.repositories.unlinkManifest(repository, digest).catch(() => undefined);
    report.manifestsDeleted.push({ repository, digest });
  }
  const unmarked: Digest[] = [];
  for await (const digest of store.blobs.list()) {
    report.blobsTotal++;
    if (!first.marked.has(digest)) unmarked.push(digest);
  }
  const infos = await mapLimit(unmarked, IO_CONCURRENCY, (d) => blobFileInfo(store, d));
  const candidates: Digest[] = [];
  const sizes = new Map<Digest, number>();
  unmarked.forEach((digest, i) => {
    const info = infos[i];
    if (!info || info.modTime.getTime() >= cutoff) return;
    candidates.push(digest);
    sizes.set(digest, info.size);
  });
  if (dryRun) {
    report.blobsDeleted = candidates.length;
    report.deletedDigests = candidates;
    for (const s of sizes.values()) report.bytesReclaimed += s;
  } else {
    const swept = await sweepBlobs(store, candidates, { cutoff, mark: markOptions, onClaimed: options.onClaimed, onMarkedAgain: options.onMarkedAgain, lock });
    report.blobsDeleted = swept.deleted.length;
    report.deletedDigests = swept.deleted;
    report.bytesReclaimed = swept.bytes;
    report.blobsKept = swept.kept.length;
    if (options.uploadExpiryMs !== undefined) report.uploadsExpired = (await store.ingests.expire(options.uploadExpiryMs, startedAt)).length;
  }
  report.durationMs = Math.round(performance.now() - clock);
  return report;
}
