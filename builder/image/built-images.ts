import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../../oci/index.js';
import { tempName, type Store } from '../../store/index.js';
import type { WrittenImage } from './write-image.js';

/** A built image found by its id: the manifest it was written as. */
export interface BuiltImage {
  id: Digest;
  digest: Digest;
  mediaType: string;
}

async function dir(store: Store): Promise<string> {
  const d = join(await store.localDir('cache'), 'built-images');
  await fs.mkdir(d, { recursive: true });
  return d;
}

/**
 * Remembers a built image by its id (config digest), named or not, so that `tsbuild tag $(tsbuild build -q .)
 * app:v1` finds it, as docker finds an untagged ("dangling") image by id.
 */
export async function rememberBuiltImage(store: Store, image: WrittenImage): Promise<void> {
  const file = join(await dir(store), image.configDigest.slice(7));
  const tmp = tempName(file);
  await fs.writeFile(tmp, JSON.stringify({ id: image.configDigest, digest: image.digest, mediaType: image.mediaType } satisfies BuiltImage));
  await fs.rename(tmp, file);
}

/** Built images whose id starts with `hex` (docker's short ids are 12 characters) and whose manifest is still stored. */
export async function builtImagesById(store: Store, hex: string): Promise<BuiltImage[]> {
  const out: BuiltImage[] = [];
  for (const name of await fs.readdir(await dir(store)).catch(() => [] as string[])) {
    if (!/^[a-f0-9]{64}$/.test(name) || !name.startsWith(hex)) continue;
    try {
      const image = JSON.parse(await fs.readFile(join(await dir(store), name), 'utf8')) as BuiltImage;
      if (await store.blobs.has(image.digest)) out.push(image);
    } catch {
      // being written, or damaged: not an image to find
    }
  }
  return out;
}
