/**
 * The builder's local state under the store root as prune and `system df` see it: images (named, and
 * built without a name), their unpacked layers (snapshots), build cache records and the other cache dirs.
 * Layouts are the builder's (builder/cache/format.ts, builder/image/built-images.ts, store/snapshots.ts).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parseDigest, type ChainID, type Digest, type DiffID } from '../oci/index.js';
import { documentRefs, type DocumentRefs } from './reachability.js';
import { chainIdsOf } from './snapshots.js';
import { SPREAD_MARKER } from './spread-dirs.js';
import type { Store } from './store.js';

/** Bytes of the files under `path` (apparent sizes, as `du -b`; directories count 0). */
export async function treeBytes(path: string): Promise<number> {
  let total = 0;
  const visit = async (p: string): Promise<void> => {
    let st;
    try {
      st = await fs.lstat(p);
    } catch {
      return;
    }
    if (!st.isDirectory()) {
      total += st.size;
      return;
    }
    for (const name of await fs.readdir(p).catch(() => [] as string[])) await visit(join(p, name));
  };
  await visit(path);
  return total;
}

/** A JSON record file under `<root>/cache/<kind>`. */
export interface RecordFile {
  file: string;
  /** ms since the epoch */
  modTime: number;
  digest?: Digest;
}

/** The records of `<root>/cache/<kind>` with the digest `pick` finds in each (temp names skipped). */
export async function recordFiles(store: Store, kind: 'build' | 'built-images', pick: (r: any) => unknown): Promise<RecordFile[]> {
  const dir = join(store.root, 'cache', kind);
  const out: RecordFile[] = [];
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!/^[a-f0-9]{64}$/.test(name)) continue;
    const file = join(dir, name);
    try {
      const st = await fs.stat(file);
      const value = pick(JSON.parse(await fs.readFile(file, 'utf8')));
      out.push({ file, modTime: st.mtimeMs, ...(typeof value === 'string' ? { digest: parseDigest(value) } : {}) });
    } catch {
      // damaged or vanished
    }
  }
  return out;
}

export const buildRecords = (store: Store) => recordFiles(store, 'build', (r) => r.layer?.descriptor?.digest);
export const builtImageRecords = (store: Store) => recordFiles(store, 'built-images', (r) => r.digest);

/** A local image's manifest digest → its blobs (manifests, configs, layers) and its snapshot chainIDs. */
export interface ImageHoldings {
  blobs: Set<Digest>;
  chains: Set<ChainID>;
}

/** What one image (manifest or index digest) holds locally; an unreadable part holds nothing more. */
export async function imageHoldings(store: Store, digest: Digest, docs: Map<Digest, DocumentRefs>): Promise<ImageHoldings> {
  const out: ImageHoldings = { blobs: new Set(), chains: new Set() };
  const stack = [digest];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (out.blobs.has(d)) continue;
    out.blobs.add(d);
    const refs = await documentRefs(store, d, docs);
    stack.push(...refs.children);
    for (const b of refs.blobs) out.blobs.add(b);
    if (refs.blobs.length > 0) {
      try {
        const config = await store.blobs.readJson<{ rootfs?: { diff_ids?: string[] } }>(refs.blobs[0]!);
        for (const c of chainIdsOf((config.rootfs?.diff_ids ?? []) as DiffID[])) out.chains.add(c);
      } catch {
        // config missing: no snapshots to hold
      }
    }
  }
  return out;
}

/** A snapshot directory under `<root>/snapshots`: its chainID hex and when it was made. */
export interface SnapshotDir {
  hex: string;
  path: string;
  modTime: number;
}

export async function snapshotDirs(store: Store): Promise<SnapshotDir[]> {
  const root = join(store.root, 'snapshots');
  const out: SnapshotDir[] = [];
  for (const name of await fs.readdir(root).catch(() => [] as string[])) {
    if (!/^[a-f0-9]{64}$/.test(name)) continue;
    const path = join(root, name);
    const st = await fs.stat(path).catch(() => undefined);
    if (st?.isDirectory()) out.push({ hex: name, path, modTime: st.mtimeMs });
  }
  return out;
}

/** Cache dirs other than build records and built images: context hashes, layer twins, imported caches, RUN cache mounts. */
export async function otherCacheEntries(store: Store): Promise<{ path: string; modTime: number }[]> {
  const root = join(store.root, 'cache');
  const out: { path: string; modTime: number }[] = [];
  for (const name of await fs.readdir(root).catch(() => [] as string[])) {
    if (name === 'build' || name === 'built-images' || name === SPREAD_MARKER) continue;
    const path = join(root, name);
    const st = await fs.lstat(path).catch(() => undefined);
    if (st) out.push({ path, modTime: st.mtimeMs });
  }
  return out;
}
