import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { layerCompression, layerMediaType, MediaType, parseDigest, type Descriptor, type Digest, type ImageManifest } from '../../oci/index.js';
import { resolveImage, tempName, type Store } from '../../store/index.js';
import { compressor } from '../snapshot/index.js';
import { mapLimit } from '../context/index.js';
import type { WrittenImage } from './write-image.js';

/**
 * Layers stay uncompressed in the store while building (gzip is the slowest part of a build); an
 * output that travels — a push — gets a variant of the image with gzip layers. The config (and so the
 * image id and diff_ids) is the same. Compressed twins are remembered, so each layer is compressed once.
 */
export async function withGzipLayers(store: Store, manifestDigest: Digest, gzipLevel = 6): Promise<WrittenImage> {
  const image = await resolveImage(store.blobs, manifestDigest);
  const twins = join(await store.localDir('cache'), 'gzip-twins');
  await fs.mkdir(twins, { recursive: true });
  const layers = await mapLimit(image.manifest.layers, 2, async (layer): Promise<Descriptor> => {
    if (layerCompression(layer.mediaType) !== 'none') return layer;
    const record = join(twins, layer.digest.slice(7));
    try {
      const known = JSON.parse(await fs.readFile(record, 'utf8')) as Descriptor;
      if (await store.blobs.has(known.digest)) return known;
    } catch {
      // not compressed before
    }
    const squeeze = compressor('gzip', { gzipLevel })!;
    const source = await store.blobs.read(layer.digest);
    source.on('error', (e) => squeeze.destroy(e));
    const blob = await store.blobs.write(source.pipe(squeeze));
    const out: Descriptor = { mediaType: layerMediaType('gzip'), digest: blob.digest, size: blob.size };
    const tmp = tempName(record);
    await fs.writeFile(tmp, JSON.stringify(out));
    await fs.rename(tmp, record);
    return out;
  });
  const manifest: ImageManifest = { ...image.manifest, mediaType: MediaType.ociManifest, layers };
  const written = await store.blobs.put(JSON.stringify(manifest));
  return { digest: written.digest, size: written.size, mediaType: MediaType.ociManifest, configDigest: parseDigest(image.manifest.config.digest), manifest };
}
