import { promises as fs } from 'node:fs';
import { LRUCache } from 'lru-cache';

/** Directories with fewer entries are read each time: a small readdir costs less than keeping it. */
const MIN_CACHED_ENTRIES = 256;
/** Bound on the names kept, in UTF-16 code units plus a per-name overhead (≈ 2 bytes each). */
const MAX_CACHED_UNITS = 16 << 20;
const PER_NAME_UNITS = 32;
/**
 * A listing is kept only when the directory has not changed for this long. Directory timestamps come
 * from a coarse clock (a few ms), so an entry created in the same tick as our read could leave ctime
 * unchanged; once ctime is this old, any later change gives a strictly later ctime.
 */
const SETTLED_NS = 2_000_000_000n;

interface Listing {
  ino: bigint;
  ctimeNs: bigint;
  /** Sorted by code point (JS string order). */
  names: string[];
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Index of the first name strictly after `after` in sorted `names` (names.length when none). */
function firstAfter(names: string[], after: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Pages of a local directory's sorted entries. A large directory's sorted listing is kept and reused
 * while its inode and ctime are unchanged (checked with one stat per call), so paging through a
 * directory of 10,000 repositories or tags costs a stat and a binary search per page rather than a
 * readdir and a sort of the whole directory. Safe across processes: any entry added or removed by
 * anyone changes the directory's ctime.
 */
export class DirectoryListings {
  private readonly cache = new LRUCache<string, Listing>({
    max: 1024,
    maxSize: MAX_CACHED_UNITS,
    sizeCalculation: (l) => l.names.reduce((sum, n) => sum + n.length + PER_NAME_UNITS, PER_NAME_UNITS),
  });

  /**
   * @param keep which entries to list (e.g. not the temp files of writes in progress).
   * @param settledNs how long (ns) a directory must have been unchanged before its listing is kept.
   */
  constructor(
    private readonly keep: (name: string) => boolean,
    private readonly settledNs = SETTLED_NS,
  ) {}

  /**
   * Up to `limit` (default all) entry names of `dir` that sort strictly after `after`, sorted; [] when
   * the directory does not exist.
   */
  async page(dir: string, after?: string, limit = Infinity): Promise<string[]> {
    const names = await this.sorted(dir);
    const start = after === undefined ? 0 : firstAfter(names, after);
    return names.slice(start, start + limit);
  }

  private async sorted(dir: string): Promise<string[]> {
    let st;
    try {
      st = await fs.stat(dir, { bigint: true });
    } catch (e) {
      if (isMissing(e)) {
        this.cache.delete(dir);
        return [];
      }
      throw e;
    }
    const hit = this.cache.get(dir);
    if (hit && hit.ino === st.ino && hit.ctimeNs === st.ctimeNs) return hit.names;
    let names: string[];
    try {
      names = (await fs.readdir(dir)).filter(this.keep).sort();
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
    // st was taken before the read, so a change racing with it leaves a newer ctime than the one kept.
    const settled = st.ctimeNs < BigInt(Date.now()) * 1_000_000n - this.settledNs;
    if (names.length >= MIN_CACHED_ENTRIES && settled) this.cache.set(dir, { ino: st.ino, ctimeNs: st.ctimeNs, names });
    else this.cache.delete(dir);
    return names;
  }
}
