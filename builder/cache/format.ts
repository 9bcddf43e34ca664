import type { Descriptor, DiffID, Digest } from '../../oci/index.js';

/**
 * What a cached step produced — one file per step under `<root>/cache/build/<key hex>` (JSON):
 *
 *   { "layer": { "descriptor": { mediaType, digest, size }, "diffID": "sha256:…" },   // absent for empty steps
 *     "emptyLayer": false,
 *     "created": "2024-01-01T00:00:00Z" }                                            // the step's history time
 *
 * `layer.descriptor.digest` is the only blob a record holds, and it does hold it: records are GC roots
 * (store/reachability.ts), so a garbage collection keeps a cached layer while its record exists; `tsbuild
 * prune` removes the records (those no image holds, or all of them) and a GC then frees their layers. A
 * record whose blob is gone anyway (removed by hand, a damaged store) reads as a miss. The key is the step's cache
 * key: sha256 over the parent step's key and the normalized instruction with its input checksums, so a
 * key names a whole chain of steps. Other build state under `<root>/cache`: `context-hashes/` (remembered
 * content hashes of context files), `layer-twins/` (a layer's compressed copies), `xattr-free/` (snapshots known to hold no xattr that
 * matters as a lower, builder/snapshot/xattr-free.ts), `built-images/`,
 * `imported/` (cache configs read by --cache-from, by manifest digest) and the `RUN --mount=type=cache`
 * dirs, `<sha256(id) first 32 hex>[-N]`.
 */
export interface CacheRecord {
  layer?: { descriptor: Descriptor; diffID: DiffID };
  emptyLayer: boolean;
  /** When the step ran (its history time). */
  created?: string;
}

/** BuildKit's media type of a cache config (the config blob of a cache manifest). */
export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.buildkit.cacheconfig.v0';
/** The image config key BuildKit's inline cache uses (the value is base64 of a CacheConfig). */
export const INLINE_CACHE_KEY = 'moby.buildkit.cache.v0';
/** The annotation BuildKit and containerd put the uncompressed digest of a layer in. */
export const UNCOMPRESSED_ANNOTATION = 'containerd.io/uncompressed';

/** One blob of a cache config: a layer (or a cache mount's contents), compressed as it travels. */
export interface CacheLayer {
  blob: Digest;
  /** Index of the layer below it in a chain; tsbuild writes -1 (records chain through their keys). */
  parent: number;
  annotations: { [UNCOMPRESSED_ANNOTATION]: string; [key: string]: string };
}

export interface CacheResult {
  /** Index into `layers`; -1 for a step that produced no layer (docker history's empty_layer). */
  layer: number;
  createdAt?: string;
}

export interface CacheConfigRecord {
  /** The step's cache key. */
  digest: Digest;
  results: CacheResult[];
}

/**
 * The cache config tsbuild exports (`--cache-to`), in BuildKit's `application/vnd.buildkit.cacheconfig.v0`
 * shape: `layers` (blobs with their diffID in `containerd.io/uncompressed`) and `records` (step key →
 * result layer). BuildKit links records to their parents through `inputs`; tsbuild's keys already hash the
 * parent's key, so records stand alone and `inputs` is left out. tsbuild adds `tsbuild.cacheMounts`: the
 * contents of `RUN --mount=type=cache` dirs by mount id, each a layer (mode=max only).
 *
 * Registry and local caches put it in an OCI image manifest (BuildKit's `image-manifest=true` shape, which
 * every registry stores): config = this document with the media type above, layers = the blobs, in order,
 * gzip-compressed — the same blobs `--push` sends, so a registry holds them once. Inline caches put it,
 * base64-encoded, under `moby.buildkit.cache.v0` in the image config; blobs are then the image's layers.
 */
export interface CacheConfig {
  layers: CacheLayer[];
  records: CacheConfigRecord[];
  'tsbuild.cacheMounts'?: Array<{ id: string; layer: number }>;
}

/** A cache config as read back, with the layer descriptors (media type, size) the manifest gave. */
export interface ImportedConfig {
  config: CacheConfig;
  /** By layer index: the blob's descriptor. */
  descriptors: Descriptor[];
}

/** Checks the parts of a cache config tsbuild relies on; throws a one-line reason. */
export function validateCacheConfig(value: unknown): CacheConfig {
  const c = value as CacheConfig;
  if (!c || typeof c !== 'object' || !Array.isArray(c.layers) || !Array.isArray(c.records)) throw new Error('not a cache config (no layers and records)');
  for (const [i, l] of c.layers.entries()) {
    if (typeof l?.blob !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(l.blob)) throw new Error(`layers[${i}].blob is not a sha256 digest`);
  }
  for (const [i, r] of c.records.entries()) {
    if (typeof r?.digest !== 'string' || !Array.isArray(r.results)) throw new Error(`records[${i}] has no digest or results`);
  }
  return c;
}
