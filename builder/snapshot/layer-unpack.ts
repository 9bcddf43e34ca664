import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { DigestStream, type DiffID } from '../../oci/index.js';
import { decompress, type DecompressMode } from './compression.js';
import { cleanInside, resolveInRoot } from './safe-path.js';
import { readTar, type TarHeader } from './tar-format.js';
import { writeXattrs, type XattrMap } from './xattrs.js';

const run = promisify(execFile);

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export interface UnpackOptions {
  /**
   * `overlay` (default): `dir` is an empty snapshot diff dir used as an overlay lower; whiteouts become
   * overlay whiteouts (char device 0/0) and opaque markers (`trusted.overlay.opaque=y`).
   * `apply`: `dir` is a full root filesystem; whiteouts delete what they name.
   */
  mode?: 'overlay' | 'apply';
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
}

class Applier {
  // Deferred work is recorded by path relative to the root and re-resolved inside the root when it runs:
  // a later entry of the same layer may have turned a parent dir into a symlink pointing outside.
  private readonly dirTimes: Array<{ rel: string; mtime: number }> = [];
  private readonly xattrs = new Map<string, Map<string, Buffer>>();
  private readonly whiteouts: string[] = [];
  private readonly created = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly mode: 'overlay' | 'apply',
  ) {}

  private async ensureDir(path: string): Promise<void> {
    try {
      if ((await fs.lstat(path)).isDirectory()) return;
      await fs.rm(path, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await this.ensureDir(dirname(path));
    }
    await fs.mkdir(path, { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    this.created.add(path);
  }

  private async removeExisting(path: string, keepDir: boolean): Promise<void> {
    try {
      const st = await fs.lstat(path);
      if (keepDir && st.isDirectory()) return;
      await fs.rm(path, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  async apply(h: TarHeader, body: AsyncGenerator<Buffer>): Promise<void> {
    const rel = cleanInside(h.name);
    if (!rel) return; // the root itself
    const name = basename(rel);
    const parentRel = dirname(rel);
    const parent = parentRel === '.' ? this.root : await resolveInRoot(this.root, parentRel, true);
    await this.ensureDir(parent);

    if (name === OPAQUE_WHITEOUT) {
      if (this.mode === 'overlay') this.setXattr(parent, OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
      else {
        for (const child of await fs.readdir(parent)) {
          const p = join(parent, child);
          if (!this.created.has(p)) await fs.rm(p, { recursive: true, force: true });
        }
      }
      return;
    }
    if (name.startsWith(WHITEOUT_PREFIX)) {
      const target = join(parent, name.slice(WHITEOUT_PREFIX.length));
      await this.removeExisting(target, false);
      if (this.mode === 'overlay') this.whiteouts.push(relative(this.root, target));
      return;
    }

    const target = join(parent, name);
    await this.removeExisting(target, h.type === 'directory');
    this.created.add(target);
    switch (h.type) {
      case 'directory':
        await fs.mkdir(target, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
        break;
      case 'file': {
        const fh = await fs.open(target, 'wx', 0o600);
        try {
          for await (const chunk of body) await fh.write(chunk);
        } finally {
          await fh.close();
        }
        break;
      }
      case 'symlink':
        await fs.symlink(h.linkname ?? '', target);
        break;
      case 'hardlink': {
        const linkRel = cleanInside(h.linkname ?? '');
        const source = linkRel ? await resolveInRoot(this.root, linkRel, false) : this.root;
        const st = await fs.lstat(source).catch(() => undefined);
        if (!st || st.isDirectory() || !linkRel) {
          throw new Error(`hardlink ${h.name} → ${h.linkname} does not point at a file inside the layer; refusing it`);
        }
        await fs.link(source, target);
        return; // shares the inode (and metadata) of its source
      }
      case 'char':
      case 'block':
        await run('mknod', ['-m', (h.mode & 0o7777).toString(8), target, h.type === 'char' ? 'c' : 'b', String(h.devmajor ?? 0), String(h.devminor ?? 0)]);
        break;
      case 'fifo':
        await run('mknod', ['-m', (h.mode & 0o7777).toString(8), target, 'p']);
        break;
    }
    await fs.lchown(target, h.uid, h.gid);
    if (h.type !== 'symlink') await fs.chmod(target, h.mode & 0o7777);
    for (const [key, value] of h.xattrs ?? []) {
      // overlay's own attributes from a layer could redirect lookups; never take them from a tar
      if (key.startsWith('trusted.overlay.')) continue;
      this.setXattr(target, key, value);
    }
    if (h.type === 'directory') this.dirTimes.push({ rel: relative(this.root, target), mtime: h.mtime });
    else await fs.lutimes(target, h.mtime, h.mtime);
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
    const queue = [...this.whiteouts];
    const worker = async () => {
      for (let rel = queue.shift(); rel !== undefined; rel = queue.shift()) {
        const p = await this.locate(rel);
        await this.ensureDir(dirname(p));
        await fs.rm(p, { recursive: true, force: true });
        await run('mknod', ['-m', '000', p, 'c', '0', '0']);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
    const xattrs: XattrMap = new Map();
    for (const [rel, attrs] of this.xattrs) xattrs.set(await this.locate(rel), attrs);
    await writeXattrs(xattrs);
    this.dirTimes.sort((a, b) => b.rel.length - a.rel.length);
    for (const d of this.dirTimes) await fs.lutimes(await this.locate(d.rel), d.mtime, d.mtime).catch(() => undefined);
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
  const digest = new DigestStream();
  plain.on('error', (e) => digest.destroy(e));
  plain.pipe(digest);
  const applier = new Applier(dir, options.mode ?? 'overlay');
  let entries = 0;
  try {
    for await (const { header, body } of readTar(digest)) {
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
    digest.destroy();
    throw e;
  }
  const diffId = digest.digest() as DiffID;
  if (options.expectedDiffId && options.expectedDiffId !== diffId) {
    throw new Error(`${options.label ?? 'layer'} does not match its diffID: expected ${options.expectedDiffId}, unpacked ${diffId}; the image is corrupt`);
  }
  return { diffId, size: digest.size, entries };
}
