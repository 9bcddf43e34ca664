import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { fsPath, readlinkNameSync } from './fs-names.js';

/** Path components of a name inside a root: `.` and empty parts dropped, `..` kept for the resolver. */
export function components(name: string): string[] {
  return name.split('/').filter((p) => p !== '' && p !== '.');
}

/** A name cleaned lexically inside a root: `../../etc/x` → `etc/x`, `/a/./b` → `a/b`. */
export function cleanInside(name: string): string {
  const out: string[] = [];
  for (const part of components(name)) {
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/**
 * Resolves `name` inside `root` the way the kernel would inside a chroot at `root`: symlinks met on the
 * way are followed, but absolute targets restart at `root` and `..` never climbs above it, so the result
 * is always under `root`. The last component is followed only with `followFinal`. Components that do not
 * exist are taken literally.
 */
export async function resolveInRoot(root: string, name: string, followFinal = false): Promise<string> {
  // lstat/readlink of a few components is cheaper synchronously than as thread-pool round trips
  return resolveInRootSync(root, name, followFinal);
}

/** `resolveInRoot` with synchronous calls (the one implementation; also the per-entry hot path of layer unpacking). */
export function resolveInRootSync(root: string, name: string, followFinal = false): string {
  let pending = components(name);
  let resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    if (pending.length === 0 && !followFinal) {
      resolved.push(part);
      break;
    }
    const candidate = join(root, ...resolved, part);
    let isLink = false;
    try {
      isLink = lstatSync(fsPath(candidate)).isSymbolicLink();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > 255) throw new Error(`too many levels of symbolic links resolving ${name} inside ${root}`);
    const target = readlinkNameSync(candidate);
    if (target.startsWith('/')) resolved = [];
    pending = [...components(target), ...pending];
  }
  return join(root, ...resolved);
}
