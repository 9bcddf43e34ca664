import { promises as fs, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { fsPath } from './fs-names.js';
import { readXattrs, type XattrMap } from './xattrs.js';

const OPAQUE = 'trusted.overlay.opaque';

export function isWhiteout(st: { isCharacterDevice(): boolean; rdev: number | bigint }): boolean {
  return st.isCharacterDevice() && Number(st.rdev) === 0;
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i === -1 ? '' : rel.slice(0, i);
}

/**
 * What the stack of lower layers shows at a set of paths, as overlayfs would merge them: whiteouts hide,
 * a non-directory hides everything below it, an opaque directory hides the same directory in layers
 * underneath. The paths are looked up in one batch (stat walks pruned at missing parents, one getfattr
 * per few hundred directories for opaque markers), then answered from memory.
 */
export class LowerView {
  private readonly stats = new Map<string, BigIntStats | null>();
  private opaque = new Set<string>();

  private constructor(private readonly lowers: string[]) {}

  /**
   * Every xattr of the directories of `upperXattrsOf` that are directories in some lower too (overlay copies
   * a directory up with its xattrs), keyed by absolute path; read with the lowers' opaque markers in one
   * process. Empty unless asked for.
   */
  upperXattrs: XattrMap = new Map();

  /** `lowers` topmost first; `paths` relative to the root, without leading slash. */
  static async load(lowers: string[], paths: Iterable<string>, options: { upperXattrsOf?: string; xattrFree?: boolean } = {}): Promise<LowerView> {
    const view = new LowerView(lowers);
    const all = new Set<string>();
    for (const p of paths) {
      for (let q = p; q; q = parentOf(q)) {
        if (all.has(q)) break;
        all.add(q);
      }
    }
    const ordered = [...all].sort((a, b) => a.split('/').length - b.split('/').length);
    const dirs: string[] = [];
    for (const lower of lowers) {
      for (const rel of ordered) {
        const parent = parentOf(rel);
        if (parent) {
          const ps = view.stats.get(join(lower, parent));
          if (!ps || !ps.isDirectory()) continue;
        }
        const abs = join(lower, rel);
        let st: BigIntStats | null = null;
        try {
          st = await fs.lstat(fsPath(abs), { bigint: true });
        } catch {
          st = null;
        }
        view.stats.set(abs, st);
        if (st?.isDirectory()) dirs.push(abs);
      }
    }
    // lowers known to hold no opaque marker or kept xattr: nothing to ask (see xattr-free.ts)
    if (options.xattrFree) return view;
    const upper = options.upperXattrsOf;
    const copiedUp = upper ? ordered.filter((rel) => lowers.some((l) => view.stats.get(join(l, rel))?.isDirectory())).map((rel) => join(upper, rel)) : [];
    const attrs = await readXattrs([...dirs, ...copiedUp], upper ? undefined : OPAQUE);
    view.opaque = new Set(dirs.filter((d) => attrs.get(d)?.get(OPAQUE)?.toString() === 'y'));
    for (const p of copiedUp) {
      const a = attrs.get(p);
      if (a) view.upperXattrs.set(p, a);
    }
    return view;
  }

  /** The entry the lowers show at `rel`, or undefined when none does. */
  lookup(rel: string): BigIntStats | undefined {
    const parts = rel.split('/');
    for (const lower of this.lowers) {
      let hiddenBelow = false;
      let reachable = true;
      for (let i = 1; i < parts.length; i++) {
        const st = this.stats.get(join(lower, ...parts.slice(0, i)));
        if (!st) {
          reachable = false;
          break;
        }
        if (isWhiteout(st) || !st.isDirectory()) return undefined;
        if (this.opaque.has(join(lower, ...parts.slice(0, i)))) hiddenBelow = true;
      }
      if (reachable) {
        const st = this.stats.get(join(lower, rel));
        if (st) return isWhiteout(st) ? undefined : st;
        if (this.opaque.has(join(lower, ...parts.slice(0, -1))) && parts.length > 1) return undefined;
      }
      if (hiddenBelow) return undefined;
    }
    return undefined;
  }
}
