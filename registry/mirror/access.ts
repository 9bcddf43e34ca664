import { PeriodicFlush } from './periodic-flush.js';
import type { Digest } from '../../oci/index.js';
import type { StorageDriver, Store } from '../../store/index.js';
import { readState, updateState } from './state-file.js';

/**
 * `mirror/access.json`: when each cached manifest or blob was last pulled, for least-recently-pulled
 * eviction. `manifests[cachedRepository][digest]` is milliseconds since the epoch (the key keeps its
 * first name: it holds blobs' digests too).
 */
export interface AccessDocument {
  version: 1;
  manifests: Record<string, Record<string, number>>;
}

export const ACCESS_PATH = 'mirror/access.json';

function emptyAccess(): AccessDocument {
  return { version: 1 as const, manifests: {} };
}

/** The persisted access times (empty when none were written yet). */
export async function readAccess(driver: StorageDriver): Promise<AccessDocument> {
  const doc = await readState(driver, ACCESS_PATH, emptyAccess);
  return { version: 1 as const, manifests: doc.manifests && typeof doc.manifests === 'object' ? doc.manifests : {} };
}

/** When `digest` of `repository` was last pulled according to `doc` (0: never recorded). */
export function lastPulled(doc: AccessDocument, repository: string, digest: Digest): number {
  const t = doc.manifests[repository]?.[digest];
  return typeof t === 'number' && Number.isFinite(t) ? t : 0;
}

/**
 * The mirror's `touch` hook made persistent, cheaply: a touch only notes the time in memory; every few
 * seconds the notes are written in one read-modify-write of access.json (later times win, so processes
 * sharing the store merge). Blobs are recorded as well as manifests: the registry's in-memory manifest
 * cache answers repeated manifest requests for a few seconds without reaching the mirror, while the
 * blobs of a pull always do, and eviction takes the latest time of any digest of an image.
 */
export class AccessLog extends PeriodicFlush {
  private pending = new Map<string, Map<Digest, number>>();

  constructor(private readonly store: Store) {
    super();
  }

  /** Notes that `digest` was served or cached in `repository` now. Never throws, never waits. */
  touch(repository: string, digest: Digest): void {
    let digests = this.pending.get(repository);
    if (!digests) this.pending.set(repository, (digests = new Map()));
    digests.set(digest, Date.now());
  }

  protected async flushNow(): Promise<void> {
    if (this.pending.size === 0) return;
    const notes = this.pending;
    this.pending = new Map();
    try {
      await updateState(this.store.driver, ACCESS_PATH, emptyAccess, (doc) => {
        const all = doc.manifests && typeof doc.manifests === 'object' ? doc.manifests : {};
        for (const [repository, digests] of notes) {
          const times = (all[repository] ??= {});
          for (const [digest, at] of digests) times[digest] = Math.max(at, Number(times[digest]) || 0);
        }
        return { version: 1 as const, manifests: all };
      });
    } catch (e) {
      // Put the notes back for the next flush (newer notes taken meanwhile win).
      for (const [repository, digests] of notes) {
        let now = this.pending.get(repository);
        if (!now) this.pending.set(repository, (now = new Map()));
        for (const [digest, at] of digests) if (!now.has(digest)) now.set(digest, at);
      }
      throw e;
    }
  }
}

/** Removes the access times of digests that are no longer cached under a repository (after an eviction). */
export async function forgetAccess(driver: StorageDriver, gone: { repository: string; digest: Digest }[]): Promise<void> {
  if (gone.length === 0) return;
  await updateState(driver, ACCESS_PATH, emptyAccess, (doc) => {
    const all = doc.manifests && typeof doc.manifests === 'object' ? doc.manifests : {};
    for (const { repository, digest } of gone) {
      const times = all[repository];
      if (!times) continue;
      delete times[digest];
      if (Object.keys(times).length === 0) delete all[repository];
    }
    return { version: 1 as const, manifests: all };
  });
}
