import { promises as fs, lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { byteOrder, fsPath, readdirNamesSync } from '../snapshot/index.js';
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
  /** Equal for filters that keep the same entries (their patterns), so results may be remembered by it; absent: never remembered. */
  readonly identity?: string;
}

/**
 * The entries of a walk, streamed: depth first in byte order of names (a stable order for checksums and
 * layers), `start` first; the lstat calls of one directory run in parallel and only the directories on the
 * current path are held, so memory does not grow with the tree. Symlinks are not followed.
 * As BuildKit's context walker (fsutil): an excluded directory is still entered when the filter says
 * something below may be re-included, and it is listed — before its first included descendant — only
 * if something below it is; so `meta` + `!meta/HEAD` gives `meta`, `meta/HEAD`.
 */
export async function* walkEntries(root: string, start = '.', filter?: WalkFilter): AsyncGenerator<TreeEntry> {
  // Excluded directories on the current path not listed yet: they are listed once something below is.
  const pending: TreeEntry[] = [];
  interface Frame {
    entry: TreeEntry;
    state: MatchState | undefined;
    children: string[];
    next: number;
    excluded: boolean;
  }
  const stack: Frame[] = [];
  // One directory at a time, synchronously: a thread-pool round trip per lstat costs more than the lstat
  // (the event loop is held for one directory's worth of calls at most).
  const enter = (rel: string, stat: Stats, parent: MatchState | undefined): TreeEntry | undefined => {
    const abs = rel === '.' ? root : join(root, rel);
    const verdict = rel !== '.' && filter ? filter.match(rel, parent) : undefined;
    const entry = { rel, abs, stat };
    if (stat.isDirectory() && !(verdict?.excluded && filter!.canSkipDirectory(rel))) {
      if (verdict?.excluded) pending.push(entry);
      const names = readdirNamesSync(abs).sort(byteOrder);
      stack.push({
        entry,
        state: verdict?.state,
        children: names.map((name) => (rel === '.' ? name : `${rel}/${name}`)),
        next: 0,
        excluded: !!verdict?.excluded,
      });
    }
    return verdict?.excluded ? undefined : entry;
  };
  const startParent = start !== '.' && filter && start.includes('/') ? filter.match(start.slice(0, start.lastIndexOf('/'))).state : undefined;
  const first = enter(start, lstatSync(fsPath(start === '.' ? root : join(root, start))), startParent);
  if (first) yield first;
  while (stack.length) {
    const frame = stack.at(-1)!;
    if (frame.next >= frame.children.length) {
      stack.pop();
      if (frame.excluded && pending.at(-1) === frame.entry) pending.pop();
      continue;
    }
    const child = frame.children[frame.next++]!;
    const entry = enter(child, lstatSync(fsPath(join(root, child))), frame.state);
    if (entry) {
      if (pending.length) yield* pending.splice(0);
      yield entry;
    }
    // a batch of sync calls between yields: let timers and I/O run now and then
    if (frame.next % 512 === 0) await new Promise((r) => setImmediate(r));
  }
}

/** Every entry of a walk at once (for small trees; large ones stream with `walkEntries`). */
export async function listTree(root: string, start = '.', filter?: WalkFilter): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  for await (const e of walkEntries(root, start, filter)) out.push(e);
  return out;
}

/** `walkEntries` under its older name. */
export function walkTree(root: string, start = '.', filter?: WalkFilter): AsyncGenerator<TreeEntry> {
  return walkEntries(root, start, filter);
}

/**
 * Batches of a walk's entries (at most `size` each, in order): lets a consumer work on a batch in parallel
 * while memory stays bounded by the batch.
 */
export async function* batches<T>(source: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of source) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

/** Walk order of two slash-separated relative paths: component by component, names in byte order. */
export function walkOrder(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = byteOrder(pa[i]!, pb[i]!);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
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
