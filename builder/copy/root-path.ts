import { promises as fs } from 'node:fs';
import { posix } from 'node:path';

const MAX_LINKS = 255;

/**
 * Resolves `path` (absolute inside the root) to a host path under `root`, following symlinks as if
 * `root` were `/` — an absolute link target or `..` can never climb out (FollowSymlinkInScope).
 * Missing components are fine: the rest of the path is appended as is. With `followFinal` false the
 * last component is not resolved (for operations on a link itself).
 */
export async function resolveInRoot(root: string, path: string, followFinal = true): Promise<string> {
  let pending = posix.normalize('/' + path).split('/').filter(Boolean);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    if (pending.length === 0 && !followFinal) {
      resolved.push(part);
      break;
    }
    let target: string | undefined;
    try {
      const st = await fs.lstat(posix.join(root, ...candidate));
      if (st.isSymbolicLink()) target = await fs.readlink(posix.join(root, ...candidate));
    } catch {
      // missing: keep the rest literally
      resolved.push(part, ...pending.filter((p) => p !== '.'));
      pending = [];
      break;
    }
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new Error(`too many levels of symbolic links resolving ${path}`);
    const targetParts = target.split('/').filter(Boolean);
    if (target.startsWith('/')) resolved.length = 0;
    pending = [...targetParts, ...pending];
  }
  // A later `..` in the literal remainder may still appear; normalize within the root.
  const inner = posix.normalize('/' + resolved.join('/'));
  return inner === '/' ? root : posix.join(root, inner);
}

/** The path of `host` relative to `root`, as an absolute in-root path (`/a/b`). */
export function inRootPath(root: string, host: string): string {
  const rel = posix.relative(root, host);
  return '/' + rel;
}
