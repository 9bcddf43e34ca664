import { closeSync, createReadStream, lstatSync, openSync, readdirSync, readSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DigestStream, layerMediaType, type Descriptor, type DiffID, type LayerCompression } from '../../oci/index.js';
import type { Store } from '../../store/index.js';
import { compressor } from './compression.js';
import { OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX } from './layer-unpack.js';
import { isWhiteout, LowerView } from './lower-view.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from './tar-format.js';
import { keepXattr, readXattrTree, type XattrMap } from './xattrs.js';
import { decodeName, fsPath, readdirNamesSync, readlinkName } from './fs-names.js';

export interface CommitOptions {
  /** The overlay upper dir of a finished step (unmounted). */
  upper: string;
  /** The lower dirs it was mounted on, topmost first (snapshot diff dirs). */
  lowers: string[];
  /** Default gzip. */
  compression?: LayerCompression;
  gzipLevel?: number;
  /** Clamp every mtime to this (seconds since the epoch) so rebuilds give the same bytes. */
  sourceDateEpoch?: number;
  /** Paths (relative, no leading slash) left out with everything below them, e.g. mount stubs. */
  exclude?: Iterable<string>;
  /**
   * The step set no xattrs (a COPY): only directories that exist below too can carry any (overlay copied
   * them up with theirs), so only those are read instead of dumping the whole upper dir (a getfattr process).
   */
  xattrsOnCopiedUpDirsOnly?: boolean;
  /** Every lower is known to hold no kept xattr and no opaque marker (xattr-free.ts): none is read from them. */
  lowersXattrFree?: boolean;
}

export interface CommitResult {
  descriptor: Descriptor;
  diffId: DiffID;
  /** The step changed nothing: the tar holds no entries (docker history's `empty_layer`). */
  emptyLayer: boolean;
  /** Bytes of the uncompressed tar. */
  uncompressedSize: number;
  /** The upper dir holds no xattr a layer keeps and no opaque marker: as a snapshot it is xattr-free (xattr-free.ts). */
  xattrFree: boolean;
}

interface UpperEntry {
  rel: string;
  abs: string;
  st: BigIntStats;
}

/**
 * Depth first, names sorted, streamed: only the directories on the current path are held, so memory does
 * not grow with the layer. Synchronous on purpose: per-entry async stats cost more than the walk.
 */
function* walk(root: string, exclude: Set<string>): Generator<UpperEntry> {
  const stack: { rel: string; names: string[]; next: number }[] = [{ rel: '', names: readdirNamesSync(root).sort(), next: 0 }];
  while (stack.length) {
    const frame = stack.at(-1)!;
    if (frame.next >= frame.names.length) {
      stack.pop();
      continue;
    }
    const name = frame.names[frame.next++]!;
    const childRel = frame.rel ? `${frame.rel}/${name}` : name;
    if (exclude.has(childRel)) continue;
    const abs = join(root, childRel);
    const st = lstatSync(fsPath(abs), { bigint: true });
    yield { rel: childRel, abs, st };
    if (st.isDirectory()) stack.push({ rel: childRel, names: readdirNamesSync(abs).sort(), next: 0 });
  }
}

/**
 * The paths of an upper dir the lower layers must be asked about — directories and whiteouts (character
 * devices; the walk checks their device number) — from the directory listings alone, without a stat per file.
 */
function lowerLookups(root: string, exclude: Set<string>): string[] {
  const out: string[] = [];
  const dirs = [''];
  while (dirs.length) {
    const rel = dirs.pop()!;
    for (const d of readdirSync(fsPath(rel ? join(root, rel) : root), { withFileTypes: true, encoding: 'buffer' })) {
      const childRel = rel ? `${rel}/${decodeName(d.name)}` : decodeName(d.name);
      if (exclude.has(childRel)) continue;
      if (d.isDirectory()) {
        out.push(childRel);
        dirs.push(childRel);
      } else if (d.isCharacterDevice()) out.push(childRel);
    }
  }
  return out;
}

function seconds(st: BigIntStats, clamp?: number): number {
  const s = Number(st.mtimeNs / 1_000_000_000n);
  return clamp !== undefined && s > clamp ? clamp : s;
}

function deviceNumbers(rdev: bigint): { devmajor: number; devminor: number } {
  const r = Number(rdev);
  return { devmajor: ((r >> 8) & 0xfff) | (Number(rdev >> 32n) & ~0xfff), devminor: (r & 0xff) | ((r >> 12) & ~0xff & 0xfffff) };
}

function parentName(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i === -1 ? '' : rel.slice(0, i + 1);
}

function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/**
 * The tar entries of an overlay upper dir as an image layer, in a stable order (depth first, names
 * sorted), plus the files whose bytes follow each header.
 */
export async function planLayer(options: CommitOptions): Promise<Array<{ header: TarHeader; file?: string }>> {
  const plan: Array<{ header: TarHeader; file?: string }> = [];
  for await (const item of planEntries(options)) plan.push(item);
  return plan;
}

/** `planLayer`'s entries one at a time, as the walk finds them (what commits stream into the tar). */
export async function* planEntries(options: CommitOptions, onXattrs?: (xattrs: XattrMap) => void): AsyncGenerator<{ header: TarHeader; file?: string }> {
  const exclude = new Set(options.exclude ?? []);
  const lookups = lowerLookups(options.upper, exclude);
  let xattrs: XattrMap;
  let lowers: LowerView;
  const xattrFree = options.lowersXattrFree === true;
  if (options.xattrsOnCopiedUpDirsOnly) {
    // copied-up directories carry their lower's xattrs: none when the lowers have none
    lowers = await LowerView.load(options.lowers, lookups, { upperXattrsOf: options.upper, xattrFree });
    xattrs = lowers.upperXattrs;
  } else {
    // the xattr dump (a getfattr process) and the lower layers' lookups run side by side
    [xattrs, lowers] = await Promise.all([readXattrTree(options.upper), LowerView.load(options.lowers, lookups, { xattrFree })]);
  }
  onXattrs?.(xattrs);
  const attrsOf = (abs: string) => xattrs.get(abs) ?? new Map<string, Buffer>();
  const kept = (abs: string) => {
    const m = new Map<string, Buffer>();
    for (const [k, v] of attrsOf(abs)) if (keepXattr(k)) m.set(k, v);
    return m.size ? m : undefined;
  };
  const clamp = options.sourceDateEpoch;
  const firstPathOfInode = new Map<string, string>();
  const plan = { push: (item: { header: TarHeader; file?: string }) => void pending.push(item) };
  const pending: Array<{ header: TarHeader; file?: string }> = [];

  for (const e of walk(options.upper, exclude)) {
    if (pending.length) yield* pending.splice(0);
    const { st, rel, abs } = e;
    const base = { uid: Number(st.uid), gid: Number(st.gid), mode: Number(st.mode) & 0o7777, mtime: seconds(st, clamp), size: 0 };
    if (isWhiteout(st)) {
      if (!lowers.lookup(rel)) continue; // nothing below to hide
      plan.push({ header: { ...base, uid: 0, gid: 0, name: `${parentName(rel)}${WHITEOUT_PREFIX}${baseName(rel)}`, type: 'file' } });
      continue;
    }
    if (st.isDirectory()) {
      const below = lowers.lookup(rel);
      const opaque = attrsOf(abs).get(OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
      const attrs = kept(abs);
      if (below?.isDirectory() && !opaque && !attrs && below.mode === st.mode && below.uid === st.uid && below.gid === st.gid && below.mtimeNs === st.mtimeNs) {
        continue; // only copied up to hold a changed child
      }
      plan.push({ header: { ...base, name: `${rel}/`, type: 'directory', xattrs: attrs } });
      if (opaque && below?.isDirectory()) {
        plan.push({ header: { ...base, name: `${rel}/${OPAQUE_WHITEOUT}`, type: 'file', mode: base.mode & 0o777, xattrs: undefined } });
      }
      continue;
    }
    const attrs = kept(abs);
    if (st.isSymbolicLink()) {
      plan.push({ header: { ...base, mode: 0o777, name: rel, type: 'symlink', linkname: await readlinkName(abs), xattrs: attrs } });
      continue;
    }
    if (st.isFile()) {
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = firstPathOfInode.get(key);
        if (first) {
          plan.push({ header: { ...base, name: rel, type: 'hardlink', linkname: first } });
          continue;
        }
        firstPathOfInode.set(key, rel);
      }
      plan.push({ header: { ...base, name: rel, type: 'file', size: Number(st.size), xattrs: attrs }, file: abs });
      continue;
    }
    if (st.isCharacterDevice() || st.isBlockDevice()) {
      plan.push({ header: { ...base, name: rel, type: st.isCharacterDevice() ? 'char' : 'block', ...deviceNumbers(st.rdev), xattrs: attrs } });
      continue;
    }
    if (st.isFIFO()) plan.push({ header: { ...base, name: rel, type: 'fifo', xattrs: attrs } });
    // sockets cannot be stored in a tar; like docker, leave them out
  }
  yield* pending.splice(0);
}

async function* fileBytes(path: string, size: number): AsyncGenerator<Buffer> {
  let sent = 0;
  if (size > 0) {
    for await (const chunk of createReadStream(fsPath(path), { highWaterMark: 512 * 1024, end: size - 1 })) {
      const buf = chunk as Buffer;
      sent += buf.length;
      yield buf;
    }
  }
  // a file that shrank under us still yields exactly the size its header promised
  if (sent < size) yield Buffer.alloc(size - sent);
}

const SMALL_FILE = 1024 * 1024;
const OUTPUT_CHUNK = 512 * 1024;

/**
 * A small file's bytes, read synchronously: for thousands of small files the thread-pool round trips of
 * async reads cost ten times the reads themselves. Always exactly `size` bytes (zero-filled if the file
 * shrank), so the tar stays consistent with its header.
 */
function readSmallFile(path: string, size: number): Buffer {
  const data = Buffer.alloc(size);
  const fd = openSync(fsPath(path), 'r');
  try {
    let filled = 0;
    while (filled < size) {
      const n = readSync(fd, data, filled, size - filled, filled);
      if (n === 0) break;
      filled += n;
    }
  } finally {
    closeSync(fd);
  }
  return data;
}

/**
 * The layer as an uncompressed tar stream: headers and small bodies batched into larger chunks, big
 * files streamed through.
 */
export function tarStream(plan: Iterable<{ header: TarHeader; file?: string }> | AsyncIterable<{ header: TarHeader; file?: string }>): Readable {
  return Readable.from(
    (async function* () {
      let batch: Buffer[] = [];
      let batched = 0;
      const add = (b: Buffer) => {
        batch.push(b);
        batched += b.length;
      };
      const flush = () => {
        const out = batch.length === 1 ? batch[0] : Buffer.concat(batch);
        batch = [];
        batched = 0;
        return out;
      };
      for await (const { header, file } of plan) {
        add(encodeHeader(header));
        if (file && header.size > 0) {
          if (header.size <= SMALL_FILE) {
            add(readSmallFile(file, header.size));
          } else {
            yield flush();
            yield* fileBytes(file, header.size);
          }
          const pad = padding(header.size);
          if (pad.length) add(pad);
        }
        if (batched >= OUTPUT_CHUNK) yield flush();
      }
      add(END_OF_ARCHIVE);
      yield flush();
    })(),
    { objectMode: false, highWaterMark: 1024 * 1024 },
  );
}

/**
 * Turns an overlay upper dir into a layer blob in the store: whiteouts, opaque dirs, xattrs, hardlinks,
 * clamped times; compressed while streaming, with the layer digest and the diffID computed in the same
 * single pass over the bytes.
 */
export async function commitUpperDir(store: Store, options: CommitOptions): Promise<CommitResult> {
  let entries = 0;
  let xattrFree = false;
  const matters = (xattrs: XattrMap) => {
    for (const attrs of xattrs.values()) for (const [k, v] of attrs) if (keepXattr(k) || (k === OVERLAY_OPAQUE_XATTR && v.toString() === 'y')) return true;
    return false;
  };
  const counted = (async function* () {
    for await (const item of planEntries(options, (x) => (xattrFree = !matters(x)))) {
      entries++;
      yield item;
    }
  })();
  const compression = options.compression ?? 'gzip';
  const tar = tarStream(counted);
  const squeeze = compressor(compression, { gzipLevel: options.gzipLevel });
  if (!squeeze) {
    // uncompressed: the store's own digest of the bytes is the diffID
    const blob = await store.blobs.write(tar);
    return {
      descriptor: { mediaType: layerMediaType(compression), digest: blob.digest, size: blob.size },
      diffId: blob.digest as DiffID,
      emptyLayer: entries === 0,
      uncompressedSize: blob.size,
      xattrFree,
    };
  }
  const diff = new DigestStream();
  const out = diff.pipe(squeeze);
  tar.on('error', (e) => out.destroy(e));
  diff.on('error', (e) => out.destroy(e));
  tar.pipe(diff);
  const blob = await store.blobs.write(out);
  return {
    descriptor: { mediaType: layerMediaType(compression), digest: blob.digest, size: blob.size },
    diffId: diff.digest() as DiffID,
    emptyLayer: entries === 0,
    uncompressedSize: diff.size,
    xattrFree,
  };
}
