import { promises as fs } from 'node:fs';
import { digestAlgorithm, digestOf, type Descriptor, type Digest } from '../../oci/index.js';
import { BlobNotFoundError, type Store } from '../../store/index.js';
import { RegistryError } from './errors.js';
import { LocalBlobService } from './local-blobs.js';
import { checkReferences, parseManifest } from './manifest-validation.js';
import type { Listing, ManifestPutResult, ManifestService, Page, ReferrerService, Registry, Repository, StoredManifest, TagService } from './types.js';

/** A repository's manifests in the local store: bytes in the blob store, links and tags per repository. */
class LocalManifestService implements ManifestService {
  constructor(
    private readonly store: Store,
    private readonly name: string,
  ) {}

  async get(digest: Digest): Promise<StoredManifest | undefined> {
    const link = await this.store.repositories.getManifestLink(this.name, digest);
    if (!link) return undefined;
    try {
      return { digest, mediaType: link.mediaType, bytes: await this.store.blobs.readBuffer(digest) };
    } catch (e) {
      if (e instanceof BlobNotFoundError) return undefined;
      throw e;
    }
  }

  async put(bytes: Buffer, contentType: string | undefined, options: { tag?: string; digest?: Digest }): Promise<ManifestPutResult> {
    const { store, name } = this;
    const parsed = parseManifest(bytes, contentType);
    const digest = digestOf(bytes, options.digest ? digestAlgorithm(options.digest) : 'sha256');
    if (options.digest && digest !== options.digest) {
      throw new RegistryError('DIGEST_INVALID', `the manifest's digest is ${digest}, not ${options.digest} as the URL says`, {
        expected: options.digest,
        actual: digest,
      });
    }
    await checkReferences(
      {
        blobSize: async (d) => ((await store.repositories.hasBlob(name, d)) ? (await store.blobs.stat(d))?.size : undefined),
        manifestSize: async (d) => (await store.repositories.getManifestLink(name, d))?.size,
      },
      name,
      parsed,
    );
    await store.blobs.put(bytes, { digest });
    await store.repositories.linkManifest(name, { digest, mediaType: parsed.mediaType, size: bytes.length });
    // A garbage collection may have claimed a blob between the check above and the link (store/gc-claims.ts):
    // confirming each one after linking restores it, or finds it gone and takes the manifest back.
    for (const d of [{ digest }, ...parsed.blobs, ...parsed.manifests]) {
      if (await store.blobs.confirm(d.digest as Digest)) continue;
      await store.repositories.unlinkManifest(name, digest).catch(() => undefined);
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${d.digest}, which is no longer in repository ${name}`, { digest: d.digest });
    }
    if (parsed.subject) {
      const descriptor: Descriptor = {
        mediaType: parsed.mediaType,
        digest,
        size: bytes.length,
        ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
        ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
      };
      await store.repositories.addReferrer(name, parsed.subject.digest as Digest, descriptor);
    }
    if (options.tag !== undefined) await store.repositories.setTag(name, options.tag, digest);
    return { digest, mediaType: parsed.mediaType, ...(parsed.subject ? { subject: parsed.subject.digest as Digest } : {}) };
  }

  async delete(digest: Digest): Promise<boolean> {
    const { store, name } = this;
    if (!(await store.repositories.getManifestLink(name, digest))) return false;
    try {
      const doc = await store.blobs.readJson<{ subject?: Descriptor }>(digest);
      if (doc.subject?.digest) await store.repositories.removeReferrer(name, doc.subject.digest as Digest, digest);
    } catch {
      // unreadable content: nothing to unindex
    }
    await store.repositories.unlinkManifest(name, digest);
    return true;
  }
}

class LocalTagService implements TagService {
  constructor(
    private readonly store: Store,
    private readonly name: string,
  ) {}

  resolve(tag: string): Promise<Digest | undefined> {
    return this.store.repositories.resolveTag(this.name, tag);
  }

  async list(page: Page): Promise<Listing> {
    if (!(await this.store.repositories.exists(this.name))) {
      throw new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name: this.name });
    }
    return this.store.repositories.listTags(this.name, page);
  }

  delete(tag: string): Promise<boolean> {
    return this.store.repositories.deleteTag(this.name, tag);
  }
}

class LocalReferrerService implements ReferrerService {
  constructor(
    private readonly store: Store,
    private readonly name: string,
  ) {}

  list(subject: Digest): Promise<Descriptor[]> {
    return this.store.repositories.listReferrers(this.name, subject);
  }
}

/** The registry over the local store (filesystem driver now; any StorageDriver under store/). */
export class LocalRegistry implements Registry {
  constructor(readonly store: Store) {}

  get location(): string {
    return this.store.root;
  }

  repository(name: string): Repository {
    return {
      name,
      blobs: new LocalBlobService(this.store, name),
      manifests: new LocalManifestService(this.store, name),
      tags: new LocalTagService(this.store, name),
      referrers: new LocalReferrerService(this.store, name),
    };
  }

  catalog(page: Page): Promise<Listing> {
    return this.store.repositories.catalog(page);
  }

  async checkHealth(): Promise<string | undefined> {
    try {
      await fs.access(this.store.root);
      return undefined;
    } catch (e) {
      throw new Error(`storage ${this.store.root} is not reachable: ${(e as Error).message}`);
    }
  }

  async uploadSessionCount(): Promise<number> {
    return (await this.store.ingests.list()).length;
  }

  expireUploads(maxIdleMs: number): Promise<string[]> {
    return this.store.ingests.expire(maxIdleMs);
  }
}
