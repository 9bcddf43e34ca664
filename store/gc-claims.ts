/**
 * How garbage collection deletes a blob without racing the writers of a live store (a registry taking
 * pushes, a build, a mirror fetch), in any number of processes:
 *
 *   GC:     lock → claim each candidate → mark every root again → delete what is still claimed and
 *           unreached, restore the rest
 *   writer: link the blob (repository link, manifest link, image tag) → confirm it is present
 *           (BlobStore.stat/has, through `confirm` below)
 *
 * A claim is taken back by whoever confirms the blob before the GC decides, so the blob is either kept
 * or deleted, never deleted under a link: a link made before the GC's second mark is seen by it, a link
 * made after it is followed by the writer's confirm, which either takes the claim back (the GC then
 * keeps the blob) or finds the blob gone and fails honestly (a mount falls back to an upload, a manifest
 * push answers MANIFEST_BLOB_UNKNOWN). A GC killed at any point leaves claims that the next GC, or any
 * writer, clears: no reachable blob is lost.
 *
 * Two implementations of the one protocol (BlobClaims):
 * - RenameClaims (here), for one store on a filesystem: a claim renames blobs/<alg>/<hex> to
 *   gc/claimed/<alg>/<hex>; a rename succeeds once, so the GC's delete and a writer's restore cannot both
 *   win; the lock is `gc/lock`, created exclusively.
 * - SharedClaims (shared-gc-claims.ts), for replicas on S3 (where a rename is a copy and a delete):
 *   claims, the lock and the writers' confirmations live in Redis, decided by atomic scripts.
 */
import { hostname } from 'node:os';
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { digestAlgorithm, digestHex, parseDigest, processAlive, type Digest } from '../oci/index.js';
import type { StorageDriver } from './driver/storage-driver.js';
import { PathNotFoundError } from './errors.js';
import { blobPath } from './layout.js';

export class GcLockedError extends Error {
  /** Who holds the lock: pid, host and since when. */
  readonly owner: string;
  constructor(owner: string) {
    super(`another garbage collection is running on this store (${owner}); wait for it to finish`);
    this.owner = owner;
    this.name = 'GcLockedError';
  }
}

/** Held by the one GC running on a store. */
export interface GcLock {
  /** Throws when the lock was lost meanwhile (a shared lock that expired): the GC must stop deciding. */
  check(): void;
  release(): Promise<void>;
}

/** The GC's and the writers' sides of the claim protocol (see the module comment). */
export interface BlobClaims {
  /** One GC at a time per store, across processes (and replicas). Throws GcLockedError. */
  lock(): Promise<GcLock>;
  /**
   * Takes a candidate out of use for the GC holding the lock: false when the blob is not in place, or was
   * confirmed by a writer at or after `cutoff` (ms since the epoch).
   */
  claim(digest: Digest, cutoff: number): Promise<boolean>;
  /** Gives a claimed blob back (the GC keeps it); true when it was still claimed. */
  restore(digest: Digest): Promise<boolean>;
  /** The claimed blob's size and mtime (ms), or undefined when it is no longer claimed (a writer took it back). */
  claimedInfo(digest: Digest): Promise<{ size: number; modTime: number } | undefined>;
  /** Deletes a claimed blob; false when a writer took it back first (the blob stays). */
  deleteClaimed(digest: Digest): Promise<boolean>;
  /** Clears every claim a killed GC left (the blobs stay); returns how many. Call holding the lock. */
  restoreAll(): Promise<number>;
  /**
   * A writer that wants the blob (it linked it, or is about to write the same bytes) runs `op` (a stat of
   * its path) through this: a claim is taken back first, or, when `op` finds nothing, a claimed blob is
   * put back and `op` runs again. Waits while the GC deletes the blob; `op` then finds it gone.
   */
  confirm<T>(digest: Digest, op: () => Promise<T>): Promise<T>;
  /** A reader runs `op` through this: a claimed blob is read where it is, or put back first when it was moved. */
  read<T>(digest: Digest, op: () => Promise<T>): Promise<T>;
}

export const CLAIMED_DIR = 'gc/claimed';
const LOCK = 'gc/lock';

export function claimedPath(digest: Digest): string {
  return `${CLAIMED_DIR}/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

/** Claims by rename on a driver whose move is atomic (the filesystem). */
export class RenameClaims implements BlobClaims {
  constructor(private readonly driver: StorageDriver) {}

  async claim(digest: Digest): Promise<boolean> {
    return this.move(blobPath(digest), claimedPath(digest));
  }

  /** When a fresh copy arrived meanwhile (an upload of the same bytes) the claimed copy replaces it: the bytes are the same. */
  async restore(digest: Digest): Promise<boolean> {
    return this.move(claimedPath(digest), blobPath(digest));
  }

  private async move(from: string, to: string): Promise<boolean> {
    try {
      await this.driver.move(from, to);
      return true;
    } catch (e) {
      if (e instanceof PathNotFoundError) return false;
      throw e;
    }
  }

  async claimedInfo(digest: Digest): Promise<{ size: number; modTime: number } | undefined> {
    try {
      const s = await this.driver.stat(claimedPath(digest));
      return { size: s.size, modTime: s.modTime.getTime() };
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }

  /** No error when a writer restored it first: its rename won, the delete finds nothing. */
  async deleteClaimed(digest: Digest): Promise<boolean> {
    await this.driver.delete(claimedPath(digest));
    return true;
  }

  /** Every blob left claimed (by a GC that was killed, or one running now). */
  async listClaimed(): Promise<Digest[]> {
    const out: Digest[] = [];
    for (const alg of await this.driver.list(CLAIMED_DIR)) {
      for (const hex of await this.driver.list(`${CLAIMED_DIR}/${alg}`)) {
        try {
          out.push(parseDigest(`${alg}:${hex}`));
        } catch {
          // a stray name
        }
      }
    }
    return out;
  }

  async restoreAll(): Promise<number> {
    let n = 0;
    for (const d of await this.listClaimed()) if (await this.restore(d)) n++;
    return n;
  }

  async confirm<T>(digest: Digest, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (e instanceof PathNotFoundError && (await this.restore(digest))) return op();
      throw e;
    }
  }

  read<T>(digest: Digest, op: () => Promise<T>): Promise<T> {
    return this.confirm(digest, op);
  }

  /**
   * `gc/lock` created exclusively (on a local filesystem; another driver gets a best-effort lock file). A
   * lock whose process on this host is gone is stale and taken over.
   */
  async lock(): Promise<GcLock> {
    const driver = this.driver;
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
    const held = (release: () => Promise<void>): GcLock => ({ check: () => undefined, release });
    if (!driver.localPath) {
      const current = await readOwner();
      if (current && !stale(current)) throw new GcLockedError(describe(current));
      await driver.putContent(LOCK, JSON.stringify(owner));
      return held(async () => driver.delete(LOCK));
    }
    const path = driver.localPath(LOCK);
    await fs.mkdir(dirname(path), { recursive: true });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await fs.open(path, 'wx');
        await fh.writeFile(JSON.stringify(owner));
        await fh.close();
        return held(async () => void (await fs.rm(path, { force: true })));
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
}
