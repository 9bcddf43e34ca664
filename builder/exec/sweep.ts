import { promises as fs } from 'node:fs';
import { join, sep } from 'node:path';
import { processAlive } from '../../oci/process.js';
import type { Store } from '../../store/index.js';
import { openSnapshots } from '../snapshot/index.js';
import { sweepNetworks } from './netns.js';
import { mountPoints, unmount } from './overlay.js';
import { CONTAINER_PREFIX, deleteContainer, RUNC_ROOT } from './runc.js';

export interface SweepReport {
  containers: string[];
  networks: string[];
  mounts: string[];
  dirs: string[];
}

/** Run dirs (`run-<pid>-<hex>`) and snapshot temp dirs (`tmp-<label>-<pid>-<hex>`) name their owner. */
const OWNED = /^(?:run|tmp-[a-z]+)-(\d+)-[0-9a-f]{12}$/;

function ownerOf(name: string): number | undefined {
  const m = OWNED.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Removes what crashed tsbuild processes left behind: their runc containers, their mounts under the
 * store root (from /proc/self/mountinfo, deepest first) and their temp dirs. Live processes' things stay.
 * Every command that opens the store runs it (cli/open-store.ts); with nothing to sweep it starts no process.
 */
export async function sweepLeftovers(store: Store): Promise<SweepReport> {
  const report: SweepReport = { containers: [], networks: [], mounts: [], dirs: [] };
  // runc keeps a state dir per container under its root, named by the id: reading it costs no process
  for (const id of await fs.readdir(RUNC_ROOT).catch(() => [] as string[])) {
    if (!id.startsWith(CONTAINER_PREFIX)) continue;
    const owner = Number(id.slice(CONTAINER_PREFIX.length).split('-')[0]);
    if (!owner || owner === process.pid || processAlive(owner)) continue;
    await deleteContainer(id);
    report.containers.push(id);
  }
  report.networks = await sweepNetworks();
  const root = await fs.realpath(store.root);
  const stale = (await mountPoints())
    .filter((m) => m.startsWith(root + sep))
    .filter((m) => {
      const owner = m
        .slice(root.length + 1)
        .split(sep)
        .map(ownerOf)
        .find((o) => o !== undefined);
      return owner !== undefined && owner !== process.pid && !processAlive(owner);
    });
  for (const m of stale.reverse()) {
    await unmount(m).catch(() => undefined);
    report.mounts.push(m);
  }
  const stillMounted = new Set(await mountPoints());
  const snapshots = await openSnapshots(store);
  for (const dir of [await store.localDir('tmp'), snapshots.root]) {
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const owner = ownerOf(name);
      if (owner === undefined || owner === process.pid || processAlive(owner)) continue;
      const path = join(dir, name);
      if ([...stillMounted].some((m) => m === path || m.startsWith(path + sep))) continue; // never delete through a mount
      await fs.rm(path, { recursive: true, force: true });
      report.dirs.push(path);
    }
  }
  await snapshots.removeDanglingLinks();
  return report;
}
