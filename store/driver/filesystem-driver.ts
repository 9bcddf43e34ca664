import { createReadStream, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { checkPath, type ByteRange, type ChunkWriter, type FileInfo, type PutOptions, type StorageDriver } from './storage-driver.js';
import { PathNotFoundError } from '../errors.js';
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

/**
 * Feeds every chunk of `source` to `onChunk`, pausing the source while the promise it returns (if any)
 * is pending. 'data' events instead of an async iterator: an upload is thousands of socket reads, and the
 * iterator's promise per chunk was a measurable share of the main thread's work. Rejects when the source
 * fails or closes before its end (a client that went away), or when `onChunk` fails; never settles while
 * an `onChunk` promise is still pending, so the caller may close what onChunk writes to.
 */
function forEachChunk(source: Readable, onChunk: (chunk: Buffer) => Promise<void> | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let current: Promise<void> | undefined;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', settle);
      source.off('close', onClose);
      const done = () => (error ? reject(error) : resolve());
      if (current) current.then(done, (e: Error) => reject(error ?? e));
      else done();
    };
    const onData = (chunk: Buffer) => {
      const waiting = onChunk(chunk);
      if (!waiting) return;
      source.pause();
      current = waiting;
      waiting.then(
        () => {
          current = undefined;
          if (!settled) source.resume();
        },
        (e: Error) => {
          current = undefined;
          settle(e);
        },
      );
    };
    const onEnd = () => settle();
    const onClose = () => settle(new Error('the source closed before its end'));
    if (source.readableEnded) return resolve();
    if (source.destroyed) return reject(source.errored ?? new Error('the source closed before its end'));
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', settle);
    source.once('close', onClose);
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
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(content);
      if (options.durable !== false) await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await fs.rename(tmp, full);
    } catch (e) {
      await fs.rm(tmp, { force: true });
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

  appendFrom(path: string, source: Readable): Promise<number> {
    // Thread-pool writes may finish out of order: one at a time.
    return this.append(path, source, (fh, chunks, length) => writeAll(fh, chunks, length), 1);
  }

  appendThrough(path: string, source: Readable, writer: ChunkWriter): Promise<number> {
    // The writer applies batches in order: two outstanding keep it busy while the next one is gathered.
    return this.append(path, source, (fh, chunks) => writer(fh.fd, chunks), 2);
  }

  private async append(path: string, source: Readable, write: (fh: fs.FileHandle, chunks: Buffer[], length: number) => Promise<void>, maxWrites: number): Promise<number> {
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
      try {
        await forEachChunk(source, (chunk) => {
          batch.push(chunk);
          batchBytes += chunk.length;
          return batchBytes >= BATCH_BYTES ? flushBatch() : undefined;
        });
        if (batchBytes > 0) await flushBatch();
        for (const written of writes) await written;
        await flushed;
      } catch (e) {
        // The file stays open until no write or flush can still be running on it.
        await Promise.allSettled([...writes, flushed]);
        throw e;
      }
      await fh.sync();
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
