/**
 * What holds a blob, in one place: garbage collection (store/gc.ts), prune and `system df`, and the
 * mirror's size-limit eviction all mark through here.
 *
 * Roots, as distribution's `garbage-collect` and docker's image store see them, plus what a live store
 * needs:
 * - every manifest linked in a repository (`_manifests/revisions`); with `untaggedAreGarbage`
 *   (distribution's `--delete-untagged`) only tagged ones, ones linked at or after `cutoff`, pinned ones,
 *   an index's children and referrers (`subject`) of a marked manifest;
 * - the blob links (`_layers`) of a repository being pushed to: one with a link made, or an upload session
 *   (ingest labelled with the repository) receiving bytes, at or after `cutoff` — a push's blobs wait
 *   there for its manifest, however long the push takes, as long as it goes on; every repository's links
 *   with `allLinksHold` (the mirror eviction's view);
 * - local images (images/index.json: built, pulled, loaded), images built without a name
 *   (`<root>/cache/built-images`), build cache records (`<root>/cache/build`);
 * - the mirror's pins (`mirror/pins.json`, registry/mirror/pins.ts: a tag pin holds what the tag points at
 *   now, a digest pin its manifest) and `extraRoots`.
 * From the roots it marks manifests → config and layers, indexes → child manifests. A referrer's
 * `subject` is a weak reference (OCI image spec): it does not hold its subject.
 *
 * Nothing here locks: a mark sees the store as it was while it ran. Deleting is store/gc.ts's business
 * (claim, mark again, then delete: see gc-claims.ts).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { mapLimit, parseDigest, parseImageDocument, type Digest } from '../oci/index.js';
import { PathNotFoundError } from './errors.js';
import { blobPath, repositoryPath } from './layout.js';
import type { Store } from './store.js';

/** Repository names asked of the catalog at a time. */
const CATALOG_PAGE = 1000;
/** Repositories read at once while marking. */
const MARK_CONCURRENCY = 8;

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

/** What one image document references. Content-addressed, so it can be cached across marks. */
export interface DocumentRefs {
  children: Digest[];
  blobs: Digest[];
  subject?: Digest;
}

const NONE: DocumentRefs = { children: [], blobs: [] };

/** A manifest's or index's references; a blob that is not an image document (or is missing) has none. */
export async function documentRefs(store: Store, digest: Digest, cache?: Map<Digest, DocumentRefs>): Promise<DocumentRefs> {
  const known = cache?.get(digest);
  if (known) return known;
  let refs = NONE;
  try {
    const doc = parseImageDocument(await store.blobs.readBuffer(digest));
    if (doc.kind === 'index') {
      refs = { children: doc.index.manifests.map((m) => m.digest), blobs: [], ...(doc.index.subject ? { subject: doc.index.subject.digest } : {}) };
    } else {
      const m = doc.manifest;
      refs = { children: [], blobs: [m.config.digest, ...m.layers.map((l) => l.digest)], ...(m.subject ? { subject: m.subject.digest } : {}) };
    }
  } catch {
    // not a document, unreadable or gone: it holds nothing more
    return NONE;
  }
  cache?.set(digest, refs);
  return refs;
}

export interface MarkOptions {
  /** ms since the epoch: links and manifests made at or after it are roots (the grace period). */
  cutoff: number;
  /** Only tagged (or young, pinned, listed, referring) manifests are roots. */
  untaggedAreGarbage?: boolean;
  /** Every `_layers` link holds its blob, however old. */
  allLinksHold?: boolean;
  /** Digests held whatever else says (mirror pins); marked with what they reference. */
  extraRoots?: Iterable<Digest>;
  /** Leave out local images and build cache (a registry GC over another root). Default: included. */
  registryOnly?: boolean;
  /** Parsed documents, shared between the marks of one GC. */
  documents?: Map<Digest, DocumentRefs>;
}

export interface MarkResult {
  marked: Set<Digest>;
  /** Linked manifests no root reaches (only with untaggedAreGarbage). */
  unreachedManifests: { repository: string; digest: Digest }[];
  repositories: number;
  manifests: number;
}

/** Marks `digest` and everything it references. */
async function markFrom(store: Store, digest: Digest, marked: Set<Digest>, docs: Map<Digest, DocumentRefs>): Promise<void> {
  const stack = [digest];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (marked.has(d)) continue;
    marked.add(d);
    const refs = await documentRefs(store, d, docs);
    for (const b of refs.blobs) marked.add(b);
    for (const c of refs.children) if (!marked.has(c)) stack.push(c);
  }
}

async function modTime(store: Store, path: string): Promise<number | undefined> {
  try {
    return (await store.driver.stat(path)).modTime.getTime();
  } catch (e) {
    if (e instanceof PathNotFoundError) return undefined;
    throw e;
  }
}

/**
 * Whether a repository's links under `dir` (`<alg>/<hex>`) changed at or after `cutoff`. On a local
 * filesystem the directories' mtimes tell (a link is written by a rename into them); elsewhere each link
 * is looked at until a young one turns up.
 */
async function linkedSince(store: Store, dir: string, cutoff: number): Promise<boolean> {
  for (const alg of await store.driver.list(dir)) {
    const sub = `${dir}/${alg}`;
    if (store.driver.localPath) {
      if (((await modTime(store, sub)) ?? 0) >= cutoff) return true;
      continue;
    }
    for (const hex of await store.driver.list(sub)) if (((await modTime(store, `${sub}/${hex}`)) ?? 0) >= cutoff) return true;
  }
  return false;
}

/** Links under `dir` (`<alg>/<hex>`) as digests. */
async function links(store: Store, dir: string): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const alg of await store.driver.list(dir)) {
    for (const hex of await store.driver.list(`${dir}/${alg}`)) {
      try {
        out.push(parseDigest(`${alg}:${hex}`));
      } catch {
        // a stray name
      }
    }
  }
  return out;
}

/** Links under `dir` made at or after `cutoff` (manifest revisions: one stat each). */
async function youngLinks(store: Store, dir: string, cutoff: number): Promise<Digest[]> {
  if (store.driver.localPath && !(await linkedSince(store, dir, cutoff))) return [];
  const out: Digest[] = [];
  for (const d of await links(store, dir)) {
    if (((await modTime(store, `${dir}/${d.slice(0, d.indexOf(':'))}/${d.slice(d.indexOf(':') + 1)}`)) ?? 0) >= cutoff) out.push(d);
  }
  return out;
}

/** Repositories with an upload session that received bytes at or after `cutoff` (its `repository` label). */
async function repositoriesUploading(store: Store, cutoff: number): Promise<Set<string>> {
  const out = new Set<string>();
  for (const id of await store.ingests.list()) {
    try {
      const ingest = await store.ingests.open(id);
      const repository = ingest.labels['repository'];
      if (repository && (await ingest.updatedAt()).getTime() >= cutoff) out.add(repository);
    } catch {
      // committed or cancelled meanwhile
    }
  }
  return out;
}

async function markRepository(
  store: Store,
  name: string,
  options: MarkOptions,
  extra: ReadonlySet<Digest>,
  uploading: ReadonlySet<string>,
  marked: Set<Digest>,
  docs: Map<Digest, DocumentRefs>,
  result: MarkResult,
): Promise<void> {
  const repos = store.repositories;
  const manifests = await repos.listManifests(name);
  result.manifests += manifests.length;
  if (!options.untaggedAreGarbage) {
    for (const m of manifests) await markFrom(store, m, marked, docs);
  } else {
    const tagged = new Set<Digest>();
    for (const tag of (await repos.listTags(name)).items) {
      const d = await repos.resolveTag(name, tag);
      if (d) tagged.add(d);
    }
    const young = new Set(await youngLinks(store, `${repositoryPath(name)}/_manifests/revisions`, options.cutoff));
    for (const m of manifests) if (tagged.has(m) || young.has(m) || extra.has(m)) await markFrom(store, m, marked, docs);
    // referrers of what is marked, until nothing more is added (a signature of a signature)
    for (let changed = true; changed; ) {
      changed = false;
      for (const m of manifests) {
        if (marked.has(m)) continue;
        const subject = (await documentRefs(store, m, docs)).subject;
        if (subject && marked.has(subject)) {
          await markFrom(store, m, marked, docs);
          changed = true;
        }
      }
    }
    for (const m of manifests) if (!marked.has(m)) result.unreachedManifests.push({ repository: name, digest: m });
  }
  const layers = `${repositoryPath(name)}/_layers`;
  if (options.allLinksHold || uploading.has(name) || (await linkedSince(store, layers, options.cutoff)))
    for (const d of await links(store, layers)) marked.add(d);
}

/** Digests named by the JSON records in a local directory (`pick` reads one record). */
async function recordDigests(dir: string, pick: (record: any) => unknown): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    try {
      const value = pick(JSON.parse(await fs.readFile(join(dir, name), 'utf8')));
      if (typeof value === 'string') out.push(parseDigest(value));
    } catch {
      // being written (a temp name), or damaged: holds nothing
    }
  }
  return out;
}

/** The manifests of local images: named ones and, unless `named` only, those built without a name. */
export async function localImageRoots(store: Store, named = false): Promise<Digest[]> {
  const out = (await store.images.list()).map((r) => r.digest);
  if (!named) out.push(...(await recordDigests(join(store.root, 'cache', 'built-images'), (r) => r.digest)));
  return out;
}

/** Layer blobs build cache records point at. */
export async function buildCacheLayers(store: Store): Promise<Digest[]> {
  return recordDigests(join(store.root, 'cache', 'build'), (r) => r.layer?.descriptor?.digest);
}

/** The manifests the mirror's pins hold (`mirror/pins.json`: `{ pins: [{ repository, tag?, digest? }] }`). */
export async function pinnedRoots(store: Store): Promise<Digest[]> {
  let pins: { repository?: unknown; tag?: unknown; digest?: unknown }[];
  try {
    const doc = JSON.parse((await store.driver.getContent('mirror/pins.json')).toString('utf8')) as { pins?: unknown };
    pins = Array.isArray(doc.pins) ? doc.pins : [];
  } catch {
    return []; // none, or being rewritten (replaced atomically: a missing file is no pins)
  }
  const out: Digest[] = [];
  for (const pin of pins) {
    try {
      if (typeof pin.digest === 'string') out.push(parseDigest(pin.digest));
      else if (typeof pin.repository === 'string' && typeof pin.tag === 'string') {
        const d = await store.repositories.resolveTag(pin.repository, pin.tag);
        if (d) out.push(d);
      }
    } catch {
      // a malformed pin holds nothing
    }
  }
  return out;
}

/** Marks everything the roots reach (see the module comment). */
export async function markReachable(store: Store, options: MarkOptions): Promise<MarkResult> {
  const marked = new Set<Digest>();
  const docs = options.documents ?? new Map<Digest, DocumentRefs>();
  const extra = new Set([...(options.extraRoots ?? []), ...(await pinnedRoots(store))]);
  const result: MarkResult = { marked, unreachedManifests: [], repositories: 0, manifests: 0 };
  if (!options.registryOnly) {
    for (const d of await localImageRoots(store)) await markFrom(store, d, marked, docs);
    for (const d of await buildCacheLayers(store)) marked.add(d);
  }
  const names: string[] = [];
  for await (const name of repositoryNames(store)) names.push(name);
  result.repositories = names.length;
  const uploading = await repositoriesUploading(store, options.cutoff);
  await mapLimit(names, MARK_CONCURRENCY, (name) => markRepository(store, name, options, extra, uploading, marked, docs, result));
  for (const d of extra) await markFrom(store, d, marked, docs);
  return result;
}

/** Every digest something holds, with every repository link holding (the mirror's view; no grace). */
export async function heldDigests(store: Store): Promise<Set<Digest>> {
  return (await markReachable(store, { cutoff: Date.now(), allLinksHold: true })).marked;
}

/** Every digest a local image holds (named images only). */
export async function localImageDigests(store: Store): Promise<Set<Digest>> {
  const out = new Set<Digest>();
  const docs = new Map<Digest, DocumentRefs>();
  for (const d of await localImageRoots(store, true)) await markFrom(store, d, out, docs);
  return out;
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
