import { promises as fs } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { layerCompression, mapLimit, parseDigest, type Descriptor, type Digest, type ImageManifest, type LayerCompression } from '../../oci/index.js';
import { resolveImage, tempName, type Store } from '../../store/index.js';
import { compressor, decompress } from '../snapshot/index.js';
import { configTypeIn, manifestTypeIn, renameLayerType, layerTypeIn, type MediaFamily } from './media-family.js';
import type { LayerEncoding } from './output-spec.js';
import type { WrittenImage } from './write-image.js';

const DEFAULT_LEVEL: Record<LayerCompression, number> = { gzip: 6, zstd: 3, none: 0 };

async function twinsDir(store: Store): Promise<string> {
  const twins = join(await store.localDir('cache'), 'layer-twins');
  await fs.mkdir(twins, { recursive: true });
  return twins;
}

/**
 * Records `twin` as the compressed copy of the uncompressed layer `layer` (e.g. a gzip blob a cache import
 * fetched and unpacked), so an output or push needing that compression sends it as it is.
 */
export async function rememberLayerTwin(
  store: Store,
  layer: Digest,
  compression: LayerCompression,
  twin: Descriptor,
  level = DEFAULT_LEVEL[compression],
): Promise<void> {
  const record = join(await twinsDir(store), `${layer.slice(7)}-${compression}-${level}`);
  const tmp = tempName(record);
  await fs.writeFile(tmp, JSON.stringify({ mediaType: layerTypeIn('oci', compression), digest: twin.digest, size: twin.size }));
  await fs.rename(tmp, record);
}

/** Layers in one encoding, compressed in parallel (each once, ever) — for outputs and cache exports. */
export async function encodeLayers(store: Store, layers: Descriptor[], enc: LayerEncoding): Promise<Descriptor[]> {
  const twins = await twinsDir(store);
  return mapLimit(layers, compressionParallelism(), (layer) => encodeLayer(store, twins, layer, enc));
}

/** zlib compresses on libuv's threads: one layer per core. */
function compressionParallelism(): number {
  return Math.max(2, availableParallelism());
}

/** One layer in the requested encoding: compressed (once; remembered in `twins`) or as it is. */
async function encodeLayer(store: Store, twins: string, layer: Descriptor, enc: LayerEncoding): Promise<Descriptor> {
  const have = layerCompression(layer.mediaType);
  // BuildKit keeps a layer that is already compressed unless force-compression is set.
  if (have === undefined || have === enc.compression || (have !== 'none' && !enc.force)) {
    if (have === 'zstd' && enc.family === 'docker') {
      throw new Error(
        `layer ${layer.digest} is zstd-compressed, which docker media types cannot name: use oci-mediatypes=true, or force-compression=true with gzip`,
      );
    }
    return { mediaType: renameLayerType(layer.mediaType, enc.family), digest: layer.digest, size: layer.size };
  }
  const level = enc.level ?? DEFAULT_LEVEL[enc.compression];
  const record = join(twins, `${layer.digest.slice(7)}-${enc.compression}-${level}`);
  let twin: Descriptor | undefined;
  try {
    const known = JSON.parse(await fs.readFile(record, 'utf8')) as Descriptor;
    if (await store.blobs.has(known.digest)) twin = known;
  } catch {
    // not encoded this way before
  }
  if (!twin) {
    let source: Readable = await store.blobs.read(layer.digest);
    if (enc.onProgress) {
      let done = 0;
      const report = enc.onProgress;
      const raw = source;
      const counted = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          report(layer.digest, (done += chunk.length), layer.size);
          cb(null, chunk);
        },
      });
      raw.on('error', (e) => counted.destroy(e));
      source = raw.pipe(counted);
    }
    if (have !== 'none') source = await decompress(source, have);
    const squeeze = compressor(enc.compression, enc.compression === 'zstd' ? { zstdLevel: level } : { gzipLevel: level });
    if (squeeze) source.on('error', (e) => squeeze.destroy(e));
    const blob = await store.blobs.write(squeeze ? source.pipe(squeeze) : source, { sizeHint: layer.size });
    twin = { mediaType: layerTypeIn('oci', enc.compression), digest: blob.digest, size: blob.size };
    const tmp = tempName(record);
    await fs.writeFile(tmp, JSON.stringify(twin));
    await fs.rename(tmp, record);
  }
  return { mediaType: renameLayerType(twin.mediaType, enc.family), digest: twin.digest, size: twin.size };
}

/**
 * The image as an output wants it: layers compressed as asked (they stay uncompressed in the store while
 * building — gzip would be most of a build) and every media type in one family. The config, and so the
 * image id and diff_ids, is the same. Each layer is encoded once per compression and level, ever.
 */
export async function withLayerEncoding(store: Store, manifestDigest: Digest, enc: LayerEncoding): Promise<WrittenImage> {
  const image = await resolveImage(store.blobs, manifestDigest);
  const layers = await encodeLayers(store, image.manifest.layers, enc);
  const family: MediaFamily = enc.family;
  const { annotations, subject, artifactType } = image.manifest;
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: manifestTypeIn(family),
    config: { mediaType: configTypeIn(family), digest: image.manifest.config.digest, size: image.manifest.config.size },
    layers,
    // docker's schema 2 has no annotations, subject or artifactType
    ...(family === 'oci' ? { ...(artifactType ? { artifactType } : {}), ...(subject ? { subject } : {}), ...(annotations ? { annotations } : {}) } : {}),
  };
  const written = await store.blobs.put(JSON.stringify(manifest));
  return { digest: written.digest, size: written.size, mediaType: manifest.mediaType!, configDigest: parseDigest(image.manifest.config.digest), manifest };
}

/** What goes to a registry (`--push`): OCI types, gzip layers (level 6). */
export function withGzipLayers(store: Store, manifestDigest: Digest, gzipLevel = 6, onProgress?: LayerEncoding['onProgress']): Promise<WrittenImage> {
  return withLayerEncoding(store, manifestDigest, {
    compression: 'gzip',
    level: gzipLevel,
    force: false,
    family: 'oci',
    ...(onProgress ? { onProgress } : {}),
  });
}
