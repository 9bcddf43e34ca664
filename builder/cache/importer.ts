import { createReadStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import {
  defaultPlatform,
  layerCompression,
  MediaType,
  parseImageDocument,
  parseNormalized,
  type Descriptor,
  type DiffID,
  type Digest,
  type ImageManifest,
} from '../../oci/index.js';
import { readLayoutIndex, selectPlatform, type Store } from '../../store/index.js';
import type { RegistryClient } from '../../registry/client/index.js';
import { decompress } from '../snapshot/index.js';
import { rememberLayerTwin } from '../image/index.js';
import { CACHE_CONFIG_MEDIA_TYPE, INLINE_CACHE_KEY, UNCOMPRESSED_ANNOTATION, validateCacheConfig, type CacheConfig, type CacheRecord } from './format.js';
import type { CacheImportSpec } from './spec.js';

/** Where the blobs of an imported cache come from: they are fetched only when a step hits. */
interface BlobSource {
  /** Puts the blob into the store (verified). */
  fetch(desc: Descriptor): Promise<void>;
  label: string;
}

/** A hit in an imported cache, before its layer is fetched. */
interface RemoteHit {
  source: ImportedCache;
  layer?: { descriptor: Descriptor; diffID: DiffID };
  created?: string;
}

/**
 * One `--cache-from` source, read: step key → result, and the cache mounts it carries. Layers stay in the
 * source until a step hits; then the blob is fetched, unpacked to the uncompressed layer the original
 * build had (so a fully cached build gives the same manifest digest), and the compressed copy is kept as
 * that layer's gzip twin (a later push or cache export sends it without compressing again).
 */
export class ImportedCache {
  private readonly records = new Map<string, { layer: number; createdAt?: string }>();
  readonly mounts = new Map<string, { descriptor: Descriptor; diffID: DiffID }>();

  private constructor(
    private readonly config: CacheConfig,
    private readonly descriptors: Descriptor[],
    private readonly blobs: BlobSource,
  ) {
    for (const r of config.records) {
      const result = r.results[0];
      if (result) this.records.set(r.digest, result);
    }
    for (const m of config['tsbuild.cacheMounts'] ?? []) {
      const layer = this.layerAt(m.layer);
      if (layer) this.mounts.set(m.id, layer);
    }
  }

  get label(): string {
    return this.blobs.label;
  }

  get size(): number {
    return this.records.size;
  }

  private layerAt(i: number): { descriptor: Descriptor; diffID: DiffID } | undefined {
    const l = this.config.layers[i];
    const descriptor = this.descriptors[i];
    if (!l || !descriptor) return undefined;
    return { descriptor, diffID: (l.annotations?.[UNCOMPRESSED_ANNOTATION] ?? descriptor.digest) as DiffID };
  }

  lookup(key: Digest): RemoteHit | undefined {
    const r = this.records.get(key);
    if (!r) return undefined;
    if (r.layer < 0) return { source: this, ...(r.createdAt ? { created: r.createdAt } : {}) };
    const layer = this.layerAt(r.layer);
    if (!layer) return undefined;
    return { source: this, layer, ...(r.createdAt ? { created: r.createdAt } : {}) };
  }

  /** The uncompressed layer in the store (fetched and unpacked when missing). */
  async materialize(store: Store, layer: { descriptor: Descriptor; diffID: DiffID }): Promise<CacheRecord['layer'] & {}> {
    const uncompressed = { mediaType: MediaType.ociLayer, digest: layer.diffID as string as Digest, size: 0 };
    const have = await store.blobs.stat(uncompressed.digest);
    if (have) return { descriptor: { ...uncompressed, size: have.size }, diffID: layer.diffID };
    const compression = layerCompression(layer.descriptor.mediaType) ?? 'gzip';
    await this.blobs.fetch(layer.descriptor);
    if (compression === 'none') {
      const info = await store.blobs.stat(layer.descriptor.digest);
      return { descriptor: { ...uncompressed, size: info!.size }, diffID: layer.diffID };
    }
    const info = await store.blobs.write(await decompress(await store.blobs.read(layer.descriptor.digest), compression), { digest: uncompressed.digest });
    await rememberLayerTwin(store, uncompressed.digest, compression, layer.descriptor).catch(() => undefined);
    return { descriptor: { ...uncompressed, size: info.size }, diffID: layer.diffID };
  }

  /** The compressed blob of a cache mount, in the store (for unpacking into the mount dir). */
  async fetchMount(id: string): Promise<Descriptor | undefined> {
    const m = this.mounts.get(id);
    if (!m) return undefined;
    await this.blobs.fetch(m.descriptor);
    return m.descriptor;
  }

  /** A cache config read from a cache manifest, or an image's inline cache. */
  static from(config: CacheConfig, descriptors: Descriptor[], blobs: BlobSource): ImportedCache {
    return new ImportedCache(config, descriptors, blobs);
  }
}

/** The cache config and blob descriptors of a cache manifest (BuildKit's image-manifest form). */
function fromCacheManifest(configBytes: Buffer, manifest: ImageManifest): { config: CacheConfig; descriptors: Descriptor[] } {
  const config = validateCacheConfig(JSON.parse(configBytes.toString('utf8')));
  const byDigest = new Map(manifest.layers.map((l) => [l.digest, l]));
  return { config, descriptors: config.layers.map((l) => byDigest.get(l.blob) ?? { mediaType: MediaType.ociLayerGzip, digest: l.blob, size: -1 }) };
}

/** An image's inline cache (`moby.buildkit.cache.v0` in its config); blobs are the image's layers. */
function fromInline(configBytes: Buffer, manifest: ImageManifest): { config: CacheConfig; descriptors: Descriptor[] } | undefined {
  const imageConfig = JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>;
  const inline = imageConfig[INLINE_CACHE_KEY];
  if (typeof inline !== 'string') return undefined;
  return fromCacheManifest(Buffer.from(inline, 'base64'), manifest);
}

/** Reads one --cache-from source. Throws a one-line reason (the caller turns it into a warning). */
export async function importCache(store: Store, spec: CacheImportSpec, client: () => Promise<RegistryClient>): Promise<ImportedCache> {
  if (spec.type === 'local') return importLocal(store, spec.src, spec.tag, spec.digest);
  const { fetchManifest, fetchBlob } = await import('../../registry/client/index.js');
  const c = await client();
  const ref = parseNormalized(spec.ref);
  let fetched = await fetchManifest(c, ref);
  if (fetched.document.kind === 'index') {
    const desc = selectPlatform(fetched.document.index, defaultPlatform());
    fetched = await fetchManifest(c, { ...ref, digest: desc.digest }, undefined, desc.digest);
  }
  if (fetched.document.kind !== 'manifest') throw new Error(`${spec.ref} is neither a cache manifest nor an image`);
  const manifest = fetched.document.manifest;
  const blobs: BlobSource = { label: spec.ref, fetch: (desc) => fetchBlob(c, store, ref, desc) };
  await blobs.fetch(manifest.config);
  const configBytes = await store.blobs.readBuffer(manifest.config.digest);
  const read = manifest.config.mediaType === CACHE_CONFIG_MEDIA_TYPE ? fromCacheManifest(configBytes, manifest) : fromInline(configBytes, manifest);
  if (!read) throw new Error(`${spec.ref} is an image without an inline cache (build it with --cache-to type=inline)`);
  return ImportedCache.from(read.config, read.descriptors, blobs);
}

/** A cache in an OCI layout dir: the manifest tagged `tag` (or the only one), or — as BuildKit's digest= — the manifest `digest`. */
async function importLocal(store: Store, dir: string, tag: string, digest?: Digest): Promise<ImportedCache> {
  const index = await readLayoutIndex(dir);
  const entry = digest
    ? (index.manifests.find((m) => m.digest === digest) ?? { digest, mediaType: MediaType.ociManifest })
    : (index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag) ??
      (index.manifests.length === 1 ? index.manifests[0] : undefined));
  if (!entry) throw new Error(`${dir} holds no cache tagged "${tag}"`);
  const blobFile = (d: Digest) => join(dir, 'blobs', d.split(':')[0]!, d.split(':')[1]!);
  if (
    digest &&
    !(await fs.access(blobFile(digest)).then(
      () => true,
      () => false,
    ))
  )
    throw new Error(`${dir} holds no manifest ${digest}`);
  const fetch = async (desc: Descriptor) => {
    if (await store.blobs.has(desc.digest)) return;
    await fs.access(blobFile(desc.digest)).catch(() => {
      throw new Error(`${dir} lacks blob ${desc.digest}`);
    });
    await store.blobs.write(createReadStream(blobFile(desc.digest), { highWaterMark: 1 << 20 }), { digest: desc.digest, size: desc.size });
  };
  const manifestBytes = await fs.readFile(blobFile(entry.digest));
  const doc = parseImageDocument(manifestBytes, { mediaType: entry.mediaType });
  if (doc.kind !== 'manifest') throw new Error(`${dir}: the cache entry is not a manifest`);
  const manifest = doc.manifest;
  const configBytes = await fs.readFile(blobFile(manifest.config.digest));
  const read = manifest.config.mediaType === CACHE_CONFIG_MEDIA_TYPE ? fromCacheManifest(configBytes, manifest) : fromInline(configBytes, manifest);
  if (!read) throw new Error(`${dir}: the entry tagged "${tag}" is not a cache`);
  return ImportedCache.from(read.config, read.descriptors, { label: dir, fetch });
}
