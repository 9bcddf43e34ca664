import { sweepLeftovers } from '../builder/exec/index.js';
import { Store } from '../store/index.js';
import type { CommandContext } from './command.js';

/**
 * Opens the store of `--root` and sweeps what crashed tsbuild processes left in it (their runc containers,
 * overlay mounts and run dirs): every command that opens the store does, not only `build`.
 */
export async function openStore(ctx: CommandContext): Promise<Store> {
  const store = await Store.open(ctx.root);
  await sweepLeftovers(store).catch(() => undefined);
  return store;
}
