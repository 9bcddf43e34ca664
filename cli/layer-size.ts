import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { decompress, readTar } from '../builder/snapshot/index.js';
import type { Digest } from '../oci/index.js';
import { tempName, type Store } from '../store/index.js';

/**
 * The size docker shows for a layer (`images`, `history`): the sum of its entries' sizes, not of the tar
 * or its compression. Read once per layer and remembered under the store's cache; the blob's own size
 * when it cannot be read.
 */
export async function layerContentSize(store: Store, digest: Digest, fallback: number): Promise<number> {
  const dir = join(store.root, 'cache', 'layer-sizes');
  const file = join(dir, digest.slice(7));
  const known = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (known && /^\d+$/.test(known)) return Number(known);
  try {
    let total = 0;
    for await (const entry of readTar(await decompress(await store.blobs.read(digest)))) total += entry.header.size;
    // remembered when the store is writable (a user who may only read it counts again)
    const tmp = tempName(file);
    await fs
      .mkdir(dir, { recursive: true })
      .then(() => fs.writeFile(tmp, String(total)))
      .then(() => fs.rename(tmp, file))
      .catch(() => fs.rm(tmp, { force: true }));
    return total;
  } catch {
    return fallback;
  }
}
