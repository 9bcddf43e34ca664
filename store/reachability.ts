/**
 * What holds a blob in the store, in one place: the mirror's eviction uses it now, and the full garbage
 * collection (issue 15) is meant to grow from it.
 *
 * A blob is held when a repository links it (`_layers`: pushed, mounted or pulled through it), when a
 * repository links it as a manifest (`_manifests/revisions`), or when a local image (images/index.json:
 * built, pulled, loaded) references it, directly or through an index. A registry refuses a manifest whose
 * blobs are not linked into its repository, so links are enough for repositories; local images have no
 * links and are walked through their documents.
 *
 * Nothing here locks: a walk sees the store as it was while it ran. Deleting is left to callers that
 * bound the race (deleteUnheld walks again right before it deletes, and spares young blobs).
 */
import type { Digest } from '../oci/index.js';
import { PathNotFoundError } from './errors.js';
import { referencedBlobs } from './image-reader.js';
import { blobPath } from './layout.js';
import type { Store } from './store.js';

/** Repository names asked of the catalog at a time. */
const CATALOG_PAGE = 1000;

/** Every repository name, in catalog order. */
export async function* repositoryNames(store: Store): AsyncGenerator<string> {
  let last: string | undefined;
  for (;;) {
    const page = await store.repositories.catalog({ n: CATALOG_PAGE, ...(last !== undefined ? { last } : {}) });
    yield* page.items;
    if (!page.more || page.items.length === 0) return;
    last = page.items[page.items.length - 1];
  }
}

/** The digests one repository holds: its manifests and its linked blobs (they may overlap). */
export async function repositoryHoldings(store: Store, name: string): Promise<{ manifests: Digest[]; blobs: Digest[] }> {
  const [manifests, blobs] = await Promise.all([store.repositories.listManifests(name), store.repositories.listBlobs(name)]);
  return { manifests, blobs };
}

/**
 * Every digest a local image holds: each record's document and what it references (index entries that
 * were never pulled are skipped; an unreadable document holds only itself).
 */
export async function localImageDigests(store: Store): Promise<Set<Digest>> {
  const out = new Set<Digest>();
  for (const record of await store.images.list()) {
    if (out.has(record.digest)) continue;
    out.add(record.digest);
    try {
      for (const d of await referencedBlobs(store.blobs, record.digest, record.mediaType)) out.add(d.digest);
    } catch {
      // a document missing or unreadable: nothing more to hold
    }
  }
  return out;
}

/**
 * Every digest something holds: all repositories (except those `skipRepository` names) and all local
 * images. Costs one listing per repository plus the local images' documents.
 */
export async function heldDigests(store: Store, options: { skipRepository?: (name: string) => boolean } = {}): Promise<Set<Digest>> {
  const held = await localImageDigests(store);
  for await (const name of repositoryNames(store)) {
    if (options.skipRepository?.(name)) continue;
    const { manifests, blobs } = await repositoryHoldings(store, name);
    for (const d of manifests) held.add(d);
    for (const d of blobs) held.add(d);
  }
  return held;
}

/** A blob's size (bytes) and when its file was written; undefined when the store does not have it. */
export async function blobFileInfo(store: Store, digest: Digest): Promise<{ size: number; modTime: Date } | undefined> {
  try {
    const info = await store.driver.stat(blobPath(digest));
    return { size: info.size, modTime: info.modTime };
  } catch (e) {
    if (e instanceof PathNotFoundError) return undefined;
    throw e;
  }
}

export interface DeleteUnheldResult {
  /** Blobs deleted, and their bytes. */
  deleted: Digest[];
  bytes: number;
  /** Candidates kept: something holds them again, or they are younger than `minAgeMs`. */
  kept: Digest[];
}

/**
 * Deletes those of `candidates` that nothing holds, after a fresh walk of the whole store (so links made
 * since the caller looked count), and whose files are at least `minAgeMs` old: a blob just committed by
 * an upload or a fetch may not be linked yet (a push puts its manifest last; a build names its image
 * last). Blobs in `keep` are never deleted.
 *
 * Known gap (for the full GC of issue 15 to close with a lock or a mark): a push that mounts or
 * re-uploads an old blob between the walk and the delete links a blob that is then gone.
 */
export async function deleteUnheld(
  store: Store,
  candidates: Iterable<Digest>,
  options: { minAgeMs: number; keep?: ReadonlySet<Digest>; now?: number },
): Promise<DeleteUnheldResult> {
  const wanted = [...new Set(candidates)];
  const result: DeleteUnheldResult = { deleted: [], bytes: 0, kept: [] };
  if (wanted.length === 0) return result;
  const held = await heldDigests(store);
  const now = options.now ?? Date.now();
  for (const digest of wanted) {
    if (held.has(digest) || options.keep?.has(digest)) {
      result.kept.push(digest);
      continue;
    }
    const info = await blobFileInfo(store, digest);
    if (!info) continue;
    if (now - info.modTime.getTime() < options.minAgeMs) {
      result.kept.push(digest);
      continue;
    }
    await store.driver.delete(blobPath(digest));
    result.deleted.push(digest);
    result.bytes += info.size;
  }
  return result;
}
