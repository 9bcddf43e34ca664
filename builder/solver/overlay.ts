import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ChainID } from '../../oci/index.js';
import type { Snapshot, SnapshotStore, Store } from '../../store/index.js';
import { mountAll, overlayMount, runInContainer, trackDir, trackMount, unmount, type Mount, type RunOptions, type RunResult } from '../exec/index.js';
import { openSnapshots } from '../snapshot/index.js';

/**
 * The one place snapshot chains become mounts (containerd's Snapshotter `prepare`/`view` → `Mount[]`):
 * builder/exec only performs the mounts it is handed.
 */

/** The mounts of a read-only view of a chain: one overlay whose `l/<short>` lowerdirs resolve against the snapshots root. */
export async function viewSnapshot(snapshots: SnapshotStore, top: ChainID | undefined): Promise<Mount[]> {
  const { links } = await lowersOf(snapshots, top);
  return [overlayMount({ lowers: links, cwd: snapshots.root, readonly: true })];
}

/** A writable snapshot over a chain: its mounts and the dirs they write to. */
export interface PreparedSnapshot {
  mounts: Mount[];
  upper: string;
  work: string;
  /** Removes the work dir (the upper dir stays: it holds the changes). */
  release(): Promise<void>;
}

/**
 * Prepares a writable snapshot over `top` whose changes land in `upper` (created when missing): the overlay
 * mount plus a fresh work dir beside `upper` (same filesystem, named for the sweep: `tmp-work-<pid>-<hex>`).
 */
export async function prepareSnapshot(snapshots: SnapshotStore, top: ChainID | undefined, upper: string): Promise<PreparedSnapshot> {
  const { links } = await lowersOf(snapshots, top);
  const work = join(dirname(upper), `tmp-work-${process.pid}-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(upper, { recursive: true });
  await fs.mkdir(work, { recursive: true });
  const untrack = trackDir(work);
  return {
    mounts: [overlayMount({ lowers: links, upper, work, cwd: snapshots.root })],
    upper,
    work,
    release: async () => {
      await fs.rm(work, { recursive: true, force: true });
      untrack();
    },
  };
}

/** Mounts a snapshot's mounts at `target`. */
async function mountAt(target: string, mounts: Mount[]): Promise<void> {
  await mountAll(mounts, target);
}

/** `runInContainer` options with the rootfs given as a snapshot chain and the upper dir that receives the step's changes. */
export type SnapshotRunOptions = Omit<RunOptions, 'rootfs' | 'runRoot' | 'cacheRoot'> & {
  /** The step's parent snapshot chain; nothing for `FROM scratch`. */
  lowers?: ChainID | undefined;
  /** A fresh, empty dir that receives the step's changes (e.g. from `snapshots.tempDir('upper')`). */
  upperDir: string;
};

/** Runs a RUN step on a prepared snapshot of `lowers`, with the run and cache dirs of `store`. */
export async function runOnSnapshot(store: Store, options: SnapshotRunOptions): Promise<RunResult> {
  const { lowers, upperDir, ...rest } = options;
  const snapshot = await prepareSnapshot(await openSnapshots(store), lowers, upperDir);
  try {
    return await runInContainer({ ...rest, rootfs: snapshot.mounts, runRoot: await store.localDir('tmp'), cacheRoot: await store.localDir('cache') });
  } finally {
    await snapshot.release();
  }
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
    await mountAt(merged, [overlayMount({ lowers: links, upper, work, cwd: snapshots.root })]);
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
    await mountAt(merged, [overlayMount({ lowers: links, cwd: snapshots.root, readonly: true })]);
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
