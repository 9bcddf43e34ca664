import { EventEmitter } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import type { Digest } from '../../oci/index.js';
import { IngestNotFoundError, type Ingest, type Store } from '../../store/index.js';
import type { BlobRange } from '../repository/index.js';
import type { Upstream } from './upstream.js';

/** Recent bytes kept in memory for clients keeping pace with the upstream (the file lags by a few MiB). */
const WINDOW_BYTES = 16 << 20;
/** Upstream transfers cut this many times in a row give up (each resumes with Range where it stopped). */
const MAX_RESUMES = 3;
/** A client that caught up with the file but not the window looks again this often. */
const POLL_MS = 50;

/** Resolves when the sink takes bytes again; rejects when it closed (the store stopped taking them). */
function drained(sink: PassThrough): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      sink.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      sink.off('drain', onDrain);
      reject(new Error("the store stopped taking the blob's bytes"));
    };
    sink.once('drain', onDrain);
    sink.once('close', onClose);
  });
}

export interface BlobFetchEvents {
  /** Bytes taken from the upstream. */
  onBytes(bytes: number): void;
  /** An upstream transfer failed (and was resumed or given up). */
  onError(error: unknown): void;
}

/**
 * One upstream fetch of one blob, shared by every client that asks for it while it runs (single flight).
 * The bytes go into a store ingest, which writes and hashes them; the blob is committed only when its
 * digest verifies. Clients are streamed the bytes as they arrive: from memory while they keep pace, from
 * the ingest's file when they fall behind, from the committed blob once it is in place. A client leaving
 * does not stop the fetch. The last byte is held back until the digest verified, so a client given corrupt
 * or truncated bytes sees a short transfer (the response is cut), never a complete wrong blob.
 */
export class BlobFetch {
  /** Total size, known once the upstream answered (`ready` resolved). */
  size: number | undefined;
  /** Bytes received from the upstream, in order. */
  received = 0;
  state: 'running' | 'committed' | 'failed' = 'running';
  error: Error | undefined;
  /** Resolves once the upstream answered with the blob's size (or rejects when it could not). */
  readonly ready: Promise<number | undefined>;
  /** Settles when the blob is committed (resolves) or the fetch failed (rejects). */
  readonly done: Promise<void>;

  private readonly progress = new EventEmitter();
  private ingest: Ingest | undefined;
  private windowStart = 0;
  private window: Buffer[] = [];
  private windowBytes = 0;
  private resolveReady!: (size: number | undefined) => void;
  private rejectReady!: (e: Error) => void;

  constructor(
    private readonly store: Store,
    private readonly upstream: Upstream,
    private readonly remote: string,
    readonly digest: Digest,
    /** Repository the blob is linked into once committed. */
    private readonly localName: string,
    private readonly events: BlobFetchEvents,
  ) {
    this.progress.setMaxListeners(0);
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    this.done = this.run();
    this.done.catch(() => undefined);
  }

  private async run(): Promise<void> {
    let sink: PassThrough | undefined;
    let appending: Promise<number> | undefined;
    try {
      let opened = await this.upstream.openBlob(this.remote, this.digest, 0);
      this.size = opened.size;
      this.ingest = await this.store.ingests.create({ labels: { mirror: this.upstream.registry }, expectedSize: this.size });
      sink = new PassThrough({ highWaterMark: 1 << 20 });
      appending = this.ingest.append(sink);
      appending.catch(() => undefined);
      this.resolveReady(this.size);
      for (let resumes = 0; ; ) {
        try {
          await this.take(opened.stream, opened.offset, sink);
          if (this.size !== undefined && this.received < this.size)
            throw Object.assign(new Error(`the upstream sent ${this.received} of ${this.size} bytes`), { code: 'TRUNCATED' });
          break;
        } catch (e) {
          if (sink.destroyed) throw e; // the store failed (a full disk): resuming the download cannot help
          this.events.onError(e);
          if (this.size !== undefined && this.received > this.size) throw new Error(`the upstream sent more than the blob's ${this.size} bytes`);
          if (++resumes > MAX_RESUMES) throw e;
          opened = await this.upstream.openBlob(this.remote, this.digest, this.received);
        }
      }
      sink.end();
      await appending;
      await this.ingest.commit(this.digest, this.size, () => this.store.repositories.linkBlob(this.localName, this.digest));
      this.state = 'committed';
    } catch (e) {
      this.error = e instanceof Error ? e : new Error(String(e));
      this.state = 'failed';
      this.rejectReady(this.error);
      sink?.destroy();
      await appending?.catch(() => undefined);
      await this.ingest?.cancel().catch(() => undefined);
      throw this.error;
    } finally {
      this.window = [];
      this.progress.emit('progress');
    }
  }

  /** Copies one upstream response into the ingest and the window; `offset` is where it starts. */
  private async take(stream: Readable, offset: number, sink: PassThrough): Promise<void> {
    let skip = this.received - offset; // a server that ignored Range starts again at 0
    if (skip < 0) throw new Error(`the upstream resumed at byte ${offset}, after the ${this.received} received`);
    for await (const data of stream) {
      let chunk = data as Buffer;
      if (skip > 0) {
        if (chunk.length <= skip) {
          skip -= chunk.length;
          continue;
        }
        chunk = chunk.subarray(skip);
        skip = 0;
      }
      this.remember(chunk);
      this.received += chunk.length;
      this.events.onBytes(chunk.length);
      this.progress.emit('progress');
      if (!sink.write(chunk)) await drained(sink);
    }
  }

  private remember(chunk: Buffer): void {
    this.window.push(chunk);
    this.windowBytes += chunk.length;
    while (this.windowBytes - this.window[0]!.length >= WINDOW_BYTES) {
      const dropped = this.window.shift()!;
      this.windowBytes -= dropped.length;
      this.windowStart += dropped.length;
    }
  }

  /** Bytes [from, to) from the memory window, or undefined when `from` already left it. */
  private fromWindow(from: number, to: number): Buffer | undefined {
    if (from < this.windowStart || from >= this.windowStart + this.windowBytes) return undefined;
    const parts: Buffer[] = [];
    let at = this.windowStart;
    for (const chunk of this.window) {
      const end = at + chunk.length;
      if (end > from && at < to) parts.push(chunk.subarray(Math.max(0, from - at), Math.min(chunk.length, to - at)));
      at = end;
      if (at >= to) break;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  private waitForProgress(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, POLL_MS);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.progress.once('progress', done);
    });
  }

  /**
   * Streams bytes [range.start, range.end] (inclusive; the whole blob by default) as they arrive. The
   * stream errors when the fetch fails; the caller then cuts the response.
   */
  open(range?: BlobRange): Readable {
    return Readable.from(this.stream(range?.start ?? 0, range?.end), { objectMode: false });
  }

  private async *stream(start: number, endInclusive: number | undefined): AsyncGenerator<Buffer> {
    let pos = start;
    const end = () => (endInclusive !== undefined ? endInclusive + 1 : (this.size ?? Number.POSITIVE_INFINITY));
    while (pos < end()) {
      if (this.state === 'failed') throw this.error;
      if (this.state === 'committed') {
        const rest = await this.store.blobs.read(this.digest, { start: pos, end: end() - 1 });
        for await (const chunk of rest) yield chunk as Buffer;
        return;
      }
      // The last byte waits for the digest: a complete response is a verified one.
      const limit = Math.min(end(), this.received, this.size !== undefined ? this.size - 1 : this.received);
      if (pos >= limit) {
        await this.waitForProgress();
        continue;
      }
      const inMemory = this.fromWindow(pos, limit);
      if (inMemory) {
        pos += inMemory.length;
        yield inMemory;
        continue;
      }
      const onDisk = await this.readFile(pos, limit);
      if (onDisk === 0) {
        await this.waitForProgress();
        continue;
      }
      let file: Readable;
      try {
        file = await this.ingest!.read({ start: pos, end: pos + onDisk - 1 });
      } catch (e) {
        if (e instanceof IngestNotFoundError) continue; // committed meanwhile
        throw e;
      }
      for await (const chunk of file) {
        pos += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
    }
  }

  /** How many bytes from `pos` (up to `limit`) the ingest's file holds now; 0 when none yet or it is gone. */
  private async readFile(pos: number, limit: number): Promise<number> {
    try {
      const size = await this.ingest!.size();
      return Math.max(0, Math.min(size, limit) - pos);
    } catch (e) {
      if (e instanceof IngestNotFoundError) return 0; // committed meanwhile: the next turn reads the blob
      throw e;
    }
  }
}
