import { Turns } from './turns.js';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Digester, digestAlgorithm, type Digest } from '../oci/index.js';
import type { ByteRange, StorageDriver } from './driver/storage-driver.js';
import { DigestMismatchError, IngestNotFoundError, IngestOffsetError, IngestSupersededError, PathNotFoundError, SizeMismatchError } from './errors.js';
import { blobPath } from './layout.js';
import { OffThreadDigester, THREAD_WORTHY_BYTES, warmHashThread } from './off-thread-digester.js';

interface IngestMeta {
  id: string;
  startedAt: string;
  /** Free-form owner data (e.g. the registry records the repository an upload session belongs to). */
  labels?: Record<string, string>;
}

export interface IngestCreateOptions {
  labels?: Record<string, string>;
  /**
   * About how many bytes will come, when known (a descriptor's size): a large blob waits for a hashing
   * thread to start (once per process, 40–60 ms) so that its bytes are hashed beside their writing.
   */
  expectedSize?: number | undefined;
}

export interface AppendOptions {
  /** The append must start exactly at this offset (chunked uploads sent out of order are refused). */
  offset?: number;
  /**
   * The source's chunks are used by nobody else once read (a request body), so they may move to the
   * hashing thread without a copy. Leave it off for sources that yield buffers their caller keeps.
   */
  handOver?: boolean;
  /**
   * Milliseconds the source may send nothing while the append waits for it; then the append stops,
   * keeps what arrived and rejects with SourceIdleError. Unbounded when absent.
   */
  idleTimeoutMs?: number;
  /**
   * On failure, leave the source as it is (paused, not destroyed), so its owner can still answer on its
   * connection (an HTTP request). By default a failed append destroys its source, so a producer writing
   * into it learns that nobody reads any more.
   */
  leaveSourceOpen?: boolean;
}

/** Digest state kept in memory while the process lives (hashed on a worker thread); rebuilt from the bytes after a restart. */
const digesters = new Map<string, OffThreadDigester>();

function forget(id: string): void {
  digesters.get(id)?.dispose();
  digesters.delete(id);
}

/** The operation holding each ingest in this process (an append, a commit or a cancel). */
const turns = new Turns();

const ID_PATTERN = /^[A-Za-z0-9-]{8,64}$/;

/**
 * A resumable write: bytes are appended (possibly across requests and process restarts), then committed
 * under their verified digest. Until commit, nothing is visible as a blob.
 */
export class Ingest {
  constructor(
    private readonly driver: StorageDriver,
    readonly id: string,
    readonly startedAt: Date,
    readonly labels: Readonly<Record<string, string>> = {},
  ) {}

  private get dataPath(): string {
    return `ingest/${this.id}/data`;
  }

  /** Bytes received so far. */
  async size(): Promise<number> {
    try {
      return (await this.driver.stat(this.dataPath)).size;
    } catch (e) {
      if (e instanceof PathNotFoundError) {
        await this.assertExists();
        return 0;
      }
      throw e;
    }
  }

  /**
   * Streams the bytes received so far (or a range of them), while appends may still go on: a mirror
   * serves a blob to clients from its ingest as it arrives. Throws IngestNotFoundError once the ingest
   * was committed or cancelled (read the blob then).
   */
  async read(range?: ByteRange): Promise<Readable> {
    try {
      return await this.driver.reader(this.dataPath, range);
    } catch (e) {
      if (e instanceof PathNotFoundError) throw new IngestNotFoundError(this.id);
      throw e;
    }
  }

  /** When bytes last arrived (or the ingest started). */
  async updatedAt(): Promise<Date> {
    try {
      return (await this.driver.stat(this.dataPath)).modTime;
    } catch {
      return this.startedAt;
    }
  }

  private async assertExists(): Promise<void> {
    try {
      await this.driver.stat(`ingest/${this.id}/meta.json`);
    } catch (e) {
      if (e instanceof PathNotFoundError) throw new IngestNotFoundError(this.id);
      throw e;
    }
  }

  /** Runs `op` as the only operation on this ingest in this process (a newer one aborts it: turns.ts). */
  private exclusive<T>(reason: Error, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return turns.take(this.id, reason, op);
  }

  /**
   * Appends a stream; returns the new size. With `offset`, the append must start exactly at the current
   * size (IngestOffsetError otherwise: chunked uploads sent out of order are refused). A newer append,
   * commit or cancel of this ingest stops this one at once (IngestSupersededError, or IngestNotFoundError
   * for a cancel) and takes over from the bytes in the file. A source that fails, closes or goes idle
   * leaves what arrived, resumable, and rejects with SourceError; a failed write rejects with its error.
   */
  append(source: Readable, options: AppendOptions = {}): Promise<number> {
    return this.exclusive(new IngestSupersededError(this.id), (signal) => this.appendNow(source, options, signal)).catch((e: unknown) => {
      if (!options.leaveSourceOpen) source.destroy();
      throw e;
    });
  }

  private async appendNow(source: Readable, { offset, handOver = false, idleTimeoutMs }: AppendOptions, signal: AbortSignal): Promise<number> {
    const current = await this.size();
    if (offset !== undefined && offset !== current) throw new IngestOffsetError(current, offset);
    const known = digesters.get(this.id);
    if (known && known.size !== current) forget(this.id);
    // Without a hashing thread writing the file, the bytes are hashed at commit by reading them back.
    const digester = known?.size === current && known.writesFiles ? known : undefined;
    const control = { signal, idleMs: idleTimeoutMs };
    try {
      // A driver with local files lets the hashing thread write the bytes too; others ignore the hasher
      // (its size then lags, and the bytes are hashed at commit).
      const size = await this.driver.appendFrom(this.dataPath, source, digester ? { ...control, hashOnThread: { hasher: digester, handOver } } : control);
      if (digester?.size !== size) forget(this.id);
      // large blobs come in runs (a pull, an import): the next ones are hashed on a thread
      if (!digester && size - current >= THREAD_WORTHY_BYTES) void warmHashThread();
      return size;
    } catch (e) {
      // The hash state stays only while it covers exactly the bytes in the file (a cut source leaves it
      // so; a failed write may not): otherwise the bytes are hashed again at commit.
      const stored = await this.driver.stat(this.dataPath).then(
        (s) => s.size,
        () => -1,
      );
      if (digester?.size !== stored) forget(this.id);
      throw e;
    }
  }

  /** Digests all bytes written so far (from memory when possible, else by reading them back). */
  private async digestAll(algorithm: string): Promise<{ digest: Digest; size: number }> {
    const size = await this.size();
    const known = digesters.get(this.id);
    if (known && known.size === size && known.algorithm === algorithm) {
      digesters.delete(this.id);
      try {
        return { digest: await known.digest(), size };
      } catch {
        // the hashing thread went away: rehash the bytes below
      }
    }
    forget(this.id);
    const digester = new Digester(algorithm);
    if (size > 0) {
      const reader = await this.driver.reader(this.dataPath);
      for await (const chunk of reader) digester.update(chunk as Buffer);
    }
    return { digest: digester.digest(), size: digester.size };
  }

  /**
   * Verifies the bytes against `expected` and makes them the blob of that digest. On mismatch the ingest
   * is removed and nothing becomes visible. Without `expected`, the bytes are committed under their own digest.
   * `alongside` runs once the blob is in place, while the ingest's files are removed (e.g. linking the
   * blob into a repository): both wait on the filesystem's journal, so together they wait once.
   */
  async commit(expected?: Digest, expectedSize?: number, alongside?: (digest: Digest) => Promise<void>): Promise<{ digest: Digest; size: number }> {
    return this.exclusive(new IngestSupersededError(this.id), async () => {
      await this.assertExists();
      const { digest, size } = await this.digestAll(expected ? digestAlgorithm(expected) : 'sha256');
      if (expected && digest !== expected) {
        await this.remove();
        throw new DigestMismatchError(expected, digest);
      }
      if (expectedSize !== undefined && expectedSize !== size) {
        await this.remove();
        throw new SizeMismatchError(expectedSize, size);
      }
      // The same bytes pushed again (to another repository, or by a second client at once): the blob in
      // place stays, so readers of it keep their file and its cached pages (distribution does the same).
      const existing = await this.driver.stat(blobPath(digest)).catch(() => undefined);
      if (existing?.size !== size) {
        if (size === 0) await this.driver.putContent(this.dataPath, new Uint8Array());
        await this.driver.move(this.dataPath, blobPath(digest));
      }
      const removed = this.driver.delete(`ingest/${this.id}`);
      removed.catch(() => undefined); // awaited below; not unhandled if it fails first
      try {
        await alongside?.(digest);
      } finally {
        await removed;
      }
      return { digest, size };
    });
  }

  /** Removes the ingest and its bytes; an append running into it stops with IngestNotFoundError. */
  cancel(): Promise<void> {
    return this.exclusive(new IngestNotFoundError(this.id), () => this.remove());
  }

  private async remove(): Promise<void> {
    forget(this.id);
    await this.driver.delete(`ingest/${this.id}`);
  }
}

/** Digest state is tracked only for ingests this process appended to from their first byte. */
function trackFromStart(id: string): void {
  digesters.set(id, new OffThreadDigester('sha256'));
}

export class IngestStore {
  constructor(private readonly driver: StorageDriver) {}

  async create(options: IngestCreateOptions = {}): Promise<Ingest> {
    if ((options.expectedSize ?? 0) >= THREAD_WORTHY_BYTES) await warmHashThread();
    const id = randomUUID();
    const meta: IngestMeta = { id, startedAt: new Date().toISOString(), ...(options.labels ? { labels: options.labels } : {}) };
    try {
      // Not fsynced: after a power loss a session may be gone, and the client starts its upload over.
      await this.driver.putContent(`ingest/${id}/meta.json`, JSON.stringify(meta), { durable: false });
    } catch (e) {
      // Refused (a full disk): no half-made session stays behind.
      await this.driver.delete(`ingest/${id}`).catch(() => undefined);
      throw e;
    }
    trackFromStart(id);
    return new Ingest(this.driver, id, new Date(meta.startedAt), meta.labels);
  }

  async open(id: string): Promise<Ingest> {
    if (!ID_PATTERN.test(id)) throw new IngestNotFoundError(id);
    let meta: IngestMeta;
    try {
      meta = JSON.parse((await this.driver.getContent(`ingest/${id}/meta.json`)).toString('utf8')) as IngestMeta;
    } catch (e) {
      if (e instanceof PathNotFoundError || e instanceof SyntaxError) throw new IngestNotFoundError(id);
      throw e;
    }
    return new Ingest(this.driver, id, new Date(meta.startedAt), meta.labels ?? {});
  }

  async list(): Promise<string[]> {
    return (await this.driver.list('ingest')).filter((n) => ID_PATTERN.test(n));
  }

  /** Removes ingests that saw no bytes for `maxIdleMs`; returns their ids. */
  async expire(maxIdleMs: number, now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    for (const id of await this.list()) {
      // A session receiving bytes right now is not abandoned, however long it waited for them.
      if (turns.has(id)) continue;
      let ingest: Ingest;
      try {
        ingest = await this.open(id);
      } catch {
        // Unreadable: broken, or still being created (its files are not all written yet).
        const made = await this.driver.stat(`ingest/${id}`).catch(() => undefined);
        if (made && now - made.modTime.getTime() <= maxIdleMs) continue;
        await this.driver.delete(`ingest/${id}`);
        removed.push(id);
        continue;
      }
      if (now - (await ingest.updatedAt()).getTime() > maxIdleMs) {
        await ingest.cancel();
        removed.push(id);
      }
    }
    return removed;
  }
}
