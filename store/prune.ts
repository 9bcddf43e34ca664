/**
 * `tsbuild prune`: docker's `system prune` for a daemonless store — build cache and unreferenced content;
 * with `all`, images without a name and all build cache too (docker's `-a`). Then a garbage collection
 * (store/gc.ts) deletes every blob nothing holds any more, so `rmi` followed by `prune` gives the disk back.
 *
 * - Build cache records (`<root>/cache/build`): without `all`, those whose layer no image holds (docker's
 *   "dangling" cache); with `all`, every one. `untilMs` spares records younger than that (docker's
 *   `--filter until=`); `keepStorage` removes the oldest first and stops once the build cache's bytes fit.
 * - Images built without a name (`<root>/cache/built-images`): with `all` only.
 * - Unpacked layers (`<root>/snapshots`) no remaining image uses; with `all`, the other cache dirs
 *   (context hashes, layer twins, imported caches, RUN cache mounts).
 * While a build runs (a live lease) no build cache or snapshot is touched, and the GC spares what the
 * build wrote. Named local images, registry repositories and mirror pins are never removed by prune.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { ChainID, Digest } from '../oci/index.js';
import { collectGarbage, gcCutoff, sweepBlobs, type GcReport } from './gc.js';
import { liveLeases } from './leases.js';
import { buildRecords, builtImageRecords, imageHoldings, otherCacheEntries, snapshotDirs, treeBytes, type RecordFile } from './local-state.js';
import { markReachable, type DocumentRefs } from './reachability.js';
import type { Store } from './store.js';

export interface PruneOptions {
  /** Images without a name and all build cache too. */
  all?: boolean;
  /** Only what is older than this many ms (records, images and snapshots by their file time). */
  untilMs?: number;
  /** Keep up to this many bytes of build cache (oldest records go first). */
  keepStorage?: number;
  /** Passed to the GC: no blob written within this many ms is deleted. Default 0 (builds hold leases). */
  graceMs?: number;
  /** Nothing a registry push linked within this many ms is deleted. Default 1 h (the registry's gc.grace-period). */
  linkGraceMs?: number;
  /** Digests held besides the store's own roots (mirror pins). */
  extraRoots?: Iterable<Digest>;
  now?: number;
}

export interface PruneReport {
  cacheRecords: number;
  untaggedImages: number;
  snapshots: number;
  snapshotBytes: number;
  cacheDirBytes: number;
  /** Nothing of the build cache was touched: a build is running. */
  buildRunning: boolean;
  gc: GcReport;
  /** Everything freed: blobs, snapshots and cache dirs. */
  bytesReclaimed: number;
}

async function removeFile(path: string): Promise<void> {
  await fs.rm(path, { recursive: true, force: true });
}

/** Prunes the local store (see the module comment). Throws GcLockedError when a GC is running. */
export async function pruneLocal(store: Store, options: PruneOptions = {}): Promise<PruneReport> {
  const now = options.now ?? Date.now();
  const old = (modTime: number) => options.untilMs === undefined || now - modTime >= options.untilMs;
  const buildRunning = (await liveLeases(store.root)).some((l) => l.purpose === 'build' || l.purpose === 'unknown');
  const report = { cacheRecords: 0, untaggedImages: 0, snapshots: 0, snapshotBytes: 0, cacheDirBytes: 0, buildRunning };
  if (!buildRunning) {
    const docs = new Map<Digest, DocumentRefs>();
    const named = new Set((await store.images.list()).map((r) => r.digest));
    // images without a name
    const keptImages: Digest[] = [...named];
    for (const rec of await builtImageRecords(store)) {
      if (!rec.digest) continue;
      if (options.all && !named.has(rec.digest) && old(rec.modTime)) {
        await removeFile(rec.file);
        report.untaggedImages++;
      } else keptImages.push(rec.digest);
    }
    const imageBlobs = new Set<Digest>();
    const imageChains = new Set<ChainID>();
    for (const d of new Set(keptImages)) {
      const held = await imageHoldings(store, d, docs);
      for (const b of held.blobs) imageBlobs.add(b);
      for (const c of held.chains) imageChains.add(c);
    }
    // build cache records
    const records = await buildRecords(store);
    const removable = records.filter((r) => (options.all || !r.digest || !imageBlobs.has(r.digest)) && old(r.modTime));
    let doomed: RecordFile[] = removable;
    if (options.keepStorage !== undefined) {
      const sizeOf = async (r: RecordFile) => (r.digest && !imageBlobs.has(r.digest) ? ((await store.blobs.stat(r.digest))?.size ?? 0) : 0);
      let cacheBytes = 0;
      const sizes = new Map<RecordFile, number>();
      for (const r of records) {
        const s = await sizeOf(r);
        sizes.set(r, s);
        cacheBytes += s;
      }
      doomed = [];
      for (const r of [...removable].sort((a, b) => a.modTime - b.modTime)) {
        if (cacheBytes <= options.keepStorage) break;
        doomed.push(r);
        cacheBytes -= sizes.get(r)!;
      }
    }
    for (const r of doomed) await removeFile(r.file);
    report.cacheRecords = doomed.length;
    // unpacked layers no image uses
    const keepHex = new Set([...imageChains].map((c) => c.slice(7)));
    for (const snap of await snapshotDirs(store)) {
      if (keepHex.has(snap.hex) || !old(snap.modTime)) continue;
      if (options.keepStorage !== undefined && !options.all) continue;
      report.snapshotBytes += await treeBytes(snap.path);
      const link = await fs.readFile(join(snap.path, 'link'), 'utf8').catch(() => '');
      if (link.trim()) await removeFile(join(store.root, 'snapshots', 'l', link.trim()));
      await removeFile(snap.path);
      report.snapshots++;
    }
    if (options.all) {
      for (const entry of await otherCacheEntries(store)) {
        if (!old(entry.modTime)) continue;
        report.cacheDirBytes += await treeBytes(entry.path);
        await removeFile(entry.path);
      }
    }
  }
  // upload sessions silent for a day are abandoned (the registry's uploads.expire-after default)
  const gc = await collectGarbage(store, {
    graceMs: options.graceMs ?? 0,
    linkGraceMs: options.linkGraceMs ?? 3_600_000,
    now,
    uploadExpiryMs: 24 * 3_600_000,
    ...(options.extraRoots ? { extraRoots: options.extraRoots } : {}),
  });
  return { ...report, gc, bytesReclaimed: gc.bytesReclaimed + report.snapshotBytes + report.cacheDirBytes };
}

export interface RemovedContent {
  blobs: number;
  bytes: number;
  snapshots: number;
}

/**
 * After `rmi` took an image's last name: deletes what only it held, as docker's `rmi` does ("Deleted:
 * sha256:…"): its built-image record, its blobs nothing else holds (other images, build cache records,
 * registry repositories, pins), its unpacked layers no other image uses. Nothing while another name
 * still points at `digest`.
 */
export async function removeImageContent(store: Store, digest: Digest, options: { extraRoots?: Iterable<Digest> } = {}): Promise<RemovedContent> {
  const out: RemovedContent = { blobs: 0, bytes: 0, snapshots: 0 };
  const records = await store.images.list();
  if (records.some((r) => r.digest === digest)) return out;
  for (const rec of await builtImageRecords(store)) if (rec.digest === digest) await removeFile(rec.file);
  const docs = new Map<Digest, DocumentRefs>();
  const mine = await imageHoldings(store, digest, docs);
  const cutoff = await gcCutoff(store, Date.now(), 0);
  // a registry push under way (links of the last hour) keeps its blobs, as in prune
  const mark = {
    cutoff: await gcCutoff(store, Date.now(), 3_600_000),
    documents: docs,
    ...(options.extraRoots ? { extraRoots: [...options.extraRoots] } : {}),
  };
  const held = (await markReachable(store, mark)).marked;
  const swept = await sweepBlobs(
    store,
    [...mine.blobs].filter((d) => !held.has(d)),
    { cutoff, mark },
  );
  out.blobs = swept.deleted.length;
  out.bytes = swept.bytes;
  if (!(await liveLeases(store.root)).some((l) => l.purpose === 'build' || l.purpose === 'unknown')) {
    const others = new Set<string>();
    for (const r of records) for (const c of (await imageHoldings(store, r.digest, docs)).chains) others.add(c.slice(7));
    for (const rec of await builtImageRecords(store))
      if (rec.digest) for (const c of (await imageHoldings(store, rec.digest, docs)).chains) others.add(c.slice(7));
    for (const chain of mine.chains) {
      const hex = chain.slice(7);
      if (others.has(hex)) continue;
      const path = join(store.root, 'snapshots', hex);
      const link = await fs.readFile(join(path, 'link'), 'utf8').catch(() => undefined);
      if (link === undefined) continue;
      out.bytes += await treeBytes(path);
      if (link.trim()) await removeFile(join(store.root, 'snapshots', 'l', link.trim()));
      await removeFile(path);
      out.snapshots++;
    }
  }
  return out;
}
