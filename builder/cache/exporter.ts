import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { MediaType, parseNormalized, type Descriptor, type Digest, type ImageManifest } from '../../oci/index.js';
import { exportOciLayout, type Store } from '../../store/index.js';
import type { RegistryClient } from '../../registry/client/index.js';
import { commitUpperDir } from '../snapshot/index.js';
import { encodeLayers, type ImageLayer } from '../image/index.js';
import { CACHE_CONFIG_MEDIA_TYPE, UNCOMPRESSED_ANNOTATION, type CacheConfig, type CacheLayer, type CacheRecord } from './format.js';
import type { CacheEncoding, CacheExportSpec } from './spec.js';

const GZIP = { compression: 'gzip', level: 6, force: false, family: 'oci' } as const;
const GZIP_CACHE: CacheEncoding = { compression: 'gzip', force: false };

/** What a build hands the exporter: its step records and, for mode=max, its cache mount dirs. */
export interface CacheContents {
  /** Step key → record, in build order. */
  records: Map<Digest, CacheRecord>;
  /** Cache mount id → its dir on this machine (exported with mode=max). */
  mounts: Map<string, string>;
  /** An always empty dir (the lower a mount dir's tar is taken against). */
  emptyDir: string;
  sourceDateEpoch?: number;
}

/** The cache config and the blobs it lists (compressed as asked, in the store), in layer order. */
async function cacheConfigOf(
  store: Store,
  contents: CacheContents,
  withMounts: boolean,
  encoding: CacheEncoding,
): Promise<{ config: CacheConfig; blobs: Descriptor[] }> {
  const uncompressed: Descriptor[] = [];
  const diffIds: string[] = [];
  const indexOf = new Map<string, number>();
  for (const r of contents.records.values()) {
    if (!r.layer || indexOf.has(r.layer.diffID)) continue;
    indexOf.set(r.layer.diffID, uncompressed.length);
    uncompressed.push(r.layer.descriptor);
    diffIds.push(r.layer.diffID);
  }
  const blobs = await encodeLayers(store, uncompressed, { ...encoding, family: 'oci' });
  const layers: CacheLayer[] = blobs.map((b, i) => ({ blob: b.digest, parent: -1, annotations: { [UNCOMPRESSED_ANNOTATION]: diffIds[i]! } }));
  const config: CacheConfig = {
    layers,
    records: [...contents.records].map(([key, r]) => ({
      digest: key,
      results: [{ layer: r.layer ? indexOf.get(r.layer.diffID)! : -1, ...(r.created ? { createdAt: r.created } : {}) }],
    })),
  };
  if (withMounts && contents.mounts.size) {
    config['tsbuild.cacheMounts'] = [];
    for (const [id, dir] of contents.mounts) {
      const commit = await commitUpperDir(store, {
        upper: dir,
        lowers: [contents.emptyDir],
        compression: encoding.compression,
        ...(encoding.compression === 'gzip' && encoding.level !== undefined ? { gzipLevel: encoding.level } : {}),
        ...(contents.sourceDateEpoch !== undefined ? { sourceDateEpoch: contents.sourceDateEpoch } : {}),
      });
      config['tsbuild.cacheMounts'].push({ id, layer: layers.length });
      layers.push({ blob: commit.descriptor.digest, parent: -1, annotations: { [UNCOMPRESSED_ANNOTATION]: commit.diffId } });
      blobs.push(commit.descriptor);
    }
  }
  return { config, blobs };
}

/** The cache as an OCI manifest in the store (config: the cache config; layers: its blobs). */
async function writeCacheManifest(
  store: Store,
  contents: CacheContents,
  withMounts: boolean,
  encoding: CacheEncoding,
): Promise<{ digest: Digest; size: number; records: number; layers: number }> {
  const { config, blobs } = await cacheConfigOf(store, contents, withMounts, encoding);
  const configBlob = await store.blobs.put(JSON.stringify(config));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: configBlob.digest, size: configBlob.size },
    layers: blobs.map((b, i) => ({
      mediaType: b.mediaType,
      digest: b.digest,
      size: b.size,
      annotations: { [UNCOMPRESSED_ANNOTATION]: config.layers[i]!.annotations[UNCOMPRESSED_ANNOTATION] },
    })),
  };
  const written = await store.blobs.put(JSON.stringify(manifest));
  return { ...written, records: config.records.length, layers: blobs.length };
}

/**
 * Writes one `--cache-to` (registry or local; inline goes through `inlineCacheConfig`). Returns a short
 * description for the progress line. mode=max carries cache mounts; min leaves them out (the caller
 * passes only the final image's records for min).
 */
export async function exportCache(
  store: Store,
  spec: Exclude<CacheExportSpec, { type: 'inline' }>,
  contents: CacheContents,
  client: () => Promise<RegistryClient>,
): Promise<string> {
  const written = await writeCacheManifest(store, contents, spec.mode === 'max', spec.encoding ?? GZIP_CACHE);
  const what = `${written.records} records, ${written.layers} blobs`;
  if (spec.type === 'local') {
    await exportOciLayout(
      store.blobs,
      resolve(spec.dest),
      [{ digest: written.digest, mediaType: MediaType.ociManifest, size: written.size, tag: spec.tag }],
      store.driver.localPath ? (d) => store.blobFile(d)! : undefined,
    );
    return what;
  }
  const { pushImage } = await import('../../registry/client/index.js');
  // pushImage sends a named local manifest: the cache gets a name for the length of the push
  const temp = parseNormalized(`tsbuild.invalid/cache-export:${randomBytes(6).toString('hex')}`);
  await store.images.set(temp, written.digest, MediaType.ociManifest);
  try {
    await pushImage(await client(), store, `tsbuild.invalid/cache-export:${temp.tag}`, spec.ref);
  } finally {
    await store.images.remove(`tsbuild.invalid/cache-export:${temp.tag}`).catch(() => undefined);
  }
  return what;
}

/**
 * The inline cache of an image (BuildKit's `moby.buildkit.cache.v0` config value): the final image's
 * records, whose layers are the image's own layers as they are pushed (gzip, compressed here once and
 * kept as twins, so the push sends the same blobs).
 */
export async function inlineCacheConfig(store: Store, imageLayers: ImageLayer[], records: Map<Digest, CacheRecord>): Promise<string> {
  const blobs = await encodeLayers(
    store,
    imageLayers.map((l) => l.descriptor),
    GZIP,
  );
  const indexOf = new Map(imageLayers.map((l, i) => [l.diffID as string, i]));
  const config: CacheConfig = {
    layers: blobs.map((b, i) => ({ blob: b.digest, parent: i - 1, annotations: { [UNCOMPRESSED_ANNOTATION]: imageLayers[i]!.diffID } })),
    records: [...records]
      .filter(([, r]) => !r.layer || indexOf.has(r.layer.diffID))
      .map(([key, r]) => ({ digest: key, results: [{ layer: r.layer ? indexOf.get(r.layer.diffID)! : -1, ...(r.created ? { createdAt: r.created } : {}) }] })),
  };
  return Buffer.from(JSON.stringify(config)).toString('base64');
}
