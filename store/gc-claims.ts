/**
 * How garbage collection deletes a blob without racing the writers of a live store (a registry taking
 * pushes, a build, a mirror fetch), in any number of processes:
 *
 *   GC:     claim (rename blobs/<alg>/<hex> → gc/claimed/<alg>/<hex>) → re-check every root → delete or restore
 *   writer: link the blob (repository link, manifest link, image tag) → confirm it is present (BlobStore's
 *           stat/read restore a claimed blob on the way: rename gc/claimed/… back into place)
 *
 * A rename succeeds once, so the blob is either back in place or deleted, never both. A link made before
 * the GC's re-check is seen by it (the blob is restored); a link made after it is followed by the
 * writer's confirm, which either restores the blob (the GC's delete then finds nothing) or finds it gone
 * and fails honestly (a mount falls back to an upload, a manifest push answers MANIFEST_BLOB_UNKNOWN).
 * A blob committed during a GC is a new file (mtime after the GC began) and is never a candidate. A GC
 * killed midway leaves claimed blobs: the next GC, or any reader, puts them back first.
 */
import { hostname } from 'node:os';
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { digestAlgorithm, digestHex, parseDigest, type Digest } from '../oci/index.js';
import type { StorageDriver } from './driver/storage-driver.js';
import { PathNotFoundError } from './errors.js';
import { processAlive } from './image-index.js';
import { blobPath } from './layout.js';

export const CLAIMED_DIR = 'gc/claimed';
const LOCK = 'gc/lock';

export function claimedPath(digest: Digest): string {
  return `${CLAIMED_DIR}/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

/** Moves a blob out of sight for a GC; false when it is not in place (deleted, or claimed already). */
export async function claimBlob(driver: StorageDriver, digest: Digest): Promise<boolean> {
  try {
    await driver.move(blobPath(digest), claimedPath(digest));
    return true;
  } catch (e) {
    if (e instanceof PathNotFoundError) return false;
    throw e;
  }
}

/**
 * Puts a claimed blob back in place; true when it did. When a fresh copy arrived meanwhile (an upload of
 * the same bytes) the claimed copy replaces it: the bytes are the same.
 */
export async function restoreClaimed(driver: StorageDriver, digest: Digest): Promise<boolean> {
  try {
    await driver.move(claimedPath(digest), blobPath(digest));
    return true;
  } catch (e) {
    if (e instanceof PathNotFoundError) return false;
    throw e;
  }
}

/** The claimed blob's size and mtime (ms), or undefined when it is no longer claimed. */
export async function claimedInfo(driver: StorageDriver, digest: Digest): Promise<{ size: number; modTime: number } | undefined> {
  try {
    const s = await driver.stat(claimedPath(digest));
    return { size: s.size, modTime: s.modTime.getTime() };
  } catch (e) {
    if (e instanceof PathNotFoundError) return undefined;
    throw e;
  }
}

/** Deletes a claimed blob (no error when a writer restored it first). */
export async function deleteClaimed(driver: StorageDriver, digest: Digest): Promise<void> {
  await driver.delete(claimedPath(digest));
}

/** Every blob left claimed (by a GC that was killed, or one running now). */
export async function listClaimed(driver: StorageDriver): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const alg of await driver.list(CLAIMED_DIR)) {
    for (const hex of await driver.list(`${CLAIMED_DIR}/${alg}`)) {
      try {
        out.push(parseDigest(`${alg}:${hex}`));
      } catch {
        // a stray name
      }
    }
  }
  return out;
}

/** Puts back every claimed blob (a GC killed midway); returns how many. */
export async function restoreAllClaimed(driver: StorageDriver): Promise<number> {
  let n = 0;
  for (const d of await listClaimed(driver)) if (await restoreClaimed(driver, d)) n++;
  return n;
}

export class GcLockedError extends Error {
  constructor(owner: string) {
    super(`another garbage collection is running on this store (${owner}); wait for it to finish`);
    this.name = 'GcLockedError';
  }
}

interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

/**
 * One GC at a time per store, across processes: `gc/lock` created exclusively (on a local filesystem;
 * another driver gets a best-effort lock file). A lock whose process on this host is gone is stale and
 * taken over. Returns the release function. Throws GcLockedError.
 */
export async function lockGc(driver: StorageDriver): Promise<() => Promise<void>> {
  const owner: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const describe = (o: Partial<LockOwner>) => `pid ${o.pid ?? '?'} on ${o.host ?? '?'} since ${o.startedAt ?? '?'}`;
  const readOwner = async (): Promise<Partial<LockOwner> | undefined> => {
    try {
      return JSON.parse((await driver.getContent(LOCK)).toString('utf8')) as Partial<LockOwner>;
    } catch (e) {
      if (e instanceof PathNotFoundError || e instanceof SyntaxError) return undefined;
      throw e;
    }
  };
  const stale = (o: Partial<LockOwner>) => o.host === owner.host && (typeof o.pid !== 'number' || !processAlive(o.pid));
  if (!driver.localPath) {
    const current = await readOwner();
    if (current && !stale(current)) throw new GcLockedError(describe(current));
    await driver.putContent(LOCK, JSON.stringify(owner));
    return async () => driver.delete(LOCK);
  }
  const path = driver.localPath(LOCK);
  await fs.mkdir(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fs.open(path, 'wx');
      await fh.writeFile(JSON.stringify(owner));
      await fh.close();
      return async () => void (await fs.rm(path, { force: true }));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const current = await readOwner();
      if (current && !stale(current)) throw new GcLockedError(describe(current));
      // stale, or being written: a dead owner's lock goes; a fresh one is given a moment
      if (current) await fs.rm(path, { force: true });
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new GcLockedError(describe((await readOwner()) ?? {}));
}
