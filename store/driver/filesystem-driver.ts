import { createReadStream, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  checkPath,
  type AppendControl,
  type ByteRange,
  type FileInfo,
  type FileWriter,
  type PutOptions,
  type StorageDriver,
  type WriterOptions,
} from './storage-driver.js';
import { PathNotFoundError } from '../errors.js';
import { pumpInto } from './pump.js';
import { DirectoryListings } from './directory-listings.js';

const READ_CHUNK = 1 << 20;
const SYNC_EVERY = 8 << 20;

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
  const written = (await fh.writev(chunks)).bytesWritten;
  if (written === length) return;
  const rest = Buffer.concat(chunks, length).subarray(written);
  for (let offset = 0; offset < rest.length; ) offset += (await fh.write(rest, offset)).bytesWritten;
}

/**
 * A local file being written. Appends write in place (opened 'a'); a new file is written under a temp
 * name and renamed over its path at commit. Dirty pages are flushed in the background every SYNC_EVERY
 * bytes, so the final fsync does not find the whole file to write. With a threaded hasher the batches go
 * to its thread, which writes them to the fd and hashes them there (bytes cross threads once, never read
 * back); otherwise they are written with writev on the thread pool, one at a time (thread-pool writes may
 * finish out of order).
 */
class FilesystemWriter implements FileWriter {
  readonly maxPending: number;
  private unsynced = 0;
  /** The latest background flush (awaited at commit/cancel), and whether it runs. */
  private flushed: Promise<void> = Promise.resolve();
  private flushingNow = false;

  constructor(
    private readonly fh: fs.FileHandle,
    public size: number,
    /** Temp file renamed onto `full` at commit; undefined for appends in place. */
    private readonly tmp: string | undefined,
    private readonly full: string,
    private readonly via?: WriterOptions['hashOnThread'],
  ) {
    // The hashing thread applies batches in order: two outstanding keep it busy while the next is gathered.
    this.maxPending = via ? 2 : 1;
  }

  write(chunks: Buffer[], length: number): Promise<void> {
    this.size += length;
    const written = this.via ? this.via.hasher.write(this.fh.fd, chunks, this.via.handOver) : writeAll(this.fh, chunks, length);
    this.unsynced += length;
    if (this.unsynced >= SYNC_EVERY && !this.flushingNow) {
      this.unsynced = 0;
      this.flushingNow = true;
      this.flushed = written.then(() => this.fh.datasync()).finally(() => (this.flushingNow = false));
      this.flushed.catch(() => undefined);
    }
    return written;
  }

  async commit(): Promise<number> {
    try {
      await this.flushed;
      await this.fh.sync();
      this.size = (await this.fh.stat()).size;
    } catch (e) {
      await this.cancel();
      throw e;
    }
    await this.fh.close();
    if (this.tmp !== undefined) {
      try {
        await fs.rename(this.tmp, this.full);
      } catch (e) {
        await fs.rm(this.tmp, { force: true }).catch(() => undefined);
        throw e;
      }
    }
    return this.size;
  }

  async cancel(): Promise<void> {
    await this.flushed.catch(() => undefined);
    await this.fh.close().catch(() => undefined);
    if (this.tmp !== undefined) await fs.rm(this.tmp, { force: true }).catch(() => undefined);
  }
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
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(full, 'r');
    } catch (e) {
      if (isMissing(e)) throw new PathNotFoundError(path);
      throw e;
    }
    // Reading from an open handle keeps the bytes readable even if the file is replaced or deleted meanwhile.
    return createReadStream('', { fd: fh, start: range?.start, end: range?.end, highWaterMark: READ_CHUNK, autoClose: true });
  }

  async writer(path: string, options: WriterOptions = {}): Promise<FileWriter> {
    const full = this.localPath(path);
    await fs.mkdir(dirname(full), { recursive: true });
    if (options.append) {
      const fh = await fs.open(full, 'a');
      try {
        return new FilesystemWriter(fh, (await fh.stat()).size, undefined, full, options.hashOnThread);
      } catch (e) {
        await fh.close();
        throw e;
      }
    }
    const tmp = tempName(full);
    const fh = await fs.open(tmp, 'w');
    return new FilesystemWriter(fh, 0, tmp, full, options.hashOnThread);
  }

  async appendFrom(path: string, source: Readable, control: AppendControl & Pick<WriterOptions, 'hashOnThread'> = {}): Promise<number> {
    return pumpInto(source, await this.writer(path, { append: true, hashOnThread: control.hashOnThread }), control);
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
