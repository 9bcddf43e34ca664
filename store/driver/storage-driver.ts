import type { Readable } from 'node:stream';

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
 * Writes a batch of chunks, in order, at the end of the open local file `fd`, e.g. on another thread that
 * also hashes them. Batches must land in the order of the calls, as several may be outstanding. The file
 * must not be closed before every promise has settled.
 */
export type ChunkWriter = (fd: number, chunks: Buffer[]) => Promise<void>;

/** How an append may stop before its source ends. */
export interface AppendControl {
  /**
   * Aborting stops the append at once: bytes read but not yet written are dropped, and the promise
   * rejects with the signal's reason once no write is under way.
   */
  signal?: AbortSignal;
  /**
   * The source may send nothing for at most this many milliseconds while the append waits for it (not
   * while the append itself holds it back); then the append stops, keeps what arrived, and rejects with
   * SourceIdleError. Unbounded when absent.
   */
  idleMs?: number;
}

/**
 * The storage boundary under store/: a tree of named byte files addressed by '/'-separated paths
 * relative to the driver's root. The filesystem implements it now; an object store (S3) can later,
 * since nothing here needs rename of directories, hard links or random writes.
 */
export interface StorageDriver {
  readonly name: string;
  /** Whole small file (manifests, links, metadata). Throws PathNotFoundError. */
  getContent(path: string): Promise<Buffer>;
  /** Atomically replaces (or creates) a small file: readers see the old or the new bytes, never a mix. */
  putContent(path: string, content: string | Uint8Array, options?: PutOptions): Promise<void>;
  /** Streams a file or a byte range of it. Throws PathNotFoundError. */
  reader(path: string, range?: ByteRange): Promise<Readable>;
  /**
   * Appends a stream to a file (creating it), durable when the promise resolves; returns the new size.
   * A source that fails, closes early or goes idle leaves what arrived before, durable, and rejects with
   * SourceError; a failed write rejects with its own error (errno `code` kept).
   */
  appendFrom(path: string, source: Readable, control?: AppendControl): Promise<number>;
  /**
   * Like appendFrom, but `writer` writes each batch of chunks into the open file (drivers backed by local
   * files only). Lets the store hash and write uploads on a worker thread without copying the bytes.
   */
  appendThrough?(path: string, source: Readable, writer: ChunkWriter, control?: AppendControl): Promise<number>;
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
  /** A local filesystem path for the file, when the driver has one (lets callers use sendfile-like paths). */
  localPath?(path: string): string;
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
