import { promises as fs } from 'node:fs';
import { join } from 'node:path';

/**
 * The Dockerfile a build of `contextDir` reads when none is given (no -f): `CONTEXT/Dockerfile`, or — as
 * the docker CLI and daemon do when that is absent — a lowercase `CONTEXT/dockerfile` that exists.
 * Never fails: a context without either gets the `Dockerfile` path, whose read then says what is missing.
 */
export async function defaultDockerfile(contextDir: string): Promise<string> {
  const upper = join(contextDir, 'Dockerfile');
  const absent = await fs.lstat(upper).then(
    () => false,
    (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
  );
  if (!absent) return upper;
  const lower = join(contextDir, 'dockerfile');
  return (await fs.lstat(lower).then(
    () => true,
    () => false,
  ))
    ? lower
    : upper;
}

/**
 * docker's one line for a local context that is not a directory (`path "nodir" not found`, `context must
 * be a directory: /abs/file`), or undefined when `contextDir` is one.
 */
export async function contextDirProblem(contextDir: string, absolute: string): Promise<string | undefined> {
  const stat = await fs.stat(contextDir).catch(() => undefined);
  if (!stat) return `unable to prepare context: path "${contextDir}" not found`;
  if (!stat.isDirectory()) return `unable to prepare context: context must be a directory: ${absolute}`;
  return undefined;
}
