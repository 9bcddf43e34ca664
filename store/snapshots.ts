import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parseDigest, digestHex, type ChainID, type DiffID } from '../oci/index.js';
import { spreadChildren } from './spread-dirs.js';

/**
 * Unpacked layer snapshots, one directory per layer keyed by its chainID, laid out like docker's overlay2:
 *
 *   snapshots/<chain hex>/diff     the layer's own files (whiteouts as overlay char devices 0/0,
 *                                  opaque dirs marked with trusted.overlay.opaque=y)
 *   snapshots/<chain hex>/link     the short name of this snapshot (12 base32 characters)
 *   snapshots/<chain hex>/parent   the parent's chainID (absent for a base layer)
 *   snapshots/l/<short name>  →  ../<chain hex>/diff
 *
 * The short names keep an overlay `lowerdir=` list of 100+ layers inside the one page the kernel accepts
 * for mount options: mount with the snapshots dir as the working directory and pass `l/<short>` paths.
 * A snapshot is filled in a temp dir and renamed into place, so concurrent unpacks of the same chain are
 * safe and a crash never leaves a half-filled snapshot under its final name.
 */
export interface Snapshot {
  chainId: ChainID;
  parent?: ChainID | undefined;
  /** Absolute path of the layer's files. */
  diffDir: string;
  /** Short name relative to the snapshots root, e.g. `l/ABCDEFGHIJKL`. */
  link: string;
}

/** The chainID of a layer on top of `parent` (OCI image spec: sha256 of "parent diffID"). */
export function chainIdOf(parent: ChainID | undefined, diffId: DiffID): ChainID {
  if (!parent) return diffId as string as ChainID;
  return `sha256:${createHash('sha256').update(`${parent} ${diffId}`).digest('hex')}` as ChainID;
}

/** chainIDs of every prefix of a diffID list, base first. */
export function chainIdsOf(diffIds: DiffID[]): ChainID[] {
  const out: ChainID[] = [];
  let parent: ChainID | undefined;
  for (const d of diffIds) {
    parent = chainIdOf(parent, d);
    out.push(parent);
  }
  return out;
}

export const SNAPSHOT_TEMP_PREFIX = 'tmp-';
const LINK_DIR = 'l';
const base32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function shortName(): string {
  const bytes = randomBytes(12);
  let s = '';
  for (const b of bytes) s += base32[b & 31];
  return s;
}

export class SnapshotStore {
  private readonly inflight = new Map<string, Promise<Snapshot>>();

  constructor(readonly root: string) {}

  static async open(root: string): Promise<SnapshotStore> {
    await fs.mkdir(join(root, LINK_DIR), { recursive: true });
    await spreadChildren(root);
    return new SnapshotStore(root);
  }

  /** A directory that is always empty: the lower layer of a build `FROM scratch`. */
  async emptyLower(): Promise<string> {
    const dir = join(this.root, 'empty');
    await fs.mkdir(dir, { recursive: true });
    return dir;
  }

  private dirOf(chainId: ChainID): string {
    return join(this.root, digestHex(parseDigest(chainId)));
  }

  async get(chainId: ChainID): Promise<Snapshot | undefined> {
    const dir = this.dirOf(chainId);
    let link: string;
    try {
      link = (await fs.readFile(join(dir, 'link'), 'utf8')).trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let parent: ChainID | undefined;
    try {
      parent = parseDigest((await fs.readFile(join(dir, 'parent'), 'utf8')).trim()) as ChainID;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return { chainId, parent, diffDir: join(dir, 'diff'), link: `${LINK_DIR}/${link}` };
  }

  async has(chainId: ChainID): Promise<boolean> {
    return (await this.get(chainId)) !== undefined;
  }

  /**
   * The snapshot for `chainId`, creating it when missing: `fill(diffDir)` writes the layer's files into a
   * fresh temp dir that becomes the snapshot when fill resolves. Calls for the same chain share one fill
   * within a process; across processes the first rename wins and the loser's copy is discarded.
   */
  async prepare(chainId: ChainID, parent: ChainID | undefined, fill: (diffDir: string) => Promise<void>): Promise<Snapshot> {
    const existing = await this.get(chainId);
    if (existing) return existing;
    const running = this.inflight.get(chainId);
    if (running) return running;
    const work = this.create(chainId, parent, fill).finally(() => this.inflight.delete(chainId));
    this.inflight.set(chainId, work);
    return work;
  }

  /**
   * Moves a finished directory (e.g. a committed overlay upper dir on the same filesystem) in as the
   * snapshot of `chainId`. When the snapshot already exists, `dir` is removed instead.
   */
  async adopt(chainId: ChainID, parent: ChainID | undefined, dir: string): Promise<Snapshot> {
    return this.prepare(chainId, parent, async (diffDir) => {
      await fs.rmdir(diffDir);
      await fs.rename(dir, diffDir);
    }).finally(() => fs.rm(dir, { recursive: true, force: true }));
  }

  /** A fresh directory inside the snapshots filesystem (for overlay upper/work dirs that may be adopted). */
  async tempDir(label = 'dir'): Promise<string> {
    const dir = join(this.root, `${SNAPSHOT_TEMP_PREFIX}${label}-${process.pid}-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(dir, { recursive: true });
    return dir;
  }

  private async create(chainId: ChainID, parent: ChainID | undefined, fill: (diffDir: string) => Promise<void>): Promise<Snapshot> {
    const tmp = await this.tempDir('unpack');
    const linkName = shortName();
    const finalDir = this.dirOf(chainId);
    const linkPath = join(this.root, LINK_DIR, linkName);
    try {
      await fs.mkdir(join(tmp, 'diff'));
      await fill(join(tmp, 'diff'));
      await fs.writeFile(join(tmp, 'link'), linkName);
      if (parent) await fs.writeFile(join(tmp, 'parent'), parent);
      await fs.mkdir(join(this.root, LINK_DIR), { recursive: true });
      await fs.symlink(`../${digestHex(parseDigest(chainId))}/diff`, linkPath);
      try {
        await fs.rename(tmp, finalDir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        await fs.rm(linkPath, { force: true });
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
        const winner = await this.get(chainId);
        if (!winner) throw e;
        return winner;
      }
    } catch (e) {
      await fs.rm(linkPath, { force: true }).catch(() => undefined);
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
    return { chainId, parent, diffDir: join(finalDir, 'diff'), link: `${LINK_DIR}/${linkName}` };
  }

  /** The snapshots of a chain, topmost (chainId itself) first — the order of an overlay lowerdir list. */
  async chain(chainId: ChainID): Promise<Snapshot[]> {
    const out: Snapshot[] = [];
    let next: ChainID | undefined = chainId;
    while (next) {
      const s = await this.get(next);
      if (!s) throw new Error(`snapshot ${next} is missing from ${this.root}; unpack the image's layers again`);
      out.push(s);
      next = s.parent;
      if (out.length > 1000) throw new Error(`snapshot chain of ${chainId} is longer than 1000 layers or loops`);
    }
    return out;
  }

  /** Removes one snapshot (not its parents). */
  async remove(chainId: ChainID): Promise<void> {
    const s = await this.get(chainId);
    if (!s) return;
    await fs.rm(join(this.root, s.link), { force: true });
    await fs.rm(this.dirOf(chainId), { recursive: true, force: true });
  }

  /** Removes dangling short links (a crash between link and rename) — called by the leftover sweep. */
  async removeDanglingLinks(): Promise<string[]> {
    const removed: string[] = [];
    const dir = join(this.root, LINK_DIR);
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const p = join(dir, name);
      try {
        await fs.stat(p);
      } catch {
        await fs.rm(p, { force: true });
        removed.push(p);
      }
    }
    return removed;
  }
}
