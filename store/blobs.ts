import { Readable } from 'node:stream';
import { digestOf, parseDigest, type Digest } from '../oci/index.js';
import type { ByteRange, FileSender, StorageDriver } from './driver/storage-driver.js';
import { BlobNotFoundError, DigestMismatchError, PathNotFoundError, SizeMismatchError } from './errors.js';
import type { BlobClaims } from './gc-claims.js';
import type { IngestStore } from './ingests.js';
import { blobPath } from './layout.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface WriteExpectation {
  digest?: Digest;
  size?: number;
  /** About how many bytes will come, not verified (e.g. a layer's size before it is compressed): see IngestCreateOptions.expectedSize. */
  sizeHint?: number;
}

/** Content-addressed blobs: a blob is visible under its digest only after its bytes were verified. */
export class BlobStore {
  /** `claims`: how a garbage collection takes blobs out of use and how a stat or read takes them back (gc-claims.ts). */
  constructor(
    private readonly driver: StorageDriver,
    private readonly ingests: IngestStore,
    private readonly claims: BlobClaims,
  ) {}

  /** The blob's size, or undefined (a reader's look: see confirm() for a writer's). */
  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    return this.statThrough(digest, (op) => this.claims.read(digest, op));
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  /**
   * A writer's stat: a mount, a manifest push and an upload's commit confirm what they linked, and a
   * write confirms the bytes it would skip. A blob a garbage collection claimed is taken back (gc-claims.ts);
   * undefined when it is gone. On a filesystem store the same as stat(); replicas on S3 ask Redis.
   */
  async confirm(digest: Digest): Promise<BlobInfo | undefined> {
    return this.statThrough(digest, (op) => this.claims.confirm(digest, op));
  }

  private async statThrough(digest: Digest, through: (op: () => Promise<{ size: number }>) => Promise<{ size: number }>): Promise<BlobInfo | undefined> {
    try {
      const info = await through(() => this.driver.stat(blobPath(digest)));
      return { digest, size: info.size };
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }

  /** Streams a blob (or a byte range). Throws BlobNotFoundError. */
  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    try {
      return await this.claims.read(digest, () => this.driver.reader(blobPath(digest), range));
    } catch (e) {
      if (e instanceof PathNotFoundError) throw new BlobNotFoundError(digest);
      throw e;
    }
  }

  /**
   * A range of a blob ready to be written to a socket from reused buffers, when the driver has such a
   * path for it (StorageDriver.sender); else undefined, and the caller reads it. Throws BlobNotFoundError.
   */
  async sender(digest: Digest, range: ByteRange): Promise<FileSender | undefined> {
    const driver = this.driver;
    if (!driver.sender) return undefined;
    try {
      return await this.claims.read(digest, () => driver.sender!(blobPath(digest), range));
    } catch (e) {
      if (e instanceof PathNotFoundError) throw new BlobNotFoundError(digest);
      throw e;
    }
  }

  /** A small blob's bytes (manifests, configs). */
  async readBuffer(digest: Digest): Promise<Buffer> {
    try {
      return await this.claims.read(digest, () => this.driver.getContent(blobPath(digest)));
    } catch (e) {
      if (e instanceof PathNotFoundError) throw new BlobNotFoundError(digest);
      throw e;
    }
  }

  async readJson<T>(digest: Digest): Promise<T> {
    return JSON.parse((await this.readBuffer(digest)).toString('utf8')) as T;
  }

  /** Stores bytes already in memory (verified against `expected` when given). */
  async put(content: string | Uint8Array, expected?: WriteExpectation): Promise<BlobInfo> {
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    const digest = digestOf(bytes, expected?.digest ? expected.digest.split(':')[0] : 'sha256');
    if (expected?.digest && expected.digest !== digest) throw new DigestMismatchError(expected.digest, digest);
    if (expected?.size !== undefined && expected.size !== bytes.length) throw new SizeMismatchError(expected.size, bytes.length);
    if (!(await this.confirm(digest))) await this.driver.putContent(blobPath(digest), bytes);
    return { digest, size: bytes.length };
  }

  /**
   * Streams content into the store: hashed on the way, verified, made durable and moved into place.
   * A broken stream or a mismatch leaves nothing visible.
   */
  async write(source: Readable | AsyncIterable<Uint8Array>, expected?: WriteExpectation): Promise<BlobInfo> {
    const ingest = await this.ingests.create({ expectedSize: expected?.size ?? expected?.sizeHint });
    try {
      const stream = source instanceof Readable ? source : Readable.from(source);
      await ingest.append(stream);
      return await ingest.commit(expected?.digest, expected?.size);
    } catch (e) {
      await ingest.cancel().catch(() => undefined);
      throw e;
    }
  }

  async delete(digest: Digest): Promise<void> {
    if (!(await this.has(digest))) throw new BlobNotFoundError(digest);
    await this.driver.delete(blobPath(digest));
  }

  async *list(): AsyncGenerator<Digest> {
    for (const alg of await this.driver.list('blobs')) {
      for (const hex of await this.driver.list(`blobs/${alg}`)) {
        try {
          yield parseDigest(`${alg}:${hex}`);
        } catch {
          // not a blob (a stray name); ignore
        }
      }
    }
  }
}
