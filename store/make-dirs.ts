import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { errnoReason } from './errno.js';

/**
 * Creates `dir` and its missing parents, one level at a time (`mkdir -p`), for directories a person names
 * (--root, a cache or output dest, DOCKER_CONFIG). Node's `mkdir(…, { recursive: true })` spins forever
 * at full CPU where mkdir answers ENOENT below a parent that exists (procfs: `/proc/nope`); here each
 * level is tried at most twice. `mode` as for mkdir (default 0o777 before the umask).
 * @throws Error `cannot create directory DIR: REASON` (one line, `code` the errno name) for the level that failed
 */
export async function makeDirs(dir: string, mode?: number): Promise<void> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (stat?.isDirectory()) return;
  if (stat) throw failure(dir, 'ENOTDIR', 'a file of that name exists');
  try {
    await fs.mkdir(dir, mode);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await isDirectory(dir))) return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw failure(dir, code, errnoReason(e));
  }
  await makeDirs(dirname(dir), mode);
  try {
    await fs.mkdir(dir, mode);
  } catch (e) {
    // another process made it in between
    if ((e as NodeJS.ErrnoException).code === 'EEXIST' && (await isDirectory(dir))) return;
    throw failure(dir, (e as NodeJS.ErrnoException).code, errnoReason(e));
  }
}

function isDirectory(path: string): Promise<boolean> {
  return fs.stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

function failure(dir: string, code: string | undefined, why: string): Error {
  return Object.assign(new Error(`cannot create directory ${dir}: ${why}`), { code });
}
