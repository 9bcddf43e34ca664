import { LRUCache } from 'lru-cache';
import type { Digest } from '../../oci/index.js';
import type { Store } from '../../store/index.js';
import type { Listing, Page, Registry, Repository } from '../repository/index.js';
import type { BlobFetch } from './blob-fetch.js';
import type { MirrorMetrics } from './metrics.js';
import { mirroredRepository, type MirrorState } from './mirrored-repository.js';
import { routeName } from './routing.js';
import { Upstream, type MirrorUpstreamOptions } from './upstream.js';

export interface MirrorOptions {
  upstreams: MirrorUpstreamOptions[];
  /**
   * The upstream for names without a registry prefix or `?ns=` (docker's `registry-mirrors` send Docker
   * Hub names that way). Default: docker.io when it is mirrored; `null` for none.
   */
  defaultUpstream?: string | null;
  /** How long a tag request waits for the upstream before a cached digest answers; default 500 ms (a cached tag answers well within 2 s behind a stalled upstream). */
  revalidateTimeoutMs?: number;
  /** How long a request for content not cached waits for the upstream; default 10 s. */
  upstreamTimeoutMs?: number;
}

/** How long "is this a repository pushed here?" is remembered for default-upstream names. */
const LOCAL_NAME_TTL_MS = 2000;

/**
 * The mirror: a decorator of the registry's services (distribution's registry/proxy shape). Names that
 * route to an upstream (routing.ts) get mirrored repositories over the local services of the name they are
 * cached under; every other name is the local registry's, so one server is a private registry and a
 * mirror at once. For default-upstream names (no prefix), a repository pushed here wins over the upstream.
 */
export class MirrorRegistry implements Registry {
  readonly upstreams = new Map<string, Upstream>();
  private readonly defaultUpstream: string | undefined;
  private readonly state: MirrorState;
  private readonly localNames = new Map<string, { local: boolean; at: number }>();

  constructor(
    private readonly local: Registry,
    store: Store,
    options: MirrorOptions,
    readonly metrics: MirrorMetrics,
    touch: (cached: string, digest: Digest) => void = () => undefined,
  ) {
    const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 10_000;
    for (const u of options.upstreams) {
      if (this.upstreams.has(u.registry)) throw new Error(`mirror: ${u.registry} is configured twice`);
      this.upstreams.set(u.registry, new Upstream(u, { connectMs: Math.min(5000, upstreamTimeoutMs), idleMs: Math.max(30_000, upstreamTimeoutMs) }));
    }
    const wanted = options.defaultUpstream === undefined ? 'docker.io' : options.defaultUpstream;
    if (wanted !== null && options.defaultUpstream !== undefined && !this.upstreams.has(wanted)) {
      throw new Error(`mirror: the default upstream ${wanted} is not among the mirrored registries (${[...this.upstreams.keys()].join(', ')})`);
    }
    this.defaultUpstream = wanted !== null && this.upstreams.has(wanted) ? wanted : undefined;
    this.state = {
      store,
      metrics,
      fetches: new Map<Digest, BlobFetch>(),
      flights: new Map(),
      validated: new LRUCache<string, { digest: Digest; at: number }>({ max: 100_000 }),
      revalidateTimeoutMs: options.revalidateTimeoutMs ?? 500,
      troubled: new Map(),
      upstreamTimeoutMs,
      describe: () =>
        [...this.upstreams.keys()].map((r) => `${r}/…`).join(', ') +
        (this.defaultUpstream ? `, and unprefixed names of ${this.defaultUpstream} it caches` : ''),
      touch,
    };
  }

  get location(): string {
    return this.local.location;
  }

  repository(name: string, namespace?: string): Repository {
    const route = routeName(name, namespace, new Set(this.upstreams.keys()), this.defaultUpstream);
    if (route.kind === 'local') return this.local.repository(name);
    const upstream = this.upstreams.get(route.upstream)!;
    const mirrored = mirroredRepository(this.state, upstream, name, route.remote, route.cached, this.local.repository(route.cached));
    if (route.explicit) return mirrored;
    return this.eitherRepository(name, route.cached, mirrored);
  }

  /** Whether `name` is a repository pushed here (remembered briefly: it is asked on every request). */
  private async isLocal(name: string): Promise<boolean> {
    const known = this.localNames.get(name);
    if (known && Date.now() - known.at < LOCAL_NAME_TTL_MS) return known.local;
    const local = await this.local
      .repository(name)
      .tags.list({ n: 1 })
      .then(
        () => true,
        () => false,
      );
    this.localNames.set(name, { local, at: Date.now() });
    return local;
  }

  /**
   * A default-upstream name: the repository pushed here when there is one, else the mirror. A push creates
   * a local repository, unless the mirror already caches that name from the upstream (then it is the
   * upstream's, and refused).
   */
  private eitherRepository(name: string, cached: string, mirrored: Repository): Repository {
    const local = this.local.repository(name);
    const read = async () => ((await this.isLocal(name)) ? local : mirrored);
    const isCached = () =>
      this.local
        .repository(cached)
        .tags.list({ n: 1 })
        .then(
          () => true,
          () => false,
        );
    // A blob HEAD is how a pushing client asks "do you have this layer here?": for a name that is neither
    // pushed here nor cached, the answer is the local repository's (a mirrored answer would link the blob
    // under the cached name and turn the push into one into the mirror).
    const stat = async () => ((await this.isLocal(name)) || !(await isCached()) ? local : mirrored);
    const write = async () => {
      if (await this.isLocal(name)) return local;
      if (await isCached()) return mirrored; // refuses with the mirror's message
      this.localNames.set(name, { local: true, at: Date.now() });
      return local;
    };
    return {
      name,
      blobs: {
        stat: async (d) => (await stat()).blobs.stat(d),
        get: async (d) => (await read()).blobs.get(d),
        delete: async (d) => (await write()).blobs.delete(d),
        mount: async (d, from) => (await write()).blobs.mount(d, from),
        createUpload: async () => (await write()).blobs.createUpload(),
        resumeUpload: async (id) => (await write()).blobs.resumeUpload(id),
      },
      manifests: {
        get: async (d) => (await read()).manifests.get(d),
        put: async (bytes, type, options) => (await write()).manifests.put(bytes, type, options),
        delete: async (d) => (await write()).manifests.delete(d),
      },
      tags: {
        resolve: async (t) => (await read()).tags.resolve(t),
        list: async (page) => (await read()).tags.list(page),
        delete: async (t) => (await write()).tags.delete(t),
      },
      referrers: { list: async (s) => (await read()).referrers.list(s) },
    };
  }

  catalog(page: Page): Promise<Listing> {
    return this.local.catalog(page);
  }

  checkHealth(): Promise<string | undefined> {
    return this.local.checkHealth();
  }

  uploadSessionCount(): Promise<number> {
    return this.local.uploadSessionCount();
  }

  expireUploads(maxIdleMs: number): Promise<string[]> {
    return this.local.expireUploads(maxIdleMs);
  }

  close(): void {
    for (const u of this.upstreams.values()) u.close();
  }
}
