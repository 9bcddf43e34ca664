import { promises as fs, type Stats } from 'node:fs';
import { join } from 'node:path';

/** One file system entry found by a walk; `rel` is slash-separated relative to the walk's root. */
export interface TreeEntry {
  rel: string;
  abs: string;
  stat: Stats;
}

/** Decides per relative path whether to keep an entry and whether to descend into a directory. */
export interface WalkFilter {
  excludes(rel: string): boolean;
  canSkipDirectory(rel: string): boolean;
}

/**
 * Every entry of a walk at once (the lstat calls of one directory run in parallel), in walk order.
 */
export async function listTree(root: string, start = '.', filter?: WalkFilter): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (rel: string, stat: Stats): Promise<void> => {
    const abs = rel === '.' ? root : join(root, rel);
    const excluded = rel !== '.' && filter?.excludes(rel);
    if (!excluded) out.push({ rel, abs, stat });
    if (!stat.isDirectory()) return;
    if (excluded && filter?.canSkipDirectory(rel)) return;
    const names = (await fs.readdir(abs)).sort(byteOrder);
    const children = names.map((name) => (rel === '.' ? name : `${rel}/${name}`));
    const stats = await Promise.all(children.map((c) => fs.lstat(join(root, c))));
    for (const [i, child] of children.entries()) await visit(child, stats[i]!);
  };
  await visit(start, await fs.lstat(start === '.' ? root : join(root, start)));
  return out;
}

/**
 * Walks `root/start` depth-first in byte order of names (a stable order for checksums and layers),
 * yielding `start` itself first. Symlinks are not followed. Excluded entries are not yielded, but an
 * excluded directory is still descended when the filter says something below may be re-included.
 */
export async function* walkTree(root: string, start = '.', filter?: WalkFilter): AsyncGenerator<TreeEntry> {
  const visit = async function* (rel: string): AsyncGenerator<TreeEntry> {
    const abs = rel === '.' ? root : join(root, rel);
    const stat = await fs.lstat(abs);
    const excluded = rel !== '.' && filter?.excludes(rel);
    if (!excluded) yield { rel, abs, stat };
    if (!stat.isDirectory()) return;
    if (excluded && filter?.canSkipDirectory(rel)) return;
    const names = (await fs.readdir(abs)).sort(byteOrder);
    for (const name of names) yield* visit(rel === '.' ? name : `${rel}/${name}`);
  };
  yield* visit(start);
}

export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
