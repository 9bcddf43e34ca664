import { Registry as PromRegistry } from 'prom-client';
import {
  defaultPlatform,
  familiarReference,
  formatPlatform,
  formatReference,
  isIndexMediaType,
  isManifestMediaType,
  mapLimit,
  parseImageDocument,
  type Descriptor,
  type Digest,
  type Platform,
  type Reference,
} from '../../oci/index.js';
import { selectPlatform, type Store } from '../../store/index.js';
import { LocalRegistry, type Repository } from '../repository/index.js';
import { AccessLog } from './access.js';
import { MirrorMetrics } from './metrics.js';
import { MirrorRegistry } from './mirror-registry.js';
import { cachedName } from './routing.js';
import { StatsRecorder } from './stats.js';
import type { MirrorUpstreamOptions } from './upstream.js';

/** One image to sync: a normalized reference (tag or digest) and, optionally, its own platform. */
export interface SyncTarget {
  reference: Reference;
  /** Overrides the sync's platform for this image (a Dockerfile's `FROM --platform=`). */
  platform?: Platform;
}

export interface SyncImageOptions {
  /** The platform taken from an index; default this machine's (linux/amd64 here). */
  platform?: Platform;
  /** Every manifest an index lists (all platforms, attestations too), instead of one. */
  allPlatforms?: boolean;
  /** Blobs fetched at once per image; default 3. */
  concurrency?: number;
}

export interface SyncResult {
  /** As normalized: `docker.io/library/busybox:latest`. */
  reference: string;
  /** Where it is cached: `docker.io/library/busybox`. */
  repository: string;
  /** What the tag pointed at (or the digest asked for). */
  digest: Digest;
  /** Platforms taken from an index (empty for a single-platform image). */
  platforms: string[];
  manifests: number;
  blobs: number;
  /** Blob bytes fetched from the upstream, and bytes that were in the store already. */
  fetchedBytes: number;
  presentBytes: number;
  /** The upstream did not answer the tag's revalidation: the digest cached before was kept. */
  stale: boolean;
}

function message(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).split('\n')[0]!;
}

/**
 * Fills the mirror's cache ahead of pulls (`tsbuild mirror sync`), through the same MirrorRegistry
 * services a pull goes through: the tag is resolved at the upstream (`tags.resolve`), manifests fetched
 * with `manifests.get`, blobs with `blobs.get(...).open()` drained like a client's download. So the
 * content lands exactly where a pull would put it: under the cached name, the tag set to the upstream's
 * digest, every blob committed only once its digest verified. Safe beside a registry serving the same
 * store: every write is an atomic file replace or rename, and a blob that disappears (a concurrent
 * eviction) after being linked is fetched again.
 *
 * The session's counters go to mirror/stats.json and its touches to mirror/access.json on `close`.
 */
export class MirrorSync {
  readonly mirror: MirrorRegistry;
  readonly metrics: MirrorMetrics;
  private readonly access: AccessLog;
  private readonly stats: StatsRecorder;

  constructor(
    private readonly store: Store,
    upstreams: MirrorUpstreamOptions[],
    options: { timeoutMs?: number } = {},
  ) {
    const timeoutMs = options.timeoutMs ?? 30_000;
    this.metrics = new MirrorMetrics([new PromRegistry()]);
    this.access = new AccessLog(store);
    this.stats = new StatsRecorder(store.driver, this.metrics);
    // A sync waits for the upstream's answer on tags (a pull answers from the cache after 1 s).
    this.mirror = new MirrorRegistry(
      new LocalRegistry(store),
      store,
      { upstreams, defaultUpstream: null, revalidateTimeoutMs: timeoutMs, upstreamTimeoutMs: timeoutMs },
      this.metrics,
      (cached, digest) => this.access.touch(cached, digest),
    );
  }

  /** Syncs one image; throws one-line errors naming the image and the upstream. */
  async sync(target: SyncTarget, options: SyncImageOptions = {}): Promise<SyncResult> {
    const ref = target.reference;
    const name = familiarReference(ref);
    const upstream = this.mirror.upstreams.get(ref.registry);
    if (!upstream) {
      const known = [...this.mirror.upstreams.keys()].join(', ') || 'none';
      throw new Error(
        `${name}: ${ref.registry} is not mirrored (mirrored: ${known}); add --mirror ${ref.registry}=URL or a mirrors: entry in the registry config`,
      );
    }
    const repo = this.mirror.repository(ref.repository, ref.registry);
    const repository = cachedName(ref.registry, ref.repository);
    const result: SyncResult = {
      reference: formatReference(ref),
      repository,
      digest: ref.digest as Digest,
      platforms: [],
      manifests: 0,
      blobs: 0,
      fetchedBytes: 0,
      presentBytes: 0,
      stale: false,
    };
    if (!ref.digest) {
      const staleBefore = this.metrics.totals.get(ref.registry)?.stale ?? 0;
      let digest: Digest | undefined;
      try {
        digest = await repo.tags.resolve(ref.tag ?? 'latest');
      } catch (e) {
        throw new Error(`${name}: ${message(e)}`);
      }
      if (!digest) throw new Error(`${name}: the upstream ${upstream.url} has no such image (${ref.registry}/${ref.repository}:${ref.tag ?? 'latest'})`);
      result.digest = digest;
      result.stale = (this.metrics.totals.get(ref.registry)?.stale ?? 0) > staleBefore;
    }
    const platform = target.platform ?? options.platform ?? defaultPlatform();
    const visit = async (digest: Digest, mediaType?: string): Promise<void> => {
      let stored;
      try {
        stored = await repo.manifests.get(digest);
      } catch (e) {
        throw new Error(`${name}: ${message(e)}`);
      }
      if (!stored) throw new Error(`${name}: the upstream ${upstream.url} does not have manifest ${digest}`);
      result.manifests++;
      const doc = parseImageDocument(stored.bytes, { mediaType: mediaType ?? stored.mediaType });
      if (doc.kind === 'index') {
        let chosen: Descriptor[];
        if (options.allPlatforms) chosen = doc.index.manifests.filter((m) => isManifestMediaType(m.mediaType) || isIndexMediaType(m.mediaType));
        else {
          try {
            chosen = [selectPlatform(doc.index, platform)];
          } catch (e) {
            throw new Error(`${name}: ${message(e)}`);
          }
        }
        for (const m of chosen) {
          if (m.platform) result.platforms.push(formatPlatform(m.platform));
          await visit(m.digest, m.mediaType);
        }
        return;
      }
      // Non-distributable layers (with `urls`) are not served by registries: nothing to fetch.
      const blobs = [doc.manifest.config, ...doc.manifest.layers].filter((d) => !d.urls?.length);
      await mapLimit(blobs, options.concurrency ?? 3, async (d) => {
        const taken = await this.syncBlob(repo, repository, d.digest, name);
        result.blobs++;
        if (taken.fetched) result.fetchedBytes += taken.size;
        else result.presentBytes += taken.size;
      });
    };
    await visit(result.digest);
    return result;
  }

  /** Makes one blob cached under `repository`: linked when the store has it, else fetched through the mirror. */
  private async syncBlob(repo: Repository, repository: string, digest: Digest, name: string): Promise<{ fetched: boolean; size: number }> {
    for (let attempt = 0; ; attempt++) {
      let fetched = false;
      let size: number;
      const present = await this.store.blobs.stat(digest);
      try {
        if (present) {
          // Links it under the cached name, as a pull of a shared layer does; no bytes move.
          size = (await repo.blobs.stat(digest))?.size ?? present.size;
        } else {
          const content = await repo.blobs.get(digest);
          let received = 0;
          for await (const chunk of await content.open()) received += (chunk as Buffer).length;
          if (received !== content.size) throw new Error(`the transfer of blob ${digest} stopped at ${received} of ${content.size} bytes`);
          size = content.size;
          fetched = true;
        }
      } catch (e) {
        throw new Error(`${name}: blob ${digest}: ${message(e)}`);
      }
      // Committed and linked? (A registry evicting on the same store may have deleted it meanwhile.)
      if ((await this.store.blobs.has(digest)) && (await this.store.repositories.hasBlob(repository, digest))) return { fetched, size };
      if (attempt >= 1) throw new Error(`${name}: blob ${digest} is not in the store after it was fetched (is something deleting it?)`);
    }
  }

  /** Writes the session's counters and access times; closes upstream connections. */
  async close(): Promise<void> {
    this.mirror.close();
    await Promise.allSettled([this.access.close(), this.stats.close()]);
  }
}
