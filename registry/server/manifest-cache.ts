import NodeCache from 'node-cache';
import type { Digest } from '../../oci/index.js';

export interface CachedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

/** Only small manifests are kept, so the cache's memory stays bounded by maxKeys × this. */
const MAX_CACHED_BYTES = 64 * 1024;

/**
 * Tag → digest and (repository, digest) → manifest bytes, so a manifest GET is served without touching
 * the disk. This process's own writes drop the entries they change; the TTL bounds how long a change made
 * by another process sharing the store can go unseen.
 */
export class ManifestCache {
  private readonly cache: NodeCache;

  constructor(ttlSeconds: number, maxKeys = 20_000) {
    this.cache = new NodeCache({ stdTTL: ttlSeconds, checkperiod: Math.max(ttlSeconds, 60), useClones: false, maxKeys });
  }

  get enabled(): boolean {
    return this.cache.options.stdTTL !== 0;
  }

  private put(key: string, value: unknown): void {
    if (!this.enabled) return;
    try {
      this.cache.set(key, value);
    } catch {
      // full: start over rather than evict one by one
      this.cache.flushAll();
    }
  }

  tag(name: string, tag: string): Digest | undefined {
    return this.cache.get<Digest>(`t ${name} ${tag}`);
  }

  setTag(name: string, tag: string, digest: Digest): void {
    this.put(`t ${name} ${tag}`, digest);
  }

  dropTag(name: string, tag: string): void {
    this.cache.del(`t ${name} ${tag}`);
  }

  manifest(name: string, digest: string): CachedManifest | undefined {
    return this.cache.get<CachedManifest>(`m ${name} ${digest}`);
  }

  setManifest(name: string, manifest: CachedManifest): void {
    if (manifest.bytes.length <= MAX_CACHED_BYTES) this.put(`m ${name} ${manifest.digest}`, manifest);
  }

  /** Forgets a manifest and every cached tag of the repository (tags pointing at it go with it). */
  dropManifest(name: string, digest: string): void {
    this.cache.del(`m ${name} ${digest}`);
    const prefix = `t ${name} `;
    this.cache.del(this.cache.keys().filter((k) => k.startsWith(prefix)));
  }

  close(): void {
    this.cache.close();
  }
}
