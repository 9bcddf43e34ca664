import type { Readable, Writable } from 'node:stream';

export interface FileInfo {
  path: string;
  size: number;
  modTime: Date;
  isDir: boolean;
}

export interface PutOptions {
  /**
   * Whether the content must survive a power loss once the promise resolves (default true). State that
   * is fine to lose in a crash (an upload session's metadata: the client starts over) skips the fsync.
   */
  durable?: boolean;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive; to the end when absent. */
  end?: number;
}

/**
 * A digester that can also write the bytes it hashes into a local file on its own thread
 * (store/off-thread-digester.ts). A driver backed by local files may use it for an append; others ignore
 * it (the store then hashes the bytes otherwise: by reading them back at commit).
 */
export interface ThreadedHasher {
  /** Bytes hashed so far. */
  readonly size: number;
  /** Writes and hashes `chunks` at the end of the open local file `fd` (opened for append), in order. */
  write(fd: number, chunks: readonly Uint8Array[], handOver: boolean): Promise<void>;
}

export interface WriterOptions {
  /**
   * Continue the file's existing bytes (create it when absent); writes land in place as they come and
   * stay even when the writer is cancelled. Without it the writer makes a new file that appears (or
   * replaces the old one) only at commit: cancel leaves no trace.
   */
  append?: boolean | undefined;
  /**
   * Let this hasher write and hash the bytes on its thread (drivers with local files only; a hint).
   * `handOver`: the chunks are nobody else's once written, so they may move to that thread without a copy.
   */
  hashOnThread?: { hasher: ThreadedHasher; handOver: boolean } | undefined;
}

/**
 * A file being written (distribution's FileWriter): bytes go in order through `write`, then `commit`
 * makes them durable (and, for a new file, visible at its path) or `cancel` gives up.
 * Memory stays bounded: a driver buffers at most one part (an object store's multipart part, ≤ 16 MiB).
 */
export interface FileWriter {
  /** Bytes in the file: those it had (append) plus those given to `write` so far. */
  readonly size: number;
  /**
   * Writes that may be outstanding at once (the next `write` is called only after the oldest of this many
   * settled). Outstanding writes land in the order of the calls.
   */
  readonly maxPending: number;
  /** Appends `chunks` (`length` bytes in all), in order. Rejects with the storage error (errno `code` kept). */
  write(chunks: Buffer[], length: number): Promise<void>;
  /** Every write settled: makes the bytes durable and visible; resolves with the file's size. */
  commit(): Promise<number>;
  /** Every write settled: releases the writer; a new file is not created, an append keeps what was written. */
  cancel(): Promise<void>;
}

/** How an append may stop before its source ends. */
export interface AppendControl {
  /**
   * Aborting stops the append at once: bytes read but not yet written are dropped, and the promise
   * rejects with the signal's reason once no write is under way.
   */
  signal?: AbortSignal | undefined;
  /**
   * The source may send nothing for at most this many milliseconds while the append waits for it (not
   * while the append itself holds it back); then the append stops, keeps what arrived, and rejects with
   * SourceIdleError. Unbounded when absent.
   */
  idleMs?: number | undefined;
}

/**
 * A file's bytes (or a range of them) on their way from the storage to a socket, written from a few
 * reused buffers (see StorageDriver.sender).
 */
export interface FileSender {
  /** Bytes it writes. */
  readonly length: number;
  /**
   * Writes the bytes to `out` in order, without ending it; resolves once `out` has called back every
   * write. A buffer is reused only after its write was called back. Rejects when the storage fails or
   * `out` closes first (the caller then destroys `out`). Called at most once.
   */
  writeTo(out: Writable): Promise<void>;
  /** Lets go of the storage's connection when writeTo will not be called. */
  cancel(): void;
}

/**
 * The storage boundary under store/ (distribution's StorageDriver): a tree of named byte files addressed by
 * '/'-separated paths relative to the driver's root. The filesystem (filesystem-driver.ts) and S3
 * (s3-driver.ts) implement it: nothing here needs renaming directories, hard links, random writes or
 * file descriptors. test/store-driver-conformance.test.ts runs the same cases against both.
 */
export interface StorageDriver {
  readonly name: string;
  /** Whole small file (manifests, links, metadata). Throws PathNotFoundError. */
  getContent(path: string): Promise<Buffer>;
  /** Atomically replaces (or creates) a small file: readers see the old or the new bytes, never a mix. */
  putContent(path: string, content: string | Uint8Array, options?: PutOptions): Promise<void>;
  /** Streams a file or a byte range of it. Throws PathNotFoundError. */
  reader(path: string, range?: ByteRange): Promise<Readable>;
  /** A writer for `path` (see FileWriter, WriterOptions). */
  writer(path: string, options?: WriterOptions): Promise<FileWriter>;
  /**
   * Appends a stream to a file (creating it) through `writer(path, { append: true, … })`, durable when the
   * promise resolves; returns the new size. A source that fails, closes early or goes idle leaves what
   * arrived before, durable, and rejects with SourceError; a failed write rejects with its own error
   * (errno `code` kept). See pump.ts.
   */
  appendFrom(path: string, source: Readable, control?: AppendControl & Pick<WriterOptions, 'hashOnThread'>): Promise<number>;
  /** Throws PathNotFoundError. */
  stat(path: string): Promise<FileInfo>;
  /** Names of the direct children of a directory, sorted; [] when it does not exist. */
  list(path: string): Promise<string[]>;
  /**
   * One page of `list`: at most `limit` (default all) names of the direct children that sort strictly
   * after `after` (code point order of the names; from the first when absent), sorted; [] when the
   * directory does not exist. Fewer than `limit` means the directory holds no more. Lets a caller page
   * through a large directory without reading it whole each time: an object store answers with a
   * start-after listing (its common prefixes come in the order of `name/`, so it re-sorts names that are
   * prefixes of their neighbours followed by '-' or '.'); the filesystem keeps the sorted listing of a
   * large, unchanged directory.
   */
  listPage(path: string, after?: string, limit?: number): Promise<string[]>;
  /** Atomically moves a file into place, replacing any file there. */
  move(source: string, destination: string): Promise<void>;
  /** Removes a file or a whole subtree; no error when absent. */
  delete(path: string): Promise<void>;
  /**
   * A local filesystem path for the file, when the driver has one (the filesystem: send-file, hard links
   * into OCI layouts, lock files); absent on object stores, where every caller falls back to the calls above.
   */
  localPath?(path: string): string;
  /**
   * The bytes `range.start`..`range.end` (to the end of the file when absent) of a file, ready to be
   * written to a socket from reused buffers (S3: a fast path for blob GETs, cheaper than `reader` in
   * CPU). Undefined when the driver has no such path for this read (the caller uses `reader`). Throws
   * PathNotFoundError.
   */
  sender?(path: string, range: ByteRange): Promise<FileSender | undefined>;
}

/** Rejects paths that could escape the driver root or are not in canonical form. */
export function checkPath(path: string): string {
  if (path.length === 0 || path.startsWith('/') || path.endsWith('/') || path.includes('\0')) {
    throw new Error(`invalid storage path "${path}"`);
  }
  for (const part of path.split('/')) {
    if (part === '' || part === '.' || part === '..') throw new Error(`invalid storage path "${path}"`);
  }
  return path;
}
