import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  promises as fs,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { Digester, mapLimit, type DiffID } from '../../oci/index.js';
import { decompress, type DecompressMode } from './compression.js';
import { encodeName, fsPath, mknodName, readdirNamesSync } from './fs-names.js';
import { cleanInside, resolveInRoot, resolveInRootSync } from './safe-path.js';
import { readTar, type TarHeader } from './tar-format.js';
import { keepXattr, writeXattrs, type XattrMap } from './xattrs.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export type UnpackMode = 'overlay' | 'apply' | 'archive';

export interface UnpackOptions {
  /**
   * `overlay` (default): `dir` is an empty snapshot diff dir used as an overlay lower; whiteouts become
   * overlay whiteouts (char device 0/0) and opaque markers (`trusted.overlay.opaque=y`).
   * `apply`: `dir` is a full root filesystem; whiteouts delete what they name.
   * `archive`: an ADD of a tar (docker's archive.Untar): `.wh.` names are ordinary files.
   */
  mode?: UnpackMode;
  /** How the blob is compressed; `auto` (default) looks at its magic bytes. */
  compression?: DecompressMode;
  /** When given, a layer whose uncompressed digest differs is rejected. */
  expectedDiffId?: DiffID;
  /** Name used in error messages (e.g. the layer digest). */
  label?: string;
}

export interface UnpackResult {
  diffId: DiffID;
  /** Bytes of the uncompressed tar. */
  size: number;
  entries: number;
  /** Paths given xattrs a layer keeps, or an overlay opaque marker (0: the dir holds none that matters as a lower). */
  xattrPaths: number;
}

/** Go's time.Unix(0, 1<<63-1): the last second a nanosecond count reaches (in 2262). */
const MAX_TIME = 9_223_372_036;

/**
 * A time docker, containerd and BuildKit can set: one before 1970 or after 2262 becomes the epoch (their
 * chtimes/boundTime), for layers and ADD archives alike.
 */
function boundTime(seconds: number): number {
  return seconds < 0 || seconds > MAX_TIME ? 0 : seconds;
}

/**
 * Applies entries one by one. File system calls are synchronous on purpose: a layer is thousands of
 * tiny operations, and the thread-pool round trip of each async call costs more than the call.
 */
class Applier {
  // Deferred work is recorded by path relative to the root and re-resolved inside the root when it runs:
  // a later entry of the same layer may have turned a parent dir into a symlink pointing outside.
  private readonly dirTimes: Array<{ rel: string; mtime: number }> = [];
  readonly xattrs = new Map<string, Map<string, Buffer>>();
  private readonly whiteouts: string[] = [];
  private readonly created = new Set<string>();
  /**
   * Parent names already resolved to real directories. Every component of a cached path is a real dir,
   * so it stays valid until something is removed or replaced — which clears the cache.
   */
  private readonly parents = new Map<string, string>();

  constructor(
    private readonly root: string,
    private readonly mode: UnpackMode,
  ) {}

  private ensureDir(path: string): void {
    let st;
    try {
      st = lstatSync(fsPath(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st?.isDirectory()) return;
    if (st) this.remove(path);
    else this.ensureDir(dirname(path));
    try {
      mkdirSync(fsPath(path), { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    this.created.add(path);
  }

  private remove(path: string): void {
    rmSync(fsPath(path), { recursive: true, force: true });
    this.parents.clear();
  }

  private removeExisting(path: string, keepDir: boolean): void {
    let st;
    try {
      st = lstatSync(fsPath(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return;
    }
    if (keepDir && st.isDirectory()) return;
    this.remove(path);
  }

  private parentDir(parentRel: string): string {
    if (parentRel === '.') return this.root;
    let dir = this.parents.get(parentRel);
    if (!dir) {
      dir = resolveInRootSync(this.root, parentRel, true);
      this.ensureDir(dir);
      this.parents.set(parentRel, dir);
    }
    return dir;
  }

  async apply(header: TarHeader, body: AsyncGenerator<Buffer>): Promise<void> {
    const h = { ...header, mtime: boundTime(header.mtime) };
    const rel = cleanInside(h.name);
    if (!rel) return; // the root itself
    const name = basename(rel);
    const parent = this.parentDir(dirname(rel));

    if (this.mode !== 'archive' && name === OPAQUE_WHITEOUT) {
      if (this.mode === 'overlay') this.setXattr(parent, OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
      else {
        for (const child of readdirNamesSync(parent)) {
          const p = join(parent, child);
          if (!this.created.has(p)) this.remove(p);
        }
      }
      return;
    }
    if (this.mode !== 'archive' && name.startsWith(WHITEOUT_PREFIX)) {
      const target = join(parent, name.slice(WHITEOUT_PREFIX.length));
      this.removeExisting(target, false);
      if (this.mode === 'overlay') this.whiteouts.push(relative(this.root, target));
      return;
    }

    const target = join(parent, name);
    this.removeExisting(target, h.type === 'directory');
    this.created.add(target);
    switch (h.type) {
      case 'directory':
        try {
          mkdirSync(fsPath(target), { mode: 0o700 });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        break;
      case 'file': {
        const fd = openSync(fsPath(target), 'wx', 0o600);
        try {
          for await (const chunk of body) {
            for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
          }
          fchownSync(fd, h.uid, h.gid);
          fchmodSync(fd, h.mode & 0o7777);
          futimesSync(fd, h.mtime, h.mtime);
        } finally {
          closeSync(fd);
        }
        this.keepXattrs(target, h);
        return;
      }
      case 'symlink':
        symlinkSync(encodeName(h.linkname ?? ''), fsPath(target));
        lchownSync(fsPath(target), h.uid, h.gid);
        lutimesSync(fsPath(target), h.mtime, h.mtime);
        this.keepXattrs(target, h);
        return;
      case 'hardlink': {
        const linkRel = cleanInside(h.linkname ?? '');
        const source = linkRel ? resolveInRootSync(this.root, linkRel, false) : this.root;
        let st;
        try {
          st = lstatSync(fsPath(source));
        } catch {
          st = undefined;
        }
        if (!st || st.isDirectory() || !linkRel) {
          throw new Error(`hardlink ${h.name} → ${h.linkname} does not point at a file inside the layer; refusing it`);
        }
        linkSync(fsPath(source), fsPath(target));
        return; // shares the inode (and metadata) of its source
      }
      case 'char':
      case 'block':
        await mknodName(target, h.type === 'char' ? 'c' : 'b', h.mode, h.devmajor ?? 0, h.devminor ?? 0);
        break;
      case 'fifo':
        await mknodName(target, 'p', h.mode);
        break;
    }
    lchownSync(fsPath(target), h.uid, h.gid);
    chmodSync(fsPath(target), h.mode & 0o7777);
    this.keepXattrs(target, h);
    if (h.type === 'directory') this.dirTimes.push({ rel: relative(this.root, target), mtime: h.mtime });
    else lutimesSync(fsPath(target), h.mtime, h.mtime);
  }

  private keepXattrs(target: string, h: TarHeader): void {
    for (const [key, value] of h.xattrs ?? []) if (keepXattr(key)) this.setXattr(target, key, value);
  }

  private setXattr(path: string, key: string, value: Buffer): void {
    const rel = relative(this.root, path);
    let attrs = this.xattrs.get(rel);
    if (!attrs) this.xattrs.set(rel, (attrs = new Map()));
    attrs.set(key, value);
  }

  /** Where a recorded path is now, resolved inside the root (the last component is never followed). */
  private async locate(rel: string): Promise<string> {
    if (rel === '') return this.root;
    const parent = dirname(rel);
    return join(parent === '.' ? this.root : await resolveInRoot(this.root, parent, true), basename(rel));
  }

  async finish(): Promise<void> {
    await mapLimit([...this.whiteouts], 8, async (rel) => {
      const p = await this.locate(rel);
      this.ensureDir(dirname(p));
      this.remove(p);
      await mknodName(p, 'c', 0o000, 0, 0);
    });
    const xattrs: XattrMap = new Map();
    for (const [rel, attrs] of this.xattrs) xattrs.set(await this.locate(rel), attrs);
    await writeXattrs(xattrs);
    this.dirTimes.sort((a, b) => b.rel.length - a.rel.length);
    for (const d of this.dirTimes) await fs.lutimes(fsPath(await this.locate(d.rel)), d.mtime, d.mtime).catch(() => undefined);
  }
}

/**
 * Applies a layer blob onto `dir`, keeping ownership, modes, xattrs, hardlinks, devices and times.
 * Nothing is written outside `dir`: names are cleaned (`../../etc/x` lands at `dir/etc/x`), symlinks in
 * a path resolve inside `dir`, and a hardlink must name a file already inside `dir`.
 * Returns the diffID computed over the uncompressed stream while applying it.
 */
export async function unpackLayer(source: Readable, dir: string, options: UnpackOptions = {}): Promise<UnpackResult> {
  const plain = await decompress(source, options.compression ?? 'auto');
  const digest = new Digester();
  // hashed as the tar reader pulls the bytes: no extra stream hop; readTar reads to the very end
  const hashed = (async function* () {
    for await (const chunk of plain) {
      digest.update(chunk as Buffer);
      yield chunk as Buffer;
    }
  })();
  const applier = new Applier(dir, options.mode ?? 'overlay');
  let entries = 0;
  try {
    for await (const { header, body } of readTar(hashed)) {
      entries++;
      try {
        await applier.apply(header, body);
      } catch (e) {
        throw new Error(`unpacking ${options.label ?? 'layer'} entry "${header.name}" failed: ${(e as Error).message}`);
      }
    }
    await applier.finish();
  } catch (e) {
    plain.destroy();
    throw e;
  }
  const diffId = digest.digest() as DiffID;
  if (options.expectedDiffId && options.expectedDiffId !== diffId) {
    throw new Error(`${options.label ?? 'layer'} does not match its diffID: expected ${options.expectedDiffId}, unpacked ${diffId}; the image is corrupt`);
  }
  return { diffId, size: digest.size, entries, xattrPaths: applier.xattrs.size };
}
