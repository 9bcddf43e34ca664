import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { ChainID } from '../../oci/index.js';
import type { Snapshot, SnapshotStore } from '../../store/index.js';
import { mountOverlay, unmount } from '../exec/index.js';
import { trackDir, trackMount } from './tracked.js';

/** Mounts an overlay whose `l/<short>` lowerdirs resolve against the snapshots root (short options for 100+ layers). */
async function mountAt(snapshots: SnapshotStore, target: string, lowers: string[], upper?: { upper: string; work: string }): Promise<void> {
  await mountOverlay({ lowers, target, cwd: snapshots.root, ...(upper ? { upper: upper.upper, work: upper.work } : { readonly: true }) });
}

/** The lower dirs (short links, topmost first) of a chain; the empty dir for a rootfs without layers. */
export async function lowersOf(snapshots: SnapshotStore, top: ChainID | undefined): Promise<{ links: string[]; dirs: string[]; chain: Snapshot[] }> {
  if (!top) {
    const empty = await snapshots.emptyLower();
    return { links: [empty], dirs: [empty], chain: [] };
  }
  const chain = await snapshots.chain(top);
  return { links: chain.map((s) => s.link), dirs: chain.map((s) => s.diffDir), chain };
}

/** A writable overlay of a chain: files written to `merged` land in `upper`, which may become a snapshot. */
export interface WritableRootfs {
  merged: string;
  upper: string;
  lowers: string[];
  /** Unmounts and removes the scratch dirs except `upper`. */
  release(): Promise<void>;
  /** Removes `upper` too (when it is not adopted). */
  discard(): Promise<void>;
}

export async function mountWritable(snapshots: SnapshotStore, top: ChainID | undefined): Promise<WritableRootfs> {
  const { links, dirs } = await lowersOf(snapshots, top);
  const base = await snapshots.tempDir('step');
  const upper = join(base, 'upper');
  const work = join(base, 'work');
  const merged = join(base, 'merged');
  await Promise.all([fs.mkdir(upper), fs.mkdir(work), fs.mkdir(merged)]);
  const untrackDir = trackDir(base);
  try {
    await mountAt(snapshots, merged, links, { upper, work });
  } catch (e) {
    await fs.rm(base, { recursive: true, force: true });
    untrackDir();
    throw e;
  }
  const untrackMount = trackMount(merged);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await unmount(merged);
    untrackMount();
    await fs.rm(work, { recursive: true, force: true });
    await fs.rm(merged, { recursive: true, force: true });
  };
  return {
    merged,
    upper,
    lowers: dirs,
    release,
    discard: async () => {
      await release();
      await fs.rm(base, { recursive: true, force: true });
      untrackDir();
    },
  };
}

/** A read-only view of a chain's rootfs (for COPY --from and bind mounts). */
export interface ReadOnlyRootfs {
  root: string;
  release(): Promise<void>;
}

export async function mountReadOnly(snapshots: SnapshotStore, top: ChainID | undefined): Promise<ReadOnlyRootfs> {
  const { links } = await lowersOf(snapshots, top);
  if (links.length === 1) {
    // One layer is a complete tree already (a base layer holds no whiteouts that matter).
    const only = top ? (await snapshots.get(top))!.diffDir : links[0]!;
    return { root: only, release: async () => undefined };
  }
  const base = await snapshots.tempDir('view');
  const merged = join(base, 'merged');
  await fs.mkdir(merged);
  const untrackDir = trackDir(base);
  try {
    await mountAt(snapshots, merged, links);
  } catch (e) {
    await fs.rm(base, { recursive: true, force: true });
    untrackDir();
    throw e;
  }
  const untrackMount = trackMount(merged);
  return {
    root: merged,
    release: async () => {
      await unmount(merged);
      untrackMount();
      await fs.rm(base, { recursive: true, force: true });
      untrackDir();
    },
  };
}
