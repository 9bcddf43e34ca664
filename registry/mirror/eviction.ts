import { parseImageDocument, type Digest } from '../../oci/index.js';
import { blobFileInfo, deleteUnheld, repositoryNames, type Store } from '../../store/index.js';
import { forgetAccess, lastPulled, readAccess, type AccessDocument } from './access.js';
import { pinnedManifests, readPins } from './pins.js';
import { cachedName } from './routing.js';

/**
 * The mirror's cache as eviction sees it: mirrored repositories (names under an upstream's prefix,
 * `docker.io/…`, `127.0.0.1-5000/…`, as routing.ts caches them) split into units — one per top-level
 * manifest (tagged, or not listed by an index of the repository) with its child manifests, configs and
 * layers, plus one "loose" unit per repository for linked blobs no manifest references. Units are what
 * is evicted, least recently pulled first. Pushed repositories and local images are never units; what
 * they hold is never deleted (store/reachability.ts decides).
 */
export interface CacheUnit {
  /** The cached repository, `docker.io/library/busybox`. */
  repository: string;
  /** The top-level manifest or index; undefined for the loose unit. */
  top?: Digest;
  /** The top and its child manifests present in the repository. */
  manifests: Digest[];
  /** Every digest the unit holds: manifests, configs, layers (for the loose unit: its links). */
  digests: Set<Digest>;
  /** Tags pointing at the top. */
  tags: string[];
  /**
   * Last pull (ms since the epoch): the latest access.json time of any of its digests, or when its top
   * manifest was linked (cached), whichever is later; for loose links, also their blobs' age.
   */
  lastPulled: number;
  pinned: boolean;
}

export interface CacheScan {
  units: CacheUnit[];
  /** Bytes of every blob a unit holds (absent blobs are left out). */
  sizes: Map<Digest, number>;
  /** Distinct bytes under mirrored names. */
  bytes: number;
}

/** The repository-name prefix an upstream's content is cached under (`127.0.0.1:5000` → `127.0.0.1-5000`). */
export function cachedPrefix(upstream: string): string {
  return cachedName(upstream, '').slice(0, -1);
}

/** Whether `name` is a repository the mirror caches for one of `prefixes`. */
export function isMirroredName(name: string, prefixes: ReadonlySet<string>): boolean {
  const slash = name.indexOf('/');
  return slash > 0 && prefixes.has(name.slice(0, slash));
}

/** Child manifests an index lists, and config + layers a manifest references (unreadable: none). */
async function documentLinks(store: Store, repository: string, digest: Digest): Promise<{ children: Digest[]; blobs: Digest[] }> {
  try {
    const link = await store.repositories.getManifestLink(repository, digest);
    const doc = parseImageDocument(await store.blobs.readBuffer(digest), { mediaType: link?.mediaType });
    if (doc.kind === 'index') return { children: doc.index.manifests.map((m) => m.digest), blobs: [] };
    return { children: [], blobs: [doc.manifest.config.digest, ...doc.manifest.layers.map((l) => l.digest)] };
  } catch {
    return { children: [], blobs: [] };
  }
}

async function repositoryUnits(store: Store, repository: string, access: AccessDocument, pinned: ReadonlySet<Digest> | undefined): Promise<CacheUnit[]> {
  const manifests = await store.repositories.listManifests(repository);
  const present = new Set(manifests);
  const docs = new Map<Digest, { children: Digest[]; blobs: Digest[] }>();
  for (const m of manifests) docs.set(m, await documentLinks(store, repository, m));
  const tagsOf = new Map<Digest, string[]>();
  for (const tag of (await store.repositories.listTags(repository)).items) {
    const d = await store.repositories.resolveTag(repository, tag);
    if (d) tagsOf.set(d, [...(tagsOf.get(d) ?? []), tag]);
  }
  const listed = new Set<Digest>();
  for (const doc of docs.values()) for (const c of doc.children) if (present.has(c)) listed.add(c);
  const units: CacheUnit[] = [];
  const covered = new Set<Digest>();
  for (const top of manifests) {
    if (listed.has(top) && !tagsOf.has(top)) continue;
    const unit: CacheUnit = { repository, top, manifests: [], digests: new Set(), tags: tagsOf.get(top) ?? [], lastPulled: 0, pinned: false };
    const visit = (d: Digest) => {
      if (unit.digests.has(d)) return;
      unit.digests.add(d);
      unit.manifests.push(d);
      const doc = docs.get(d)!;
      for (const b of doc.blobs) unit.digests.add(b);
      for (const c of doc.children) if (present.has(c)) visit(c);
    };
    visit(top);
    unit.pinned = unit.manifests.some((d) => pinned?.has(d));
    const linkedAt = (await store.repositories.manifestLinkedAt(repository, top))?.getTime() ?? 0;
    unit.lastPulled = linkedAt;
    for (const d of unit.digests) unit.lastPulled = Math.max(unit.lastPulled, lastPulled(access, repository, d));
    for (const d of unit.digests) covered.add(d);
    units.push(unit);
  }
  const loose = (await store.repositories.listBlobs(repository)).filter((d) => !covered.has(d));
  if (loose.length > 0) {
    let newest = 0;
    for (const d of loose) newest = Math.max(newest, lastPulled(access, repository, d), (await blobFileInfo(store, d))?.modTime.getTime() ?? 0);
    units.push({ repository, manifests: [], digests: new Set(loose), tags: [], lastPulled: newest, pinned: false });
  }
  return units;
}

/** Reads every mirrored repository of `upstreams` (registry names, `docker.io`) into units and sizes. */
export async function scanCache(store: Store, upstreams: Iterable<string>): Promise<CacheScan> {
  const prefixes = new Set([...upstreams].map(cachedPrefix));
  const access = await readAccess(store.driver);
  const pins = await pinnedManifests(store, await readPins(store.driver));
  const units: CacheUnit[] = [];
  for await (const name of repositoryNames(store)) {
    if (isMirroredName(name, prefixes)) units.push(...(await repositoryUnits(store, name, access, pins.get(name))));
  }
  const sizes = new Map<Digest, number>();
  for (const unit of units) {
    for (const d of unit.digests) {
      if (sizes.has(d)) continue;
      const info = await blobFileInfo(store, d);
      if (info) sizes.set(d, info.size);
    }
  }
  let bytes = 0;
  for (const size of sizes.values()) bytes += size;
  return { units, sizes, bytes };
}

export interface EvictionOptions {
  /** Registries mirrored (`docker.io`): their cached names are the cache. */
  upstreams: Iterable<string>;
  /** Evict until the cache holds at most this many bytes. */
  maxBytes: number;
  /** Nothing pulled, cached or written within this many ms is evicted or deleted (in-flight fetches, pushes). */
  graceMs: number;
  now?: number;
}

export interface EvictionReport {
  /** Cache bytes before and after. */
  before: number;
  after: number;
  /** Units unlinked, least recently pulled first. */
  evicted: { repository: string; top?: Digest; tags: string[]; lastPulled: number }[];
  /** Blobs deleted from the store (no repository or local image held them any more) and their bytes. */
  deletedBlobs: number;
  deletedBytes: number;
  /** Over the limit even after evicting everything allowed (pinned, recent or shared content remains). */
  stillOver: boolean;
}

/** Removes a unit's tags, manifests and blob links that no remaining unit of its repository holds. */
async function unlinkUnit(store: Store, unit: CacheUnit, remaining: CacheUnit[]): Promise<void> {
  const kept = new Set<Digest>();
  for (const u of remaining) if (u.repository === unit.repository) for (const d of u.digests) kept.add(d);
  const repos = store.repositories;
  for (const tag of unit.tags) await repos.deleteTag(unit.repository, tag);
  // The top first: a client resolving the image sees all of it or nothing of it.
  for (const m of unit.manifests) {
    if (kept.has(m)) continue;
    if (await repos.getManifestLink(unit.repository, m)) await repos.unlinkManifest(unit.repository, m).catch(() => undefined);
  }
  for (const d of unit.digests) if (!kept.has(d)) await repos.unlinkBlob(unit.repository, d);
}

/**
 * Brings the cache under `maxBytes`: unpinned units not pulled within the grace period are unlinked,
 * least recently pulled first, until the distinct bytes under mirrored names fit; then the blobs no
 * repository and no local image holds any more are deleted (except blobs written within the grace
 * period). Content shared with a pushed repository or a local image stays in the store (it no longer
 * counts as cache once no mirrored name holds it).
 */
export async function evictCache(store: Store, options: EvictionOptions): Promise<EvictionReport> {
  const now = options.now ?? Date.now();
  const scan = await scanCache(store, options.upstreams);
  const report: EvictionReport = { before: scan.bytes, after: scan.bytes, evicted: [], deletedBlobs: 0, deletedBytes: 0, stillOver: false };
  if (scan.bytes <= options.maxBytes) return report;
  const holders = new Map<Digest, number>();
  for (const unit of scan.units) for (const d of unit.digests) holders.set(d, (holders.get(d) ?? 0) + 1);
  const candidates = scan.units.filter((u) => !u.pinned && now - u.lastPulled >= options.graceMs).sort((a, b) => a.lastPulled - b.lastPulled);
  let remaining = scan.units;
  const evictedUnits: CacheUnit[] = [];
  const freed: Digest[] = [];
  for (const unit of candidates) {
    if (report.after <= options.maxBytes) break;
    remaining = remaining.filter((u) => u !== unit);
    evictedUnits.push(unit);
    await unlinkUnit(store, unit, remaining);
    report.evicted.push({ repository: unit.repository, ...(unit.top ? { top: unit.top } : {}), tags: unit.tags, lastPulled: unit.lastPulled });
    for (const d of unit.digests) {
      const left = (holders.get(d) ?? 1) - 1;
      holders.set(d, left);
      if (left === 0) {
        report.after -= scan.sizes.get(d) ?? 0;
        freed.push(d);
      }
    }
  }
  report.stillOver = report.after > options.maxBytes;
  const deleted = await deleteUnheld(store, freed, { minAgeMs: options.graceMs, now });
  report.deletedBlobs = deleted.deleted.length;
  report.deletedBytes = deleted.bytes;
  const gone: { repository: string; digest: Digest }[] = [];
  for (const unit of evictedUnits) {
    const kept = new Set<Digest>();
    for (const u of remaining) if (u.repository === unit.repository) for (const d of u.digests) kept.add(d);
    for (const digest of unit.digests) if (!kept.has(digest)) gone.push({ repository: unit.repository, digest });
  }
  await forgetAccess(store.driver, gone);
  return report;
}
