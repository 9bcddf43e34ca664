import { promises as fs, type Stats } from 'node:fs';
import { join } from 'node:path';
import { byteOrder, fsPath, readdirNames } from '../snapshot/index.js';
import type { MatchResult, MatchState } from './dockerignore.js';

/**
 * One file system entry found by a walk; `rel` is slash-separated relative to the walk's root. Names are
 * bytes: `rel` and `abs` escape bytes that are not UTF-8 (builder/snapshot/fs-names.ts), so pass `abs`
 * to node:fs through `fsPath`.
 */
export interface TreeEntry {
  rel: string;
  abs: string;
  stat: Stats;
}

/** Decides per relative path whether to keep an entry and whether to descend into a directory. */
export interface WalkFilter {
  /** Whether `rel` is left out; `parent` is the result for its directory (undefined: match from the root). */
  match(rel: string, parent?: MatchState): MatchResult;
  excludes(rel: string): boolean;
  /** For an excluded directory: nothing below it can be re-included. */
  canSkipDirectory(rel: string): boolean;
}

/**
 * Every entry of a walk at once (the lstat calls of one directory run in parallel), depth first in byte
 * order of names (a stable order for checksums and layers), `start` first. Symlinks are not followed.
 * As BuildKit's context walker (fsutil): an excluded directory is still entered when the filter says
 * something below may be re-included, and it is listed — before its first included descendant — only
 * if something below it is; so `meta` + `!meta/HEAD` gives `meta`, `meta/HEAD`.
 */
export async function listTree(root: string, start = '.', filter?: WalkFilter): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  // Excluded directories on the current path not listed yet: they are listed once something below is.
  const pending: TreeEntry[] = [];
  const visit = async (rel: string, stat: Stats, parent: MatchState | undefined): Promise<void> => {
    const abs = rel === '.' ? root : join(root, rel);
    const verdict = rel !== '.' && filter ? filter.match(rel, parent) : undefined;
    const entry = { rel, abs, stat };
    if (!verdict?.excluded) {
      out.push(...pending.splice(0), entry);
    }
    if (!stat.isDirectory()) return;
    if (verdict?.excluded) {
      if (filter!.canSkipDirectory(rel)) return;
      pending.push(entry);
    }
    const names = (await readdirNames(abs)).sort(byteOrder);
    const children = names.map((name) => (rel === '.' ? name : `${rel}/${name}`));
    const stats = await Promise.all(children.map((c) => fs.lstat(fsPath(join(root, c)))));
    for (const [i, child] of children.entries()) await visit(child, stats[i]!, verdict?.state);
    if (pending.at(-1) === entry) pending.pop();
  };
  const startParent = start !== '.' && filter && start.includes('/') ? filter.match(start.slice(0, start.lastIndexOf('/'))).state : undefined;
  await visit(start, await fs.lstat(fsPath(start === '.' ? root : join(root, start))), startParent);
  return out;
}

/** `listTree` as an async iterator. */
export async function* walkTree(root: string, start = '.', filter?: WalkFilter): AsyncGenerator<TreeEntry> {
  yield* await listTree(root, start, filter);
}

/**
 * Whether `rel` is part of the context a filter leaves: not excluded, or an excluded directory with a
 * re-included entry below it (BuildKit's context then holds the directory).
 */
export async function presentInTree(root: string, rel: string, filter?: WalkFilter): Promise<boolean> {
  if (!filter || rel === '.') return true;
  const verdict = filter.match(rel);
  if (!verdict.excluded) return true;
  const stat = await fs.lstat(fsPath(join(root, rel))).catch(() => undefined);
  if (!stat?.isDirectory() || filter.canSkipDirectory(rel)) return false;
  return (await listTree(root, rel, filter)).length > 0;
}

export { byteOrder };
