import { posix } from 'node:path';
import { resolveInRootSync } from '../snapshot/index.js';

/**
 * Resolves `path` (absolute inside the root) to a host path under `root`, following symlinks as if
 * `root` were `/` — an absolute link target or `..` can never climb out (FollowSymlinkInScope).
 * Missing components are fine: the rest of the path is appended as is. With `followFinal` false the
 * last component is not resolved (for operations on a link itself).
 */
export async function resolveInRoot(root: string, path: string, followFinal = true): Promise<string> {
  return resolveInRootSync(root, path, followFinal);
}

/** The path of `host` relative to `root`, as an absolute in-root path (`/a/b`). */
export function inRootPath(root: string, host: string): string {
  const rel = posix.relative(root, host);
  return '/' + rel;
}
