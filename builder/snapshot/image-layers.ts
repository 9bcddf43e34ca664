import { chainIdOf, SnapshotStore, type Snapshot, type Store } from '../../store/index.js';
import { layerCompression, type ChainID, type Descriptor, type DiffID } from '../../oci/index.js';
import { unpackLayer } from './layer-unpack.js';
import { markXattrFree } from './xattr-free.js';

/** The snapshot store of a store (`<root>/snapshots`). */
export async function openSnapshots(store: Store): Promise<SnapshotStore> {
  return SnapshotStore.open(await store.localDir('snapshots'));
}

export interface LayerRef {
  descriptor: Descriptor;
  diffId: DiffID;
}

/**
 * Makes sure every layer of an image is unpacked into its snapshot (each layer once, ever), base first.
 * Returns the snapshot of the top layer, or undefined for an image without layers (`FROM scratch`).
 * The blobs must already be in the store.
 */
export async function unpackImageLayers(store: Store, snapshots: SnapshotStore, layers: LayerRef[]): Promise<Snapshot | undefined> {
  let parent: ChainID | undefined;
  let top: Snapshot | undefined;
  for (const layer of layers) {
    const chainId = chainIdOf(parent, layer.diffId);
    const parentChain: ChainID | undefined = parent;
    top = await snapshots.prepare(chainId, parentChain, async (diffDir) => {
      const blob = await store.blobs.read(layer.descriptor.digest);
      const compression = layerCompression(layer.descriptor.mediaType) ?? 'auto';
      const unpacked = await unpackLayer(blob, diffDir, { compression, expectedDiffId: layer.diffId, label: `layer ${layer.descriptor.digest}` });
      if (unpacked.xattrPaths === 0) await markXattrFree(store, chainId);
    });
    parent = chainId;
  }
  return top;
}
