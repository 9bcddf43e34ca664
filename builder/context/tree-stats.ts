import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
// fs-names directly, not the snapshot index: the no-op check loads this and must stay small
import { fsPath } from '../snapshot/fs-names.js';

/** GNU find's line per entry: path bytes, then type, mode, owner, size, device, inode, mtime and ctime (ns). */
const FORMAT = '%P\\0%y %m %U %G %s %D %i %T@ %C@\\0';

/** A tree that takes longer than this to list is not worth a shortcut: the caller walks it instead. */
const TIMEOUT_MS = 60_000;

/**
 * A sha256 (hex) over the metadata of every entry under `path`, itself included, without reading any
 * file's contents: names as bytes, type, permission bits, owner, size, device, inode and the modification
 * and change times in nanoseconds. Equal results mean no entry was added, removed, renamed, rewritten or
 * changed in mode (the trust git's index and BuildKit's contenthash give stat data). The order is
 * find(1)'s: readdir order, stable for a directory that did not change.
 *
 * Why a process: in a short-lived process, lstat-walking 2,000 files in JavaScript took 36–45 ms here
 * (cold code) against 12–15 ms for GNU find (findutils) printing the same stat data.
 * `prune`: a directory under `path` left out with everything below it (given as `path` is: both real or
 * both not). Resolves to the hash and the number of entries; rejects when find fails (a directory it
 * cannot read, find missing) or takes over 60 s.
 */
export function treeStats(path: string, prune?: string): Promise<{ hex: string; entries: number }> {
  // absolute, so that no path is read by find as an option or expression (`-delete`)
  const arg = fsPath(resolve(path));
  const pruned = prune === undefined ? undefined : fsPath(resolve(prune));
  // process arguments are strings: a path that is not UTF-8 is walked by the caller instead
  if (typeof arg !== 'string' || (pruned !== undefined && typeof pruned !== 'string')) return Promise.reject(new Error(`${path} is not a UTF-8 path`));
  const args = pruned === undefined ? [arg] : [arg, '-path', pruned.replace(/[*?[\]\\]/g, '\\$&'), '-prune', '-o'];
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let nuls = 0;
    const find = spawn('find', [...args, '-printf', FORMAT], { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => find.kill('SIGKILL'), TIMEOUT_MS);
    find.stdout.on('data', (chunk: Buffer) => {
      h.update(chunk);
      for (let i = chunk.indexOf(0); i !== -1; i = chunk.indexOf(0, i + 1)) nuls++;
    });
    find.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    find.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ hex: h.digest('hex'), entries: nuls / 2 });
      else reject(new Error(`find ${path} ${signal ? `was killed (${signal})` : `exited with ${code}`}`));
    });
  });
}
