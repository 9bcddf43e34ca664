import type { LRUCache } from 'lru-cache';
import type { Digest } from '../../oci/index.js';
import type { Store } from '../../store/index.js';
import {
  parseManifest,
  RegistryError,
  type BlobContent,
  type BlobService,
  type ManifestService,
  type ReferrerService,
  type Repository,
  type StoredManifest,
  type TagService,
} from '../repository/index.js';
import { BlobFetch } from './blob-fetch.js';
import type { MirrorMetrics } from './metrics.js';
import { isNotFound, type Upstream } from './upstream.js';

/** What every mirrored repository of one server shares: single-flight maps, tag freshness, metrics. */
export interface MirrorState {
  store: Store;
  metrics: MirrorMetrics;
  /** Blob fetches under way, by digest (one per blob, whichever repository asked first). */
  fetches: Map<Digest, BlobFetch>;
  /** Manifest fetches by digest and tag revalidations by `cached:tag`, under way. */
  flights: Map<string, Promise<unknown>>;
  /**
   * What each `cached:tag` pointed at when its upstream last confirmed it, and when (ms since the epoch):
   * the hot tag → digest entries; the store's tags are the truth across restarts.
   */
  validated: LRUCache<string, { digest: Digest; at: number }>;
  /** How long a tag request waits for its upstream before the cached digest answers. */
  revalidateTimeoutMs: number;
  /**
   * Upstreams whose last tag revalidation failed or missed its deadline, and when: while one is in
   * trouble, cached tags answer at once (the revalidation still goes on in the background, and clears it).
   */
  troubled: Map<string, number>;
  /** How long a request for content not cached waits for the upstream. */
  upstreamTimeoutMs: number;
  /** Every mirrored registry, for messages. */
  describe(): string;
  /** Notes that content was served or cached (for least-recently-pulled eviction). */
  touch(cached: string, digest: Digest): void;
}

/** How long an upstream that failed a revalidation is not waited for (it is still asked, in the background). */
const TROUBLE_MS = 30_000;

/** Runs `work` once per key at a time: callers arriving while it runs share its promise. */
function singleFlight<T>(flights: Map<string, Promise<unknown>>, key: string, work: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
  const running = flights.get(key) as Promise<T> | undefined;
  if (running) return { promise: running, joined: true };
  const promise = work().finally(() => flights.delete(key));
  flights.set(key, promise);
  return { promise, joined: false };
}

/** Resolves with `promise`, or with `fallback()` once `ms` passed (the promise goes on in the background). */
function withDeadline<T>(promise: Promise<T>, ms: number, onLate: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onLate()), ms);
    timer.unref();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).slice(0, 300);
}

/**
 * One upstream repository as this registry serves it (distribution's registry/proxy, as a decorator of the
 * local services of the name it is cached under). Content in the store never touches the upstream; a miss
 * goes upstream once however many clients ask, and is committed only when its digest verifies. Tags are
 * revalidated with a HEAD once older than the upstream's TTL; when the upstream fails or is slow, the
 * cached digest answers (stale-if-error, stale-while-revalidate). Writes are refused: the upstream owns
 * these names.
 */
export function mirroredRepository(state: MirrorState, upstream: Upstream, name: string, remote: string, cached: string, local: Repository): Repository {
  const { store, metrics } = state;
  const up = upstream.registry;
  const denied = () =>
    new RegistryError(
      'DENIED',
      `${name} is mirrored from ${upstream.url} (${up}/${remote}); the mirror is read-only there. Push to a repository outside the mirrored namespaces (${state.describe()})`,
      { name },
      403,
    );
  const unavailable = (what: string, e: unknown) => {
    metrics.error(up);
    return new RegistryError('UNKNOWN', `${what} is not cached here and upstream ${upstream.url} failed: ${message(e)}`, { upstream: upstream.url }, 502);
  };

  /** The blob as the cache serves it, or undefined when it is not linked here (one stat, on every warm GET). */
  const cachedBlob = (digest: Digest): Promise<BlobContent | undefined> =>
    local.blobs.get(digest).catch((e) => {
      if (e instanceof RegistryError && e.code === 'BLOB_UNKNOWN') return undefined;
      throw e;
    });

  const blobs: BlobService = {
    async stat(digest) {
      const linked = await local.blobs.stat(digest);
      if (linked) return linked;
      const stored = await store.blobs.stat(digest);
      if (stored) {
        // Cached for another repository of the upstream (a shared base layer): content-addressed, so link it.
        await store.repositories.linkBlob(cached, digest);
        return stored;
      }
      const fetching = state.fetches.get(digest);
      if (fetching?.size !== undefined) return { digest, size: fetching.size };
      let size: number | undefined;
      try {
        size = await withDeadline(
          upstream.blobSize(remote, digest),
          state.upstreamTimeoutMs,
          () => new Error(`no answer within ${state.upstreamTimeoutMs} ms`),
        );
      } catch (e) {
        throw unavailable(`blob ${digest}`, e);
      }
      return size === undefined ? undefined : { digest, size };
    },

    async get(digest): Promise<BlobContent> {
      let content = await cachedBlob(digest);
      if (!content && (await store.blobs.has(digest))) {
        // Cached for another repository of the upstream (a shared base layer): content-addressed, so link it.
        await store.repositories.linkBlob(cached, digest);
        content = await cachedBlob(digest);
      }
      if (content) {
        metrics.count(up, 'blob', 'hit');
        state.touch(cached, digest);
        metrics.servedFromCache(up, content.size);
        return content;
      }
      let fetch = state.fetches.get(digest);
      if (fetch) metrics.count(up, 'blob', 'coalesced');
      else {
        metrics.count(up, 'blob', 'miss');
        fetch = new BlobFetch(store, upstream, remote, digest, cached, { onBytes: (n) => metrics.bytes(up, n), onError: () => metrics.error(up) });
        const started = fetch;
        state.fetches.set(digest, started);
        started.done
          .then(
            () => state.touch(cached, digest),
            () => undefined,
          )
          .finally(() => state.fetches.get(digest) === started && state.fetches.delete(digest));
      }
      // A fetch started through another repository links the blob there; link it here too.
      fetch.done.then(() => store.repositories.linkBlob(cached, digest)).catch(() => undefined);
      let size: number | undefined;
      try {
        size = await withDeadline(fetch.ready, state.upstreamTimeoutMs, () => new Error(`no answer within ${state.upstreamTimeoutMs} ms`));
      } catch (e) {
        if (isNotFound(e))
          throw new RegistryError('BLOB_UNKNOWN', `blob unknown to registry (upstream ${upstream.url} does not have it in ${remote})`, { digest });
        throw unavailable(`blob ${digest}`, e);
      }
      if (size === undefined) {
        // No length from the upstream: the client gets the blob once it is complete and verified.
        await fetch.done;
        return local.blobs.get(digest);
      }
      const running = fetch;
      return { digest, size, open: async (range) => running.open(range) };
    },

    delete: async () => {
      throw denied();
    },
    mount: async () => false,
    createUpload: async () => {
      throw denied();
    },
    resumeUpload: async () => {
      throw denied();
    },
  };

  /** Fetches a manifest by digest into the store (verified by the client, parsed as a push would be). */
  async function fetchManifest(digest: Digest): Promise<StoredManifest | undefined> {
    let fetched: { bytes: Buffer; mediaType: string };
    try {
      fetched = await withDeadline(
        upstream.manifest(remote, digest),
        state.upstreamTimeoutMs,
        () => new Error(`no answer within ${state.upstreamTimeoutMs} ms`),
      );
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw unavailable(`manifest ${digest} of ${up}/${remote}`, e);
    }
    const parsed = parseManifest(fetched.bytes, fetched.mediaType);
    await store.blobs.put(fetched.bytes, { digest });
    await store.repositories.linkManifest(cached, { digest, mediaType: parsed.mediaType, size: fetched.bytes.length });
    return { digest, mediaType: parsed.mediaType, bytes: fetched.bytes };
  }

  const manifests: ManifestService = {
    async get(digest) {
      const hit = await local.manifests.get(digest);
      if (hit) {
        metrics.count(up, 'manifest', 'hit');
        state.touch(cached, digest);
        return hit;
      }
      const { promise, joined } = singleFlight(state.flights, `m ${up} ${digest}`, () => fetchManifest(digest));
      metrics.count(up, 'manifest', joined ? 'coalesced' : 'miss');
      const found = await promise;
      if (found) state.touch(cached, digest);
      return found;
    },
    put: async () => {
      throw denied();
    },
    delete: async () => {
      throw denied();
    },
  };

  /** Asks the upstream what the tag points at now and records it; undefined when the upstream has no such tag. */
  async function revalidate(tag: string): Promise<Digest | undefined> {
    let digest: Digest;
    try {
      digest = await upstream.headTag(remote, tag);
    } catch (e) {
      if (isNotFound(e)) {
        state.troubled.delete(up);
        return undefined;
      }
      metrics.error(up);
      state.troubled.set(up, Date.now());
      throw e;
    }
    state.troubled.delete(up);
    await store.repositories.setTag(cached, tag, digest);
    state.validated.set(`${cached}:${tag}`, { digest, at: Date.now() });
    return digest;
  }

  const tags: TagService = {
    async resolve(tag) {
      const key = `${cached}:${tag}`;
      const checked = state.validated.get(key);
      if (checked !== undefined && Date.now() - checked.at < upstream.tagTtlMs) {
        metrics.count(up, 'tag', 'hit');
        return checked.digest;
      }
      // The store's tag (another process or an earlier run may have set it): read past any cache.
      const known = await store.repositories.resolveTag(cached, tag);
      const { promise } = singleFlight(state.flights, `t ${key}`, () => revalidate(tag));
      if (!known) {
        metrics.count(up, 'tag', 'miss');
        try {
          return await withDeadline(promise, state.upstreamTimeoutMs, () => new Error(`no answer within ${state.upstreamTimeoutMs} ms`));
        } catch (e) {
          throw new RegistryError(
            'MANIFEST_UNKNOWN',
            `${up}/${remote}:${tag} is not cached here and upstream ${upstream.url} failed: ${message(e)}`,
            { upstream: upstream.url },
            404,
          );
        }
      }
      const troubledAt = state.troubled.get(up);
      if (troubledAt !== undefined && Date.now() - troubledAt < TROUBLE_MS) {
        promise.catch(() => undefined);
        metrics.count(up, 'tag', 'stale');
        return known;
      }
      try {
        const fresh = await withDeadline(promise, state.revalidateTimeoutMs, () => {
          state.troubled.set(up, Date.now());
          return new Error('slow upstream');
        });
        metrics.count(up, 'tag', 'hit');
        // Gone upstream: say so (the cached content stays for pulls by digest).
        return fresh;
      } catch {
        // stale-if-error / stale-while-revalidate: the revalidation goes on in the background.
        metrics.count(up, 'tag', 'stale');
        return known;
      }
    },
    list: (page) => local.tags.list(page),
    delete: async () => {
      throw denied();
    },
  };

  const referrers: ReferrerService = { list: (subject) => local.referrers.list(subject) };
  return { name, blobs, manifests, tags, referrers };
}
