import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { PathNotFoundError, processAlive, type StorageDriver } from '../../store/index.js';

/**
 * The mirror's small state documents under the store's driver (`mirror/stats.json`, `mirror/access.json`,
 * `mirror/pins.json`). Several processes share them — the registry server, `tsbuild mirror sync`,
 * `import`, `pin` on the same root — so every change is a read-modify-write under a lock: in process, a
 * chain; across processes, on a local filesystem, an exclusive lock file (`<path>.lock` holding the pid;
 * a dead owner's lock is broken). The write itself is the driver's atomic replace, so a reader never sees
 * half a document.
 */

/** How long a writer waits for another process's lock before giving up (ms). */
const LOCK_WAIT_MS = 10_000;
const LOCK_POLL_MS = 10;

const chains = new Map<string, Promise<unknown>>();

/** Reads a JSON document; `fallback()` when it does not exist or is not JSON (a damaged file starts over). */
export async function readState<T>(driver: StorageDriver, path: string, fallback: () => T): Promise<T> {
  let bytes: Buffer;
  try {
    bytes = await driver.getContent(path);
  } catch (e) {
    if (e instanceof PathNotFoundError) return fallback();
    throw e;
  }
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as T;
    return parsed !== null && typeof parsed === 'object' ? parsed : fallback();
  } catch {
    return fallback();
  }
}

async function lock(driver: StorageDriver, path: string): Promise<() => Promise<void>> {
  if (!driver.localPath) return async () => undefined;
  const file = driver.localPath(`${path}.lock`);
  await fs.mkdir(dirname(file), { recursive: true });
  const until = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fh = await fs.open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => void (await fs.rm(file, { force: true }));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (owner && owner !== process.pid && !processAlive(owner)) await fs.rm(file, { force: true });
      else if (Date.now() > until) throw new Error(`${file} is held by process ${owner || 'unknown'} for more than ${LOCK_WAIT_MS / 1000} s`);
      else await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
    }
  }
}

/**
 * Changes a JSON document: `change` gets the current one (or `fallback()`) and returns the new one, which
 * replaces it atomically. Serialized with every other update of `path` in this process and, on a local
 * filesystem, in other processes. Resolves with the document written.
 */
export function updateState<T>(
  driver: StorageDriver,
  path: string,
  fallback: () => T,
  change: (current: T) => T,
  options: { durable?: boolean } = {},
): Promise<T> {
  const key = `${driver.localPath?.(path) ?? path}`;
  const run = (chains.get(key) ?? Promise.resolve())
    .catch(() => undefined)
    .then(async () => {
      const release = await lock(driver, path);
      try {
        const next = change(await readState(driver, path, fallback));
        // Counters and access times may lose their last seconds in a power cut (no fsync); pins may not.
        await driver.putContent(path, JSON.stringify(next), { durable: options.durable ?? false });
        return next;
      } finally {
        await release();
      }
    });
  chains.set(key, run);
  void run.finally(() => chains.get(key) === run && chains.delete(key)).catch(() => undefined);
  return run;
}
