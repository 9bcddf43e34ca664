import { createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { ChainID } from '../../oci/index.js';
import { errnoReason, makeDirs, tempName, type SnapshotStore } from '../../store/index.js';
import type { FilesystemOutputSpec } from '../image/index.js';
import { planLayer, tarStream, unpackLayer } from '../snapshot/index.js';
import { mountReadOnly } from './overlay.js';

/**
 * buildx's local and tar exporters: the final stage's filesystem (the merged view of its snapshot chain)
 * written into a directory, or as one tar to a file or standard output. The tar is made by the same
 * writer as layers (stable order; mtimes clamped to SOURCE_DATE_EPOCH when set), against an empty lower.
 * @throws Error naming the destination when it cannot be written
 */
export async function writeFilesystem(snapshots: SnapshotStore, top: ChainID | undefined, out: FilesystemOutputSpec, sourceDateEpoch?: number): Promise<void> {
  const view = await mountReadOnly(snapshots, top);
  try {
    const plan = await planLayer({
      upper: view.root,
      lowers: [await snapshots.emptyLower()],
      ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
    });
    if (out.type === 'local') {
      await makeDirs(out.dest);
      await unpackLayer(tarStream(plan), out.dest, { mode: 'archive', compression: 'none', label: `the filesystem for ${out.dest}` });
    } else if (out.dest === '-') {
      const tar = tarStream(plan);
      for await (const chunk of tar) if (!process.stdout.write(chunk as Buffer)) await once(process.stdout, 'drain');
    } else {
      const tmp = tempName(out.dest);
      try {
        await pipeline(tarStream(plan), createWriteStream(tmp));
        await fs.rename(tmp, out.dest);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw new Error(`cannot write ${out.dest}: ${errnoReason(e)}`);
      }
    }
  } finally {
    await view.release();
  }
}
