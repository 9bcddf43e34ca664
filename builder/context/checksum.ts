import { closeSync, createReadStream, createWriteStream, openSync, promises as fs, readFileSync, readSync, type Stats, type WriteStream } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { mapLimit, type Digest } from '../../oci/index.js';
import { encodeName, fsPath, readlinkName } from '../snapshot/index.js';
import { treeStats } from './tree-stats.js';
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

const SMALL_FILE = 256 * 1024;

/**
 * sha256 of a small file, read synchronously: for thousands of small files a thread-pool round trip per
 * open, read and close costs several times the reads themselves.
 */
function hashSmallFile(abs: string): string {
  return createHash('sha256')
    .update(readFileSync(fsPath(abs)))
    .digest('hex');
}

function hashFile(abs: string, size: number): Promise<string> {
  return size <= SMALL_FILE ? Promise.resolve().then(() => hashSmallFile(abs)) : hashStream(abs);
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
 * stays one chunk of the file whatever the size of the tree. File format, one line per regular file in
 * walk order: `JSON(rel) TAB fingerprint TAB sha256-hex`. Read synchronously in 64 KiB chunks: a promise
 * per line cost more than the walk it follows.
 */
class RememberedHashes {
  private fd: number | undefined;
  private opened = false;
  private lines: string[] = [];
  private nextLine = 0;
  private tail = '';
  private eof = false;
  private current: { rel: string; fp: string; hex: string } | undefined;
  /** Lines matched by a lookup with the same fingerprint, and valid lines passed over without one. */
  hits = 0;
  skipped = 0;

  constructor(private readonly file: string | undefined) {}

  private readLine(): string | undefined {
    while (this.nextLine >= this.lines.length) {
      if (this.eof || this.fd === undefined) return undefined;
      const buf = Buffer.allocUnsafe(1 << 16);
      const n = readSync(this.fd, buf, 0, buf.length, null);
      if (n === 0) {
        this.eof = true;
        this.lines = this.tail ? [this.tail] : [];
        this.tail = '';
      } else {
        const parts = (this.tail + buf.toString('utf8', 0, n)).split('\n');
        this.tail = parts.pop()!;
        this.lines = parts;
      }
      this.nextLine = 0;
    }
    return this.lines[this.nextLine++];
  }

  private advance(): void {
    if (!this.opened) {
      this.opened = true;
      if (this.file) {
        try {
          this.fd = openSync(this.file, 'r');
        } catch {
          // nothing remembered yet
        }
      }
    }
    for (;;) {
      const line = this.readLine();
      if (line === undefined) {
        this.current = undefined;
        return;
      }
      const [rel, fp, hex] = line.split('\t');
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
  lookup(rel: string, fp: string): string | undefined {
    if (!this.file) return undefined;
    if (!this.opened) this.advance();
    while (this.current && this.current.rel !== rel && walkOrder(this.current.rel, rel) < 0) {
      this.skipped++;
      this.advance();
    }
    if (!this.current || this.current.rel !== rel) return undefined;
    const hex = this.current.fp === fp ? this.current.hex : undefined;
    if (hex) this.hits++;
    else this.skipped++;
    this.advance();
    return hex;
  }

  /** Whether valid lines follow the last lookup (files gone from the end of the walk). */
  more(): boolean {
    if (!this.opened) this.advance();
    return this.current !== undefined;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * The new remembered-hashes file of a walk, written only when it would differ from the old one (a rebuild
 * of an unchanged context writes nothing): lines are held in memory up to a bound and go to a temp file
 * once something differs or the bound is passed; `finish` renames it over the old file, or drops it.
 */
class HashesWriter {
  private held: string[] = [];
  private heldBytes = 0;
  private out: WriteStream | undefined;
  private readonly tmp: string;

  constructor(private readonly file: string) {
    this.tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  }

  async write(text: string, changed: boolean): Promise<void> {
    if (!this.out && !changed && this.heldBytes + text.length <= HELD_BYTES) {
      this.held.push(text);
      this.heldBytes += text.length;
      return;
    }
    if (!this.out) {
      this.out = createWriteStream(this.tmp);
      text = this.held.join('') + text;
      this.held = [];
    }
    if (!this.out.write(text)) await new Promise<void>((r) => this.out!.once('drain', () => r()));
  }

  async finish(changed: boolean): Promise<void> {
    if (!this.out) {
      if (!changed) return;
      this.out = createWriteStream(this.tmp);
      this.out.write(this.held.join(''));
      this.held = [];
    }
    const out = this.out;
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    if (changed) await fs.rename(this.tmp, this.file).catch(() => fs.rm(this.tmp, { force: true }));
    else await fs.rm(this.tmp, { force: true });
  }

  async abort(): Promise<void> {
    this.out?.destroy();
    if (this.out) await fs.rm(this.tmp, { force: true });
  }
}

/** Remembered-hash lines held before a temp file is opened (an unchanged walk writes nothing). */
const HELD_BYTES = 1 << 20;

/**
 * A walk start whose last walk found at least this many entries is first checked whole (tree-stats.ts,
 * one process): below it, walking costs less than the process.
 */
const WHOLE_TREE_ENTRIES = 256;

/** `<remembered-hashes file>.tree`: a walk start's checksum and the metadata of its tree when it was taken. */
interface TreeMemo {
  v: 1;
  /** sha256 of the filter's identity ('' without a filter). */
  filter: string;
  /** treeStats of the start, taken before the walk that gave `digest` read anything (absent: not taken). */
  stats?: string;
  entries: number;
  digest: Digest;
}

async function readTreeMemo(file: string): Promise<TreeMemo | undefined> {
  try {
    const memo = JSON.parse(await fs.readFile(file, 'utf8')) as TreeMemo;
    return memo.v === 1 && typeof memo.digest === 'string' && typeof memo.entries === 'number' ? memo : undefined;
  } catch {
    return undefined;
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

  /**
   * The checksum of one walk start, from its memo when the tree's metadata is as it was when the memo's
   * checksum was taken (a large unchanged tree costs one find, not a walk); else by walking it.
   */
  private async walkAndHash(root: string, start: string, filter?: WalkFilter): Promise<Digest> {
    const file = this.dir ? join(this.dir, createHash('sha256').update(`${root}\0${start}`).digest('hex').slice(0, 32)) : undefined;
    const identity = filter ? filter.identity : '';
    if (!file || identity === undefined) return (await this.walk(root, start, filter, file)).digest;
    const memoFile = `${file}.tree`;
    const filterHash = createHash('sha256').update(identity).digest('hex');
    const memo = await readTreeMemo(memoFile);
    // the stats come before the walk reads anything: a file changed meanwhile leaves stats that no longer match
    let stats: string | undefined;
    const worth = memo ? memo.entries >= WHOLE_TREE_ENTRIES : (await fs.lstat(fsPath(join(root, start))).catch(() => undefined))?.isDirectory();
    if (worth)
      stats = await treeStats(join(root, start)).then(
        (r) => r.hex,
        () => undefined,
      );
    if (memo && stats !== undefined && memo.stats === stats && memo.filter === filterHash) return memo.digest;
    const { digest, entries } = await this.walk(root, start, filter, file);
    const next: TreeMemo = { v: 1, filter: filterHash, ...(stats !== undefined ? { stats } : {}), entries, digest };
    const tmp = `${memoFile}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
    await fs
      .writeFile(tmp, JSON.stringify(next))
      .then(() => fs.rename(tmp, memoFile))
      .catch(() => fs.rm(tmp, { force: true }));
    return digest;
  }

  /** The checksum of one walk start by walking it (and the entries it kept), keeping the remembered hashes in `file`. */
  private async walk(root: string, start: string, filter: WalkFilter | undefined, file: string | undefined): Promise<{ digest: Digest; entries: number }> {
    const h = createHash('sha256');
    let entries = 0;
    const remembered = new RememberedHashes(file);
    const writer = file ? new HashesWriter(file) : undefined;
    let changed = false;
    try {
      for await (const batch of batches<TreeEntry>(walkEntries(root, start, filter), 512)) {
        // lookups in walk order; small misses hashed here, large ones streamed in parallel
        const fps: (string | undefined)[] = [];
        const hexes: (string | undefined)[] = [];
        let large = 0;
        entries += batch.length;
        for (const e of batch) {
          const fp = e.stat.isFile() ? fingerprint(e.stat) : undefined;
          let hex = fp ? remembered.lookup(e.rel, fp) : undefined;
          if (fp && !hex) {
            changed = true;
            if (e.stat.size <= SMALL_FILE) hex = hashSmallFile(e.abs);
            else large++;
          }
          fps.push(fp);
          hexes.push(hex);
        }
        if (large) {
          const streamed = await mapLimit(batch, 8, (e, i) => (fps[i] && !hexes[i] ? hashStream(e.abs) : Promise.resolve(hexes[i])));
          streamed.forEach((hex, i) => {
            hexes[i] = hex;
          });
        }
        let lines = '';
        let text = '';
        for (const [i, e] of batch.entries()) {
          lines += (e.stat.isSymbolicLink() ? await this.describe(e.rel, e.abs, e.stat) : describeSync(e.rel, e.stat, hexes[i])) + '\n';
          if (writer && hexes[i]) text += `${JSON.stringify(e.rel)}\t${fps[i]}\t${hexes[i]}\n`;
        }
        // names as bytes: two names differing only in bytes that are not UTF-8 must not hash alike
        h.update(ESCAPED.test(lines) ? encodeName(lines) : lines);
        changed ||= remembered.skipped > 0;
        if (writer && text) await writer.write(text, changed);
      }
      changed ||= remembered.skipped > 0 || remembered.more();
    } catch (e) {
      await writer?.abort();
      throw e;
    } finally {
      remembered.close();
    }
    await writer?.finish(changed);
    return { digest: `sha256:${h.digest('hex')}` as Digest, entries };
  }
}
