import { sweepLeftovers } from '../builder/exec/index.js';
import { holdLeaseUntilExit, Store } from '../store/index.js';
import type { CommandContext } from './command.js';

/**
 * Opens the store of `--root` and sweeps what crashed tsbuild processes left in it (their runc containers,
 * overlay mounts and run dirs): every command that opens the store does, not only `build`. Holds a lease
 * (store/leases.ts) until the process exits: what the command writes before it names it (a build's
 * layers, a pull's blobs) is safe from a prune or GC running meanwhile; `build` says so, and prune then
 * leaves the build cache alone.
 */
export async function openStore(ctx: CommandContext, purpose: 'build' | 'cli' = 'cli'): Promise<Store> {
  let store: Store;
  try {
    store = await Store.open(ctx.root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw e;
    const uid = process.getuid?.();
    throw new Error(
      `cannot open the store at ${ctx.root}: permission denied to uid ${uid} (${(e as Error).message.split(', ').pop()}); run tsbuild as root, or give --root DIR (or TSBUILD_ROOT) a directory you own — building needs root in any case (overlay mounts, runc)`,
    );
  }
  await sweepLeftovers(store).catch(() => undefined);
  await holdLeaseUntilExit(store.root, purpose).catch(() => undefined);
  return store;
}
