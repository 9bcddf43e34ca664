import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { layerCompression } from '../../oci/index.js';
import { tempName, type Store } from '../../store/index.js';
import { unpackLayer } from '../snapshot/index.js';
import type { ImportedCache } from './importer.js';

async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  const names = await fs.readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : undefined));
  return names !== undefined && names.length === 0;
}

/**
 * Fills a `RUN --mount=type=cache` dir from an imported cache (tsbuild's extension of BuildKit's cache:
 * the mount's contents travel as a layer per mount id). Only a dir this machine has not used yet (absent
 * or empty) is filled, so local state always wins; the contents are unpacked beside it and renamed in.
 * Returns whether anything was restored.
 */
export async function restoreCacheMount(store: Store, sources: ImportedCache[], id: string, dir: string): Promise<boolean> {
  const source = sources.find((s) => s.mounts.has(id));
  if (!source || !(await isEmptyOrAbsent(dir))) return false;
  const desc = await source.fetchMount(id);
  if (!desc) return false;
  const tmp = tempName(`${dir}-restore`);
  await fs.mkdir(dirname(dir), { recursive: true });
  await fs.mkdir(tmp);
  try {
    await unpackLayer(await store.blobs.read(desc.digest), tmp, {
      mode: 'apply',
      compression: layerCompression(desc.mediaType) ?? 'auto',
      label: `cache mount ${id}`,
    });
    if (!(await isEmptyOrAbsent(dir))) return false; // another build filled it meanwhile
    await fs.rmdir(dir).catch(() => undefined);
    await fs.rename(tmp, dir);
    return true;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
