import { createReadStream, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { checkPath, type AppendControl, type ByteRange, type ChunkWriter, type FileInfo, type PutOptions, type StorageDriver } from './storage-driver.js';
import { PathNotFoundError, SourceError, SourceIdleError } from '../errors.js';
import { DirectoryListings } from './directory-listings.js';

const READ_CHUNK = 1 << 20;
const SYNC_EVERY = 8 << 20;
const BATCH_BYTES = 1 << 20;


function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Temp files carry the writer's pid so a sweep can tell a crashed writer's leftovers from a live one's. */
export function tempName(finalPath: string): string {
  return `${finalPath}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

export const TEMP_PATTERN = /\.tmp-(\d+)-[0-9a-f]{12}$/;

/** Writes all chunks in order (writev, continuing after short writes). */
async function writeAll(fh: fs.FileHandle, chunks: Buffer[], length: number): Promise<void> {
  let written = (await fh.writev(chunks)).bytesWritten;
  if (written === length) return;
  const rest = Buffer.concat(chunks, length).subarray(written);
  for (let offset = 0; offset < rest.length; ) offset += (await fh.write(rest, offset)).bytesWritten;
}

/** How reading a source ended: at its end, stopped on the source's side (kept what arrived), or aborted. */
type SourceOutcome = { ended: true } | { ended: false; error: Error; aborted: boolean };

/**
 * Feeds every chunk of `source` to `onChunk`, pausing the source while the promise it returns (if any)
 * is pending. 'data' events instead of an async iterator: an upload is thousands of socket reads, and the
 * iterator's promise per chunk was a measurable share of the main thread's work. Resolves with how the
 * source ended: at its end; failed, closed early or idle for `idleMs` while read (a SourceError); or
 * `signal` aborted. Rejects when `onChunk` fails. Never settles while an `onChunk` promise is still
 * pending, so the caller may close what onChunk writes to. Stopping early leaves the source paused.
 */
function forEachChunk(source: Readable, onChunk: (chunk: Buffer) => Promise<void> | undefined, { signal, idleMs }: AppendControl): Promise<SourceOutcome> {
  return new Promise<SourceOutcome>((resolve, reject) => {
    let settled = false;
    let current: Promise<void> | undefined;
    let idle: NodeJS.Timeout | undefined;
    const watchIdle = () => {
      if (idleMs !== undefined) idle = setTimeout(() => stop(new SourceIdleError(idleMs), false), idleMs);
    };
    const detach = () => {
      settled = true;
      clearTimeout(idle);
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const settle = (outcome: SourceOutcome) => {
      if (settled) return;
      detach();
      if (!outcome.ended) source.pause();
      // A write under way still counts: it may fail, and the caller closes the file only after it.
      if (current) current.then(() => resolve(outcome), reject);
      else resolve(outcome);
    };
    const stop = (error: Error, aborted: boolean) => settle({ ended: false, error, aborted });
    const onData = (chunk: Buffer) => {
      idle?.refresh();
      const waiting = onChunk(chunk);
      if (!waiting) return;
      // Held back by the writes: the source is not idle meanwhile.
      clearTimeout(idle);
      idle = undefined;
      source.pause();
      current = waiting;
      waiting.then(
        () => {
          current = undefined;
          if (settled) return;
          watchIdle();
          source.resume();
        },
        (e: Error) => {
          current = undefined;
          if (settled) return;
          detach();
          source.pause();
          reject(e);
        },
      );
    };
    const onEnd = () => settle({ ended: true });
    const onError = (e: Error) => stop(new SourceError(`the source failed: ${e.message}`, { cause: e }), false);
    const onClose = () => stop(new SourceError('the source closed before its end'), false);
    const onAbort = () => stop(signal!.reason instanceof Error ? signal!.reason : new Error(String(signal!.reason)), true);
    if (signal?.aborted) return resolve({ ended: false, error: signal.reason as Error, aborted: true });
    if (source.readableEnded) return resolve({ ended: true });
    if (source.destroyed) return resolve({ ended: false, error: new SourceError('the source closed before its end'), aborted: false });
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
    source.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    watchIdle();
    source.resume();
  });
}

export class FilesystemDriver implements StorageDriver {
  readonly name = 'filesystem';
  /** Sorted listings of large directories, reused while unchanged (catalog and tag pages). */
  private readonly listings = new DirectoryListings((name) => !TEMP_PATTERN.test(name));

  constructor(readonly root: string) {}

  localPath(path: string): string {
    return join(this.root, checkPath(path));
  }

  async getContent(path: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.localPath(path));
    } catch (e) {
      if (isMissing(e) || (e as NodeJS.ErrnoException).code === 'EISDIR') throw new PathNotFoundError(path);
      throw e;
    }
  }

  async putContent(path: string, content: string | Uint8Array, options: PutOptions = {}): Promise<void> {
    const full = this.localPath(path);
    await fs.mkdir(dirname(full), { recursive: true });
    const tmp = tempName(full);
    try {
      const fh = await fs.open(tmp, 'w');
      try {
        await fh.writeFile(content);
        if (options.durable !== false) await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, full);
    } catch (e) {
      // A refused write (a full disk) leaves no temp file behind.
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  async reader(path: string, range?: ByteRange): Promise<Readable> {
    const full = this.localPath(path);
    let fh;
    try {
      fh = await fs.open(full, 'r');
    } catch (e) {
      if (isMissing(e)) throw new PathNotFoundError(path);
      throw e;
    }
    // Reading from an open handle keeps the bytes readable even if the file is replaced or deleted meanwhile.
    return createReadStream('', { fd: fh, start: range?.start, end: range?.end, highWaterMark: READ_CHUNK, autoClose: true });
  }

  appendFrom(path: string, source: Readable, control: AppendControl = {}): Promise<number> {
    // Thread-pool writes may finish out of order: one at a time.
    return this.append(path, source, (fh, chunks, length) => writeAll(fh, chunks, length), 1, control);
  }

  appendThrough(path: string, source: Readable, writer: ChunkWriter, control: AppendControl = {}): Promise<number> {
    // The writer applies batches in order: two outstanding keep it busy while the next one is gathered.
    return this.append(path, source, (fh, chunks) => writer(fh.fd, chunks), 2, control);
  }

  private async append(
    path: string,
    source: Readable,
    write: (fh: fs.FileHandle, chunks: Buffer[], length: number) => Promise<void>,
    maxWrites: number,
    control: AppendControl,
  ): Promise<number> {
    const full = this.localPath(path);
    await fs.mkdir(dirname(full), { recursive: true });
    const fh = await fs.open(full, 'a');
    // Writes under way, oldest first; each is awaited in turn (the no-op catch only keeps one that fails
    // while nobody waits on it yet from being reported as unhandled).
    const writes: Promise<void>[] = [];
    // Dirty pages are flushed in the background every SYNC_EVERY bytes, so the final fsync does not find
    // the whole file to write. `flushed` is the latest flush (awaited at the end), `flushingNow` whether it runs.
    let flushed: Promise<void> = Promise.resolve();
    let flushingNow = false;
    try {
      let unsynced = 0;
      // Small reads (a socket's 16–64 KiB) are gathered and written with one writev per ~1 MiB: no copying.
      let batch: Buffer[] = [];
      let batchBytes = 0;
      const flushBatch = async () => {
        const chunks = batch;
        const length = batchBytes;
        batch = [];
        batchBytes = 0;
        while (writes.length >= maxWrites) await writes.shift();
        const written = write(fh, chunks, length);
        written.catch(() => undefined);
        writes.push(written);
        unsynced += length;
        if (unsynced >= SYNC_EVERY && !flushingNow) {
          unsynced = 0;
          flushingNow = true;
          flushed = written.then(() => fh.datasync()).finally(() => (flushingNow = false));
          flushed.catch(() => undefined);
        }
      };
      let outcome;
      try {
        outcome = await forEachChunk(
          source,
          (chunk) => {
            batch.push(chunk);
            batchBytes += chunk.length;
            return batchBytes >= BATCH_BYTES ? flushBatch() : undefined;
          },
          control,
        );
        // Bytes that arrived before the source stopped are kept (the upload resumes after them); an
        // abort means someone else takes over from what is in the file, so the rest is dropped.
        if (batchBytes > 0 && !(!outcome.ended && outcome.aborted)) await flushBatch();
        for (const written of writes) await written;
        await flushed;
      } catch (e) {
        // The file stays open until no write or flush can still be running on it.
        await Promise.allSettled([...writes, flushed]);
        throw e;
      }
      if (!outcome.ended && outcome.aborted) throw outcome.error;
      await fh.sync();
      if (!outcome.ended) throw outcome.error;
      return (await fh.stat()).size;
    } finally {
      await fh.close();
    }
  }

  async stat(path: string): Promise<FileInfo> {
    try {
      const s = await fs.stat(this.localPath(path));
      return { path, size: s.size, modTime: s.mtime, isDir: s.isDirectory() };
    } catch (e) {
      if (isMissing(e)) throw new PathNotFoundError(path);
      throw e;
    }
  }

  async list(path: string): Promise<string[]> {
    try {
      const names = await fs.readdir(this.localPath(path));
      return names.filter((n) => !TEMP_PATTERN.test(n)).sort();
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  listPage(path: string, after?: string, limit?: number): Promise<string[]> {
    return this.listings.page(this.localPath(path), after, limit);
  }

  async move(source: string, destination: string): Promise<void> {
    const dst = this.localPath(destination);
    await fs.mkdir(dirname(dst), { recursive: true });
    try {
      await fs.rename(this.localPath(source), dst);
    } catch (e) {
      if (isMissing(e)) throw new PathNotFoundError(source);
      throw e;
    }
  }

  async delete(path: string): Promise<void> {
    await fs.rm(this.localPath(path), { recursive: true, force: true });
  }
}
