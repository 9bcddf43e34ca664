import { LRUCache } from 'lru-cache';
import type { Digest } from '../../oci/index.js';

export interface CachedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

export interface ManifestCacheLimits {
  /** Most entries kept (tags and manifests together); default 100,000. */
  maxEntries?: number;
  /** Most bytes kept, manifest bytes plus an estimate of each entry's overhead; default 64 MiB. */
  maxBytes?: number;
}

/** Only small manifests are kept: one huge index must not push out thousands of ordinary ones. */
const MAX_CACHED_BYTES = 64 * 1024;
/** What an entry costs besides its manifest bytes (key, object, list node), roughly, in bytes. */
const ENTRY_OVERHEAD = 160;

type Entry = Digest | CachedManifest;

const tagKey = (name: string, tag: string) => `t ${name} ${tag}`;
const manifestKey = (name: string, digest: string) => `m ${name} ${digest}`;

/**
 * Tag → digest and (repository, digest) → manifest bytes, so a manifest GET is served without touching
 * the disk. When full, the least recently used entries go, one at a time, so a working set larger than
 * the cache still gets hits in proportion to how much of it fits. This process's own writes drop the
 * entries they change; the TTL bounds how long a change made by another process sharing the store can
 * go unseen (it is not extended by reads).
 */
export class ManifestCache {
  private readonly cache: LRUCache<string, Entry> | undefined;
  /** Cached tags per repository, so dropping a repository's tags costs its own tags, not the cache. */
  private readonly tagsOf = new Map<string, Set<string>>();

  /** @param ttlSeconds how long an entry is trusted; 0 disables the cache. */
  constructor(ttlSeconds: number, limits: ManifestCacheLimits = {}) {
    if (ttlSeconds <= 0) return;
    this.cache = new LRUCache<string, Entry>({
      max: limits.maxEntries ?? 100_000,
      maxSize: limits.maxBytes ?? 64 << 20,
      sizeCalculation: (value, key) => key.length + ENTRY_OVERHEAD + (typeof value === 'string' ? value.length : value.bytes.length),
      ttl: ttlSeconds * 1000,
      updateAgeOnGet: false,
      // evicted, expired, deleted: the tag index follows (a replaced value keeps its key, so it stays)
      dispose: (_value, key, reason) => {
        if (reason !== 'set' && key.startsWith('t ')) this.forgetTag(key);
      },
    });
  }

  get enabled(): boolean {
    return this.cache !== undefined;
  }

  /** Entries held now (tags and manifests). */
  get size(): number {
    return this.cache?.size ?? 0;
  }

  /** Bytes held now, as counted against `maxBytes`. */
  get bytes(): number {
    return this.cache?.calculatedSize ?? 0;
  }

  tag(name: string, tag: string): Digest | undefined {
    return this.cache?.get(tagKey(name, tag)) as Digest | undefined;
  }

  setTag(name: string, tag: string, digest: Digest): void {
    if (!this.cache) return;
    this.cache.set(tagKey(name, tag), digest);
    let tags = this.tagsOf.get(name);
    if (!tags) this.tagsOf.set(name, (tags = new Set()));
    tags.add(tag);
  }

  dropTag(name: string, tag: string): void {
    this.cache?.delete(tagKey(name, tag));
  }

  manifest(name: string, digest: string): CachedManifest | undefined {
    return this.cache?.get(manifestKey(name, digest)) as CachedManifest | undefined;
  }

  setManifest(name: string, manifest: CachedManifest): void {
    if (!this.cache || manifest.bytes.length > MAX_CACHED_BYTES) return;
    // a copy of the three fields: callers may pass a larger object that must not be kept alive
    this.cache.set(manifestKey(name, manifest.digest), { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes });
  }

  /** Forgets a manifest and every cached tag of the repository (tags pointing at it go with it). */
  dropManifest(name: string, digest: string): void {
    if (!this.cache) return;
    this.cache.delete(manifestKey(name, digest));
    const tags = this.tagsOf.get(name);
    if (!tags) return;
    for (const tag of [...tags]) this.cache.delete(tagKey(name, tag));
    this.tagsOf.delete(name);
  }

  /** Forgets everything (close() is the same: nothing else is held). */
  clear(): void {
    this.cache?.clear();
    this.tagsOf.clear();
  }

  close(): void {
    this.clear();
  }

  private forgetTag(key: string): void {
    // key is `t <name> <tag>`; neither a name nor a tag holds a space
    const space = key.indexOf(' ', 2);
    const name = key.slice(2, space);
    const tags = this.tagsOf.get(name);
    if (!tags) return;
    tags.delete(key.slice(space + 1));
    if (tags.size === 0) this.tagsOf.delete(name);
  }
}
