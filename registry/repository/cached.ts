import type { Digest } from '../../oci/index.js';
import type { ManifestCache } from './manifest-cache.js';
import type { ManifestService, Registry, Repository, StoredManifest, TagService } from './types.js';

/**
 * The manifest cache as a decorator of a Registry (distribution's cached blob-descriptor and manifest
 * decorators): tag → digest and (repository, digest) → manifest bytes are answered from memory; writes
 * through it refresh or drop the entries they change. Blobs, uploads and referrers pass through.
 */
export class CachedRegistry implements Registry {
  constructor(
    private readonly inner: Registry,
    private readonly cache: ManifestCache,
  ) {}

  get location(): string {
    return this.inner.location;
  }

  repository(name: string, namespace?: string): Repository {
    const inner = this.inner.repository(name, namespace);
    // Keys carry the namespace: `?ns=ghcr.io` and `?ns=docker.io` may name different content.
    const key = namespace ? `${namespace}|${name}` : name;
    const cache = this.cache;
    const manifests: ManifestService = {
      async get(digest: Digest): Promise<StoredManifest | undefined> {
        const hit = cache.manifest(key, digest);
        if (hit) return hit;
        const found = await inner.manifests.get(digest);
        if (found) cache.setManifest(key, found);
        return found;
      },
      async put(bytes, contentType, options) {
        const result = await inner.manifests.put(bytes, contentType, options);
        if (options.tag !== undefined) cache.setTag(key, options.tag, result.digest);
        cache.setManifest(key, { digest: result.digest, mediaType: result.mediaType, bytes });
        return result;
      },
      async delete(digest: Digest): Promise<boolean> {
        const had = await inner.manifests.delete(digest);
        cache.dropManifest(key, digest);
        return had;
      },
    };
    const tags: TagService = {
      async resolve(tag: string): Promise<Digest | undefined> {
        const hit = cache.tag(key, tag);
        if (hit) return hit;
        const found = await inner.tags.resolve(tag);
        if (found) cache.setTag(key, tag, found);
        return found;
      },
      list: (page) => inner.tags.list(page),
      async delete(tag: string): Promise<boolean> {
        const had = await inner.tags.delete(tag);
        cache.dropTag(key, tag);
        return had;
      },
    };
    return { name, blobs: inner.blobs, manifests, tags, referrers: inner.referrers };
  }

  catalog(page: Parameters<Registry['catalog']>[0]) {
    return this.inner.catalog(page);
  }

  checkHealth(): Promise<string | undefined> {
    return this.inner.checkHealth();
  }

  uploadSessionCount(): Promise<number> {
    return this.inner.uploadSessionCount();
  }

  expireUploads(maxIdleMs: number): Promise<string[]> {
    return this.inner.expireUploads(maxIdleMs);
  }
}
