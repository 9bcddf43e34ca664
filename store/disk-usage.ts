/**
 * `tsbuild system df`: what the store's bytes are, in docker's categories plus the registry's, each byte
 * counted once (in the first category that holds it, in this order), so the sizes add up to the store's
 * `du -sb` (give or take the small metadata files: links, tags, records):
 *
 * - Images: local images (named, or built without a name): their blobs and unpacked layers. Reclaimable:
 *   what only images without a name hold (`prune -a` removes them).
 * - Build cache: cache records' layers, unpacked layers no image uses, the cache dirs. All reclaimable
 *   (`prune -a`).
 * - Registry repositories / Mirror cache: blobs repositories hold through their manifests and recent links;
 *   a repository whose first name component is a registry host (`docker.io/library/busybox`, with a '.',
 *   a port as `-5000` or `localhost`) is the mirror's. Reclaimable: what only untagged manifests hold
 *   (`registry garbage-collect --delete-untagged`).
 * - Unreferenced: blobs nothing holds (any GC deletes them), and upload sessions in progress (not reclaimable).
 */
import { join } from 'node:path';
import type { Digest } from '../oci/index.js';
import { buildRecords, builtImageRecords, imageHoldings, otherCacheEntries, snapshotDirs, treeBytes } from './local-state.js';
import { markReachable, repositoryNames, type DocumentRefs } from './reachability.js';
import type { Store } from './store.js';

export interface UsageItem {
  name: string;
  size: number;
  reclaimable: number;
}

export interface UsageCategory {
  type: 'Images' | 'Build Cache' | 'Registry repositories' | 'Mirror cache' | 'Unreferenced';
  /** Images, records, repositories, blobs. */
  total: number;
  /** Those in use (named images, repositories with a tag). */
  active: number;
  size: number;
  reclaimable: number;
  /** With `verbose`: the images, records or repositories and their own bytes. */
  items?: UsageItem[];
}

export interface DiskUsage {
  categories: UsageCategory[];
  /** Sum of the categories' sizes. */
  total: number;
}

/** Whether a repository name is one the mirror caches under (its first component is a registry host). */
export function looksMirrored(name: string): boolean {
  const slash = name.indexOf('/');
  if (slash < 0) return false;
  const first = name.slice(0, slash);
  return first.includes('.') || first === 'localhost' || /-\d{1,5}$/.test(first);
}

/** Measures the store (see the module comment). Reads every document once; no lock, changes nothing. */
export async function diskUsage(store: Store, options: { verbose?: boolean } = {}): Promise<DiskUsage> {
  const docs = new Map<Digest, DocumentRefs>();
  const sizeCache = new Map<Digest, number>();
  const sizeOf = async (d: Digest) => {
    if (!sizeCache.has(d)) sizeCache.set(d, (await store.blobs.stat(d))?.size ?? 0);
    return sizeCache.get(d)!;
  };
  const counted = new Set<Digest>();
  const claim = async (digests: Iterable<Digest>): Promise<number> => {
    let n = 0;
    for (const d of digests) {
      if (counted.has(d)) continue;
      counted.add(d);
      n += await sizeOf(d);
    }
    return n;
  };
  const verbose = !!options.verbose;

  // images
  const named = await store.images.list();
  const namedDigests = new Set(named.map((r) => r.digest));
  const unnamed = (await builtImageRecords(store)).filter((r) => r.digest && !namedDigests.has(r.digest)).map((r) => r.digest!);
  const images: UsageCategory = { type: 'Images', total: 0, active: 0, size: 0, reclaimable: 0, ...(verbose ? { items: [] } : {}) };
  const chains = new Set<string>();
  const order: { name: string; digest: Digest; active: boolean }[] = [
    ...named.map((r) => ({ name: r.name, digest: r.digest, active: true })),
    ...[...new Set(unnamed)].map((d) => ({ name: `<none>@${d}`, digest: d, active: false })),
  ];
  const seenImages = new Set<Digest>();
  for (const img of order) {
    const held = await imageHoldings(store, img.digest, docs);
    let bytes = await claim(held.blobs);
    for (const c of held.chains) {
      const hex = c.slice(7);
      if (chains.has(hex)) continue;
      chains.add(hex);
      bytes += await treeBytes(join(store.root, 'snapshots', hex));
    }
    if (!seenImages.has(img.digest)) {
      seenImages.add(img.digest);
      images.total++;
      if (img.active) images.active++;
    }
    images.size += bytes;
    if (!img.active) images.reclaimable += bytes;
    images.items?.push({ name: img.name, size: bytes, reclaimable: img.active ? 0 : bytes });
  }

  // build cache
  const cache: UsageCategory = { type: 'Build Cache', total: 0, active: 0, size: 0, reclaimable: 0, ...(verbose ? { items: [] } : {}) };
  for (const rec of await buildRecords(store)) {
    const bytes = rec.digest ? await claim([rec.digest]) : 0;
    cache.total++;
    cache.size += bytes;
    cache.items?.push({ name: `record ${rec.file.slice(-64, -52)}${rec.digest ? ` layer ${rec.digest.slice(7, 19)}` : ''}`, size: bytes, reclaimable: bytes });
  }
  for (const snap of await snapshotDirs(store)) {
    if (chains.has(snap.hex)) continue;
    const bytes = await treeBytes(snap.path);
    cache.total++;
    cache.size += bytes;
    cache.items?.push({ name: `unpacked layer ${snap.hex.slice(0, 12)}`, size: bytes, reclaimable: bytes });
  }
  for (const entry of await otherCacheEntries(store)) {
    const bytes = await treeBytes(entry.path);
    cache.size += bytes;
    cache.items?.push({ name: entry.path.slice(store.root.length + 1), size: bytes, reclaimable: bytes });
  }
  cache.reclaimable = cache.size;

  // registry repositories and mirror cache
  // links of the last hour hold, as with a GC's default grace period (a push waiting for its manifest)
  const cutoff = Date.now() - 3_600_000;
  const everything = await markReachable(store, { cutoff, registryOnly: true, documents: docs });
  const tagged = await markReachable(store, { cutoff, registryOnly: true, untaggedAreGarbage: true, documents: docs });
  const registry: UsageCategory = { type: 'Registry repositories', total: 0, active: 0, size: 0, reclaimable: 0, ...(verbose ? { items: [] } : {}) };
  const mirror: UsageCategory = { type: 'Mirror cache', total: 0, active: 0, size: 0, reclaimable: 0, ...(verbose ? { items: [] } : {}) };
  for await (const name of repositoryNames(store)) {
    const category = looksMirrored(name) ? mirror : registry;
    const [manifests, links] = await Promise.all([store.repositories.listManifests(name), store.repositories.listBlobs(name)]);
    const mine = new Set<Digest>();
    const stack = [...manifests];
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (mine.has(d)) continue;
      mine.add(d);
      const refs = docs.get(d);
      if (refs) {
        stack.push(...refs.children);
        for (const b of refs.blobs) mine.add(b);
      }
    }
    for (const l of links) if (everything.marked.has(l)) mine.add(l);
    let bytes = 0;
    let reclaimable = 0;
    for (const d of mine) {
      if (counted.has(d)) continue;
      bytes += await claim([d]);
      if (!tagged.marked.has(d)) reclaimable += await sizeOf(d);
    }
    category.total++;
    if ((await store.repositories.listTags(name, { n: 1 })).items.length > 0) category.active++;
    category.size += bytes;
    category.reclaimable += reclaimable;
    category.items?.push({ name, size: bytes, reclaimable });
  }

  // unreferenced blobs and uploads
  const loose: UsageCategory = { type: 'Unreferenced', total: 0, active: 0, size: 0, reclaimable: 0, ...(verbose ? { items: [] } : {}) };
  for await (const d of store.blobs.list()) {
    if (counted.has(d)) continue;
    const bytes = await claim([d]);
    loose.total++;
    loose.size += bytes;
    loose.reclaimable += bytes;
    loose.items?.push({ name: d, size: bytes, reclaimable: bytes });
  }
  for (const id of await store.ingests.list()) {
    const bytes = (await (await store.ingests.open(id).catch(() => undefined))?.size().catch(() => 0)) ?? 0;
    loose.size += bytes;
    loose.items?.push({ name: `upload ${id}`, size: bytes, reclaimable: 0 });
  }
  const categories = [images, cache, registry, mirror, loose];
  return { categories, total: categories.reduce((n, c) => n + c.size, 0) };
}
