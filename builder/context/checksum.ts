import { createReadStream, createWriteStream, promises as fs, type Stats, type WriteStream } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { mapLimit, type Digest } from '../../oci/index.js';
import { encodeName, fsPath, readlinkName } from '../snapshot/index.js';
import { batches, walkEntries, walkOrder, type TreeEntry, type WalkFilter } from './walk.js';

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

function hashFile(abs: string, size: number): Promise<string> {
  return size <= 256 * 1024 ? fs.readFile(fsPath(abs)).then((b) => createHash('sha256').update(b).digest('hex')) : hashStream(abs);
}

/** What says a file is unchanged since its hash was taken (as git's index and BuildKit's contenthash trust). */
function fingerprint(stat: Stats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
}

/** Bytes that are not UTF-8, as fs-names.ts carries them in strings. */
const ESCAPED = /[\uDC80-\uDCFF]/;

/** `describe` for everything but symlinks (no I/O). */
function describeSync(rel: string, stat: Stats, hex: string | undefined): string {
  const perm = (stat.mode & 0o7777).toString(8);
  if (stat.isDirectory()) return `d ${rel} ${perm}`;
  if (stat.isFile()) return `f ${rel} ${perm} ${stat.size} ${hex}`;
  return `o ${rel} ${perm} ${stat.rdev}`;
}

/**
 * The remembered hashes of one walk start, read in walk order alongside the walk (a merge join): memory
 * stays one line whatever the size of the tree. File format, one line per regular file in walk order:
 * `JSON(rel) TAB fingerprint TAB sha256-hex`.
 */
class RememberedHashes {
  private lines?: AsyncIterator<string>;
  private current?: { rel: string; fp: string; hex: string } | undefined;
  private done = false;

  constructor(private readonly file: string | undefined) {}

  private async next(): Promise<void> {
    if (this.done) return;
    if (!this.lines) {
      const opened = await fs.open(this.file!).catch(() => undefined);
      if (!opened) {
        this.done = true;
        this.current = undefined;
        return;
      }
      this.lines = createInterface({ input: opened.createReadStream({ highWaterMark: 1 << 16 }), crlfDelay: Infinity })[Symbol.asyncIterator]();
    }
    for (;;) {
      const r = await this.lines.next();
      if (r.done) {
        this.done = true;
        this.current = undefined;
        return;
      }
      const [rel, fp, hex] = r.value.split('\t');
      try {
        if (rel && fp && hex && /^[a-f0-9]{64}$/.test(hex)) {
          this.current = { rel: JSON.parse(rel) as string, fp, hex };
          return;
        }
      } catch {
        // a damaged line: skip it
      }
    }
  }

  /** The remembered hash of `rel` when its fingerprint still matches; calls must come in walk order. */
  async lookup(rel: string, fp: string): Promise<string | undefined> {
    if (!this.file) return undefined;
    if (!this.lines && !this.done) await this.next();
    while (this.current && walkOrder(this.current.rel, rel) < 0) await this.next();
    if (this.current && this.current.rel === rel) return this.current.fp === fp ? this.current.hex : undefined;
    return undefined;
  }

  close(): void {
    void this.lines?.return?.();
  }
}

/**
 * Content checksums of trees for cache keys: per path its type, permission bits, size, link target and
 * content hash — not times or owners, so a fresh checkout of the same files hits the cache.
 *
 * The walk, the hashing and the remembered hashes all stream, so memory stays flat in the size of the
 * tree. With a directory to remember in (`persistent`), each walk start keeps its files' content hashes in
 * `<dir>/<sha256(start) first 32 hex>` (see RememberedHashes), read back alongside the next walk: a file
 * whose (dev, inode, size, mtime, ctime) is unchanged is not read again, so a no-op rebuild costs a stat
 * per file. Within a process, the checksum of a start is computed once (the context does not change
 * during a build).
 */
export class TreeChecksummer {
  private readonly done = new Map<string, Promise<Digest>>();

  constructor(private readonly dir?: string) {}

  /** A checksummer that remembers content hashes across builds under `dir` (trusted while dev, inode, size, mtime and ctime match). */
  static async persistent(dir: string): Promise<TreeChecksummer> {
    // an older release kept one JSON file where the directory goes now
    const st = await fs.lstat(dir).catch(() => undefined);
    if (st && !st.isDirectory()) await fs.rm(dir, { force: true });
    await fs.mkdir(dir, { recursive: true });
    return new TreeChecksummer(dir);
  }

  /** Kept for callers of the earlier API: hashes are written while they are taken. */
  async save(): Promise<void> {}

  /** One line describing an entry; files add their content hash. */
  async describe(rel: string, abs: string, stat: Stats, knownHex?: string): Promise<string> {
    const perm = (stat.mode & 0o7777).toString(8);
    if (stat.isSymbolicLink()) return `l ${rel} ${perm} -> ${await readlinkName(abs)}`;
    if (stat.isDirectory()) return `d ${rel} ${perm}`;
    if (stat.isFile()) return `f ${rel} ${perm} ${stat.size} ${knownHex ?? (await hashFile(abs, stat.size))}`;
    return `o ${rel} ${perm} ${stat.rdev}`;
  }

  /** The checksum of each given tree (a file or a directory and everything under it), in order. */
  async checksum(root: string, rels: string[], filter?: WalkFilter): Promise<Digest> {
    const h = createHash('sha256');
    for (const start of rels) {
      h.update(encodeName(`@${start}\n`));
      h.update((await this.tree(root, start, filter)) + '\n');
    }
    return `sha256:${h.digest('hex')}` as Digest;
  }

  private tree(root: string, start: string, filter?: WalkFilter): Promise<Digest> {
    const key = `${root}\0${start}`;
    let run = this.done.get(key);
    if (!run) {
      run = this.walkAndHash(root, start, filter);
      this.done.set(key, run);
    }
    return run;
  }

  private async walkAndHash(root: string, start: string, filter?: WalkFilter): Promise<Digest> {
    const h = createHash('sha256');
    const file = this.dir ? join(this.dir, createHash('sha256').update(`${root}\0${start}`).digest('hex').slice(0, 32)) : undefined;
    const remembered = new RememberedHashes(file);
    const tmp = file ? `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}` : undefined;
    let out: WriteStream | undefined;
    if (tmp) out = createWriteStream(tmp);
    try {
      for await (const batch of batches<TreeEntry>(walkEntries(root, start, filter), 512)) {
        // lookups in walk order, then the misses hashed in parallel
        const fps: (string | undefined)[] = [];
        const known: (string | undefined)[] = [];
        let misses = 0;
        for (const e of batch) {
          const fp = e.stat.isFile() ? fingerprint(e.stat) : undefined;
          const hex = fp ? await remembered.lookup(e.rel, fp) : undefined;
          if (fp && !hex) misses++;
          fps.push(fp);
          known.push(hex);
        }
        const hexes = misses ? await mapLimit(batch, 32, (e, i) => (fps[i] && !known[i] ? hashFile(e.abs, e.stat.size) : Promise.resolve(known[i]))) : known;
        let lines = '';
        let text = '';
        for (const [i, e] of batch.entries()) {
          lines += (e.stat.isSymbolicLink() ? await this.describe(e.rel, e.abs, e.stat) : describeSync(e.rel, e.stat, hexes[i])) + '\n';
          if (out && hexes[i]) text += `${JSON.stringify(e.rel)}\t${fps[i]}\t${hexes[i]}\n`;
        }
        // names as bytes: two names differing only in bytes that are not UTF-8 must not hash alike
        h.update(ESCAPED.test(lines) ? encodeName(lines) : lines);
        if (out && text && !out.write(text)) await new Promise<void>((r) => out!.once('drain', () => r()));
      }
    } catch (e) {
      out?.destroy();
      if (tmp) await fs.rm(tmp, { force: true });
      throw e;
    } finally {
      remembered.close();
    }
    if (out && tmp && file) {
      await new Promise<void>((resolve, reject) => out!.end((e?: Error | null) => (e ? reject(e) : resolve())));
      await fs.rename(tmp, file).catch(() => fs.rm(tmp, { force: true }));
    }
    return `sha256:${h.digest('hex')}` as Digest;
  }
}
