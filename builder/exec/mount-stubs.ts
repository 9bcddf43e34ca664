import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { resolveInRoot } from '../snapshot/index.js';

const exec = promisify(execFile);

/**
 * The files and dirs a container needs as mount points (/proc, /etc/hosts, a cache target…) are created
 * before the run where the image lacks them, and removed after it, with their parent dirs' mtimes put
 * back when the step itself did not touch them — so none of it shows up in the step's layer.
 */
export class MountStubs {
  // Paths are kept relative to the rootfs with their inode numbers and re-resolved inside the rootfs when
  // removed: the step may have replaced a parent dir with a symlink pointing anywhere.
  private readonly created: Array<{ rel: string; kind: 'dir' | 'file'; ino: bigint }> = [];
  private readonly parents = new Map<string, { ino: bigint; mtimeNs: bigint; afterNs?: bigint }>();

  private constructor(private readonly rootfs: string) {}

  static async create(rootfs: string, targets: Array<{ path: string; kind: 'dir' | 'file' }>): Promise<MountStubs> {
    const stubs = new MountStubs(rootfs);
    for (const t of targets) await stubs.ensure(t.path, t.kind);
    for (const [rel, times] of stubs.parents) times.afterNs = (await fs.lstat(join(rootfs, rel), { bigint: true })).mtimeNs;
    return stubs;
  }

  /** Stub paths relative to the rootfs (what a commit may exclude as a second line of defence). */
  get paths(): string[] {
    return this.created.map((c) => c.rel);
  }

  private async remember(parent: string): Promise<void> {
    const rel = relative(this.rootfs, parent);
    if (this.parents.has(rel)) return;
    const st = await fs.lstat(parent, { bigint: true });
    this.parents.set(rel, { ino: st.ino, mtimeNs: st.mtimeNs });
  }

  /** The entry now at `rel` inside the rootfs, if it is still the one we recorded. */
  private async current(rel: string, ino: bigint): Promise<string | undefined> {
    const parent = dirname(rel);
    const path = rel === '' ? this.rootfs : join(parent === '.' ? this.rootfs : await resolveInRoot(this.rootfs, parent, true), basename(rel));
    const st = await fs.lstat(path, { bigint: true }).catch(() => undefined);
    return st && st.ino === ino ? path : undefined;
  }

  private async ensure(target: string, kind: 'dir' | 'file'): Promise<void> {
    const abs = await resolveInRoot(this.rootfs, target, true);
    try {
      await fs.lstat(abs);
      return;
    } catch {
      // missing: create it and any missing parents
    }
    const missing: string[] = [];
    for (let p = abs; p !== this.rootfs; p = dirname(p)) {
      try {
        await fs.lstat(p);
        break;
      } catch {
        missing.unshift(p);
      }
    }
    const [first] = missing;
    if (first === undefined) return;
    await this.remember(dirname(first));
    for (const [i, p] of missing.entries()) {
      const last = i === missing.length - 1;
      if (last && kind === 'file') await fs.writeFile(p, '', { flag: 'wx', mode: 0o644 });
      else await fs.mkdir(p, { mode: 0o755 });
      this.created.push({ rel: relative(this.rootfs, p), kind: last ? kind : 'dir', ino: (await fs.lstat(p, { bigint: true })).ino });
    }
  }

  /** Removes the stubs still in place and restores untouched parents' mtimes. Call before unmounting. */
  async remove(): Promise<void> {
    const restore: Array<[string, bigint, bigint]> = [];
    for (const [rel, t] of this.parents) {
      const path = await this.current(rel, t.ino);
      const now = path ? await fs.lstat(path, { bigint: true }).catch(() => undefined) : undefined;
      if (now?.isDirectory() && now.mtimeNs === t.afterNs) restore.push([rel, t.ino, t.mtimeNs]);
    }
    for (const c of [...this.created].reverse()) {
      try {
        const path = await this.current(c.rel, c.ino);
        if (!path) continue;
        const st = await fs.lstat(path);
        if (c.kind === 'dir' && st.isDirectory()) await fs.rmdir(path);
        else if (c.kind === 'file' && st.isFile() && st.size === 0) await fs.unlink(path);
      } catch {
        // the step put something there (a non-empty dir): it is the step's content now
      }
    }
    for (const [rel, ino, ns] of restore) {
      const path = await this.current(rel, ino);
      if (!path) continue;
      if (ns % 1_000_000_000n === 0n) {
        // whole seconds (a dir unpacked from a tar: most parents) are exact through node:fs, no process needed
        const atime = (await fs.lstat(path).catch(() => undefined))?.atime ?? new Date();
        await fs.lutimes(path, atime, Number(ns / 1_000_000_000n)).catch(() => undefined);
        continue;
      }
      // node:fs sets times to the microsecond: touch keeps the nanoseconds
      const stamp = `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
      await exec('touch', ['-h', '-m', '-d', stamp, path]).catch(() => undefined);
    }
  }
}
