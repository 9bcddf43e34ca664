import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { resolveInRoot } from '../snapshot/index.js';

const exec = promisify(execFile);

/**
 * The files and dirs a container needs as mount points (/proc, /etc/hosts, a cache target…) are created
 * before the run where the image lacks them, and removed after it, with their parent dirs' mtimes put
 * back when the step itself did not touch them — so none of it shows up in the step's layer.
 */
export class MountStubs {
  private readonly created: Array<{ abs: string; kind: 'dir' | 'file' }> = [];
  private readonly parents = new Map<string, { mtimeNs: bigint; afterNs?: bigint }>();

  private constructor(private readonly rootfs: string) {}

  static async create(rootfs: string, targets: Array<{ path: string; kind: 'dir' | 'file' }>): Promise<MountStubs> {
    const stubs = new MountStubs(rootfs);
    for (const t of targets) await stubs.ensure(t.path, t.kind);
    for (const [dir, times] of stubs.parents) times.afterNs = (await fs.stat(dir, { bigint: true })).mtimeNs;
    return stubs;
  }

  /** Stub paths relative to the rootfs (what a commit may exclude as a second line of defence). */
  get paths(): string[] {
    return this.created.map((c) => relative(this.rootfs, c.abs));
  }

  private async remember(parent: string): Promise<void> {
    if (this.parents.has(parent)) return;
    this.parents.set(parent, { mtimeNs: (await fs.stat(parent, { bigint: true })).mtimeNs });
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
    if (missing.length === 0) return;
    await this.remember(dirname(missing[0]));
    for (const [i, p] of missing.entries()) {
      const last = i === missing.length - 1;
      if (last && kind === 'file') await fs.writeFile(p, '', { flag: 'wx', mode: 0o644 });
      else await fs.mkdir(p, { mode: 0o755 });
      this.created.push({ abs: p, kind: last ? kind : 'dir' });
    }
  }

  /** Removes the stubs still in place and restores untouched parents' mtimes. Call before unmounting. */
  async remove(): Promise<void> {
    const restore: Array<[string, bigint]> = [];
    for (const [dir, t] of this.parents) {
      const now = await fs.stat(dir, { bigint: true }).catch(() => undefined);
      if (now && now.mtimeNs === t.afterNs) restore.push([dir, t.mtimeNs]);
    }
    for (const c of [...this.created].reverse()) {
      try {
        const st = await fs.lstat(c.abs);
        if (c.kind === 'dir' && st.isDirectory()) await fs.rmdir(c.abs);
        else if (c.kind === 'file' && st.isFile() && st.size === 0) await fs.unlink(c.abs);
      } catch {
        // the step put something there (a non-empty dir): it is the step's content now
      }
    }
    for (const [dir, ns] of restore) {
      const stamp = `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
      await exec('touch', ['-h', '-m', '-d', stamp, dir]).catch(() => undefined);
    }
  }
}

export function joinRoot(rootfs: string, path: string): string {
  return join(rootfs, path);
}
