import { createReadStream, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { mapLimit, type Digest } from '../../oci/index.js';
import { encodeName, fsPath, readlinkName } from '../snapshot/index.js';
import { listTree, type WalkFilter } from './walk.js';

/** sha256 of a large file, streamed. */
function hashStream(abs: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(fsPath(abs), { highWaterMark: 1 << 20 })
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/**
 * Content checksums of trees for cache keys: per path its type, permission bits, size, link target and
 * content hash — not times or owners, so a fresh checkout of the same files hits the cache.
 * Content hashes are remembered per (inode, size, mtime) for the life of the process.
 */
export class TreeChecksummer {
  private readonly contentHashes = new Map<string, Promise<string>>();
  /** Hashes from earlier builds (key → hex), when a file to keep them in was given. */
  private readonly known = new Map<string, string>();
  private readonly used = new Map<string, string>();

  constructor(private readonly file?: string) {}

  /** A checksummer that remembers content hashes across builds in `file` (trusted while inode, size, mtime and ctime match). */
  static async persistent(file: string): Promise<TreeChecksummer> {
    const c = new TreeChecksummer(file);
    try {
      const saved = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, string>;
      for (const [k, v] of Object.entries(saved)) c.known.set(k, v);
    } catch {
      // first build, or an unreadable file: hash everything
    }
    return c;
  }

  /** Writes the hashes this build used (so the file only holds what still exists). */
  async save(): Promise<void> {
    if (!this.file || this.used.size === 0) return;
    const tmp = `${this.file}.tmp-${process.pid}-${Date.now().toString(16).padStart(12, '0').slice(-12)}`;
    await fs.writeFile(tmp, JSON.stringify(Object.fromEntries(this.used)));
    await fs.rename(tmp, this.file);
  }

  private contentHash(abs: string, stat: Stats): Promise<string> {
    const key = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}:${abs}`;
    let hit = this.contentHashes.get(key);
    if (!hit) {
      const remembered = this.known.get(key);
      hit = remembered
        ? Promise.resolve(remembered)
        : stat.size <= 256 * 1024
          ? fs.readFile(fsPath(abs)).then((b) => createHash('sha256').update(b).digest('hex'))
          : hashStream(abs);
      void hit.then((h) => this.used.set(key, h), () => undefined);
      this.contentHashes.set(key, hit);
    }
    return hit;
  }

  /** One line describing an entry; files add their content hash. */
  async describe(rel: string, abs: string, stat: Stats): Promise<string> {
    const perm = (stat.mode & 0o7777).toString(8);
    if (stat.isSymbolicLink()) return `l ${rel} ${perm} -> ${await readlinkName(abs)}`;
    if (stat.isDirectory()) return `d ${rel} ${perm}`;
    if (stat.isFile()) return `f ${rel} ${perm} ${stat.size} ${await this.contentHash(abs, stat)}`;
    return `o ${rel} ${perm} ${stat.rdev}`;
  }

  /** The checksum of each given tree (a file or a directory and everything under it), in order. */
  async checksum(root: string, rels: string[], filter?: WalkFilter): Promise<Digest> {
    const h = createHash('sha256');
    for (const start of rels) {
      h.update(encodeName(`@${start}\n`));
      const entries = await listTree(root, start, filter);
      const lines = await mapLimit(entries, 32, (e) => this.describe(e.rel, e.abs, e.stat));
      // names as bytes: two names differing only in bytes that are not UTF-8 must not hash alike
      for (const line of lines) h.update(encodeName(line + '\n'));
    }
    return `sha256:${h.digest('hex')}` as Digest;
  }
}
