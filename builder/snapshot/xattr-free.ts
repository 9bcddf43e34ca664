import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { ChainID } from '../../oci/index.js';
import type { Store } from '../../store/index.js';

/**
 * Snapshots known to hold no xattr that matters when they are a lower: none a layer keeps (keepXattr) and
 * no overlay opaque marker. Committing a step on lowers that are all known so needs no getfattr over them
 * (their opaque markers), and a COPY's copied-up directories bring none along — one process less per
 * layer, which under load costs more than the rest of a small COPY's commit.
 *
 * Kept as empty files `<root>/cache/xattr-free/<chainID hex>`, written when an unpack or a commit saw no
 * such xattr. A chainID names the layer contents of the whole chain, so a marker stays true for any later
 * snapshot of the same chainID; a missing one (never known, or removed by prune) only means asking again.
 */
async function markerDir(store: Store): Promise<string> {
  return join(await store.localDir('cache'), 'xattr-free');
}

export async function markXattrFree(store: Store, chainId: ChainID): Promise<void> {
  const dir = await markerDir(store);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(join(dir, chainId.slice(7)), '');
}

/** Whether every snapshot of `chain` is known to hold no xattr that matters as a lower (true for none). */
export async function allXattrFree(store: Store, chain: ChainID[]): Promise<boolean> {
  if (chain.length === 0) return true;
  const dir = await markerDir(store);
  for (const chainId of chain) {
    if (!(await fs.stat(join(dir, chainId.slice(7))).catch(() => undefined))) return false;
  }
  return true;
}
