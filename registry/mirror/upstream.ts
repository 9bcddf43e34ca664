import type { Readable } from 'node:stream';
import type { Digest } from '../../oci/index.js';
import {
  DockerCredentials,
  NotFoundError,
  RegistryClient,
  fetchManifest,
  headManifest,
  openBlob,
  statBlob,
  type Credentials,
  type Endpoint,
} from '../client/index.js';

/** One upstream registry the mirror caches, as configured (`--mirror docker.io=URL`, `mirrors:` in YAML). */
export interface MirrorUpstreamOptions {
  /** The registry it stands in for, as image references name it: `docker.io`, `ghcr.io`, `quay.io`. */
  registry: string;
  /** Where to reach it: `https://registry-1.docker.io`, `http://127.0.0.1:5001`. */
  url: string;
  /** Credentials for the upstream; default: docker's config.json entry for the URL's host (or the registry). */
  username?: string;
  password?: string;
  /** Plain HTTP or TLS without verification. */
  insecure?: boolean;
  /** How long a tag's digest is served without asking the upstream again (ms); default 5 minutes. */
  tagTtlMs?: number;
}

export const DEFAULT_TAG_TTL_MS = 5 * 60_000;

/**
 * The registry client's view of one upstream: a single endpoint (no mirrors of the mirror), credentials
 * from the configuration or docker's config.json, few retries (a client is waiting, and the cache answers
 * when the upstream cannot), and a connect timeout short enough that a dead upstream fails in seconds.
 */
export class Upstream {
  readonly registry: string;
  readonly tagTtlMs: number;
  readonly endpoint: Endpoint;
  private readonly client: RegistryClient;

  constructor(
    readonly options: MirrorUpstreamOptions,
    timeouts: { connectMs: number; idleMs: number },
  ) {
    this.registry = options.registry;
    this.tagTtlMs = options.tagTtlMs ?? DEFAULT_TAG_TTL_MS;
    const url = new URL(options.url);
    const secure = url.protocol === 'https:';
    this.endpoint = {
      host: url.host,
      scheme: secure ? 'https' : 'http',
      verifyTls: secure && options.insecure !== true,
      pathPrefix: url.pathname.replace(/^\/+|\/+$/g, '').replace(/^v2\/?/, ''),
      mirror: false,
      registry: options.registry,
    };
    const docker = new DockerCredentials();
    const fixed: Credentials | undefined = options.username !== undefined ? { username: options.username, password: options.password ?? '' } : undefined;
    this.client = new RegistryClient({
      credentials: async (host) => fixed ?? (await docker.get(host)) ?? (await docker.get(options.registry)),
      transport: { connectTimeoutMs: timeouts.connectMs, idleTimeoutMs: timeouts.idleMs, userAgent: 'tsbuild-mirror' },
      retry: { retries: 1, baseDelayMs: 100, maxRetryAfterMs: 5_000 },
    });
  }

  /** The base URL, for messages. */
  get url(): string {
    return this.options.url;
  }

  private ref(repository: string, reference?: { tag?: string; digest?: Digest }) {
    return { registry: this.registry, repository, ...reference } as Parameters<typeof fetchManifest>[1];
  }

  /** What a tag points at, by HEAD (Docker Hub counts GETs, not HEADs, against pull limits). */
  async headTag(repository: string, tag: string): Promise<Digest> {
    const head = await headManifest(this.client, this.ref(repository, { tag }), [this.endpoint]);
    return head.digest;
  }

  /** A manifest's bytes by digest, verified against it by the client. */
  async manifest(repository: string, digest: Digest): Promise<{ bytes: Buffer; mediaType: string }> {
    const fetched = await fetchManifest(this.client, this.ref(repository, { digest }), [this.endpoint]);
    return { bytes: fetched.bytes, mediaType: fetched.mediaType };
  }

  /** A blob's size when the upstream has it in `repository`; undefined on 404. */
  async blobSize(repository: string, digest: Digest): Promise<number | undefined> {
    return statBlob(this.client, this.endpoint, repository, digest);
  }

  /** The blob's bytes from `offset` on (unverified: the caller hashes them). Throws NotFoundError on 404. */
  async openBlob(repository: string, digest: Digest, offset: number): Promise<{ stream: Readable; offset: number; size?: number }> {
    return openBlob(this.client, this.ref(repository), digest, { offset, endpoints: [this.endpoint] });
  }

  close(): void {
    this.client.close();
  }
}

/** Whether an upstream failure means "it does not have this" (an answer), not "it could not answer". */
export function isNotFound(e: unknown): boolean {
  return e instanceof NotFoundError;
}
