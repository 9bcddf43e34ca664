import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ChainID } from '../../oci/index.js';
import type { Snapshot, SnapshotStore } from '../../store/index.js';
import { trackDir, trackMount } from '../exec/cleanup.js';

const run = promisify(execFile);

/** Options that keep the upper dir expressible as a tar layer (see DESIGN's pitfalls). */
const LAYER_SAFE = 'redirect_dir=off,index=off,metacopy=off';

async function mountOverlay(snapshots: SnapshotStore, target: string, options: string): Promise<void> {
  // Relative `l/<short>` lowerdirs keep the option string short; they resolve against cwd.
  await run('mount', ['-t', 'overlay', 'overlay', '-o', options, target], { cwd: snapshots.root }).catch((e: Error & { stderr?: string }) => {
    throw new Error(`cannot mount the overlay for this step at ${target}: ${(e.stderr || e.message).trim()}`);
  });
}

export async function unmount(target: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await run('umount', [target]);
      return;
    } catch (e) {
      const msg = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim();
      if (/not mounted|no mount point/i.test(msg)) return;
      if (attempt >= 20) {
        await run('umount', ['-l', target]).catch(() => undefined);
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
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
    await mountOverlay(snapshots, merged, `lowerdir=${links.join(':')},upperdir=${upper},workdir=${work},${LAYER_SAFE}`);
  } catch (e) {
    await fs.rm(base, { recursive: true, force: true });
    untrackDir();
    throw e;
  }
  const untrackMount = trackMount(merged, unmount);
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
    await mountOverlay(snapshots, merged, `ro,lowerdir=${links.join(':')}`);
  } catch (e) {
    await fs.rm(base, { recursive: true, force: true });
    untrackDir();
    throw e;
  }
  const untrackMount = trackMount(merged, unmount);
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
