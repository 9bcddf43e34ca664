import type { Readable } from 'node:stream';
import { isValidRepositoryName, type Digest } from '../../oci/index.js';
import { BlobNotFoundError, IngestNotFoundError, type FileSender, type Ingest, type Store } from '../../store/index.js';
import { RegistryError } from './errors.js';
import type { BlobContent, BlobService, UploadAppendOptions, UploadSession } from './types.js';

/** The ingest label that binds an upload session to its repository. */
export const REPOSITORY_LABEL = 'repository';

function uploadUnknown(id: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { id: id.slice(0, 100) });
}

/** An upload session over a store ingest; committing links the blob into the session's repository. */
class LocalUploadSession implements UploadSession {
  constructor(
    private readonly store: Store,
    private readonly name: string,
    private readonly ingest: Ingest,
  ) {}

  get id(): string {
    return this.ingest.id;
  }

  size(): Promise<number> {
    return this.ingest.size();
  }

  append(source: Readable, options: UploadAppendOptions = {}): Promise<number> {
    const { offset, handOver, leaveSourceOpen, idleTimeoutMs } = options;
    return this.ingest.append(source, {
      ...(offset !== undefined ? { offset } : {}),
      ...(handOver !== undefined ? { handOver } : {}),
      ...(leaveSourceOpen !== undefined ? { leaveSourceOpen } : {}),
      ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    });
  }

  commit(digest: Digest): Promise<{ digest: Digest; size: number }> {
    return this.ingest.commit(digest, undefined, async () => {
      await this.store.repositories.linkBlob(this.name, digest);
      // The same bytes were in the store already and a garbage collection claimed them: put them back.
      if (!(await this.store.blobs.confirm(digest))) throw new BlobNotFoundError(digest);
    });
  }

  cancel(): Promise<void> {
    return this.ingest.cancel();
  }
}

/**
 * A repository's blobs in the local store. A blob is served in a repository only once it was pushed or
 * mounted there (or is one of its manifests), as distribution does: the digest alone is no capability.
 */
export class LocalBlobService implements BlobService {
  constructor(
    private readonly store: Store,
    private readonly name: string,
  ) {}

  async stat(digest: Digest): Promise<{ digest: Digest; size: number } | undefined> {
    // On an object store the link and the blob are looked up at once: each is a round trip, and every
    // blob GET and HEAD waits for both. A local file is looked up only once linked (there a read takes a
    // blob back from a garbage collection's claim: gc-claims.ts).
    if (this.store.blobFile(digest) !== undefined) return (await this.linked(digest)) ? this.store.blobs.stat(digest) : undefined;
    const stored = this.store.blobs.stat(digest);
    stored.catch(() => undefined);
    return (await this.linked(digest)) ? stored : undefined;
  }

  /** Whether this repository may serve the blob: pushed or mounted here, or one of its manifests. */
  private async linked(digest: Digest): Promise<boolean> {
    const repositories = this.store.repositories;
    return (await repositories.hasBlob(this.name, digest)) || (await repositories.getManifestLink(this.name, digest)) !== undefined;
  }

  async sender(digest: Digest): Promise<FileSender | undefined> {
    if (!this.store.driver.sender) return undefined;
    const opening = this.store.blobs.sender(digest, { start: 0 });
    opening.catch(() => undefined);
    if (!(await this.linked(digest))) {
      (await opening.catch(() => undefined))?.cancel();
      throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    }
    try {
      return await opening;
    } catch (e) {
      if (e instanceof BlobNotFoundError) throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
      throw e;
    }
  }

  async get(digest: Digest): Promise<BlobContent> {
    const info = await this.stat(digest);
    if (!info) throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    const file = this.store.blobFile(digest);
    return {
      digest,
      size: info.size,
      ...(file !== undefined ? { file } : {}),
      open: (range) => this.store.blobs.read(digest, range),
      sender: (range) => this.store.blobs.sender(digest, range),
    };
  }

  delete(digest: Digest): Promise<boolean> {
    return this.store.repositories.unlinkBlob(this.name, digest);
  }

  async mount(digest: Digest, from: string): Promise<boolean> {
    if (!isValidRepositoryName(from)) return false;
    if (!(await this.store.repositories.hasBlob(from, digest)) || !(await this.store.blobs.has(digest))) return false;
    await this.store.repositories.linkBlob(this.name, digest);
    // Confirmed after linking (a garbage collection may have claimed it meanwhile): gone means no mount, and
    // the client uploads the blob instead.
    if (await this.store.blobs.confirm(digest)) return true;
    await this.store.repositories.unlinkBlob(this.name, digest);
    return false;
  }

  async createUpload(): Promise<UploadSession> {
    const ingest = await this.store.ingests.create({ labels: { [REPOSITORY_LABEL]: this.name } });
    return new LocalUploadSession(this.store, this.name, ingest);
  }

  async resumeUpload(id: string): Promise<UploadSession> {
    let ingest: Ingest;
    try {
      ingest = await this.store.ingests.open(id);
    } catch (e) {
      // Only "no such session" is the client's problem; a disk error stays a 500 (see toRegistryError).
      if (e instanceof IngestNotFoundError) throw uploadUnknown(id);
      throw e;
    }
    // A session is only usable through the repository it was started in.
    if (ingest.labels[REPOSITORY_LABEL] !== this.name) throw uploadUnknown(id);
    return new LocalUploadSession(this.store, this.name, ingest);
  }
}
