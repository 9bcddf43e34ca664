import type { Readable } from 'node:stream';
import { Authenticator, type CredentialSource } from './auth.js';
import { DockerCredentials } from './credentials.js';
import { DeniedError, HttpStatusError, RegistryClientError, TlsError, UnauthorizedError, isTransient } from './errors.js';
import { endpointsFor, emptySettings, type Endpoint, type RegistrySettings } from './hosts.js';
import { backoffDelay, defaultRetryPolicy, retryAfterMs, sleep, type RetryPolicy } from './retry.js';
import { discard, header, readBody, Transport, type HttpResponse, type TransportOptions } from './transport.js';
import type { ProgressListener } from './progress-events.js';

export interface RegistryClientOptions {
  /** Mirrors and insecure registries (see loadRegistrySettings). */
  settings?: RegistrySettings;
  /** Where credentials come from; default: docker's config.json ($DOCKER_CONFIG). */
  credentials?: CredentialSource;
  transport?: TransportOptions;
  retry?: Partial<RetryPolicy>;
  /** Blobs transferred at the same time. */
  concurrency?: number;
  /** Progress of pulls and pushes. */
  onProgress?: ProgressListener;
}

export interface RegistryRequest {
  method: string;
  /** Path below the endpoint, e.g. `/v2/library/busybox/manifests/latest`, or an absolute URL (upload locations). */
  path: string;
  headers?: Record<string, string>;
  /** A buffer, or a factory so that the body can be sent again on a retry. */
  body?: Buffer | (() => Readable | Promise<Readable>);
  /** Send once: the caller retries at a higher level (uploads need a new session after a failure). */
  noRetry?: boolean;
  /** Token scopes this request needs (`repository:NAME:pull`). */
  scopes: string[];
  /** Statuses handed back to the caller instead of being retried or thrown (404 always is). */
  accept?: number[];
  /** Follow redirects (blob downloads are often redirected to storage). */
  followRedirects?: boolean;
}

interface EndpointState {
  origin: string;
  verifyTls: boolean;
}

/**
 * The registry client: endpoints (mirrors, insecure hosts), auth, retries. The operations are functions
 * that take it (pullImage, pushImage, fetchManifest, headManifest, fetchBlob, openBlob, statBlob), so
 * this file imports none of them.
 */
export class RegistryClient {
  readonly settings: RegistrySettings;
  readonly transport: Transport;
  readonly auth: Authenticator;
  readonly retry: RetryPolicy;
  readonly concurrency: number;
  onProgress: ProgressListener | undefined;
  private readonly origins = new Map<string, Promise<EndpointState>>();

  constructor(options: RegistryClientOptions = {}) {
    this.settings = options.settings ?? emptySettings();
    this.transport = new Transport(options.transport);
    const docker = new DockerCredentials();
    this.auth = new Authenticator(this.transport, options.credentials ?? ((host) => docker.get(host)));
    this.retry = { ...defaultRetryPolicy, ...options.retry };
    this.concurrency = options.concurrency ?? 4;
    this.onProgress = options.onProgress;
  }

  /** Mirrors first (unless `mirrors: false`, as for pushes), then the registry itself. */
  endpoints(registry: string, options: { mirrors?: boolean } = {}): Promise<Endpoint[]> {
    return endpointsFor(this.settings, registry, options);
  }

  /**
   * Finds the endpoint's origin: for insecure hosts HTTPS without verification first, then plain HTTP
   * (as docker does). Also learns the auth challenge from `GET /v2/`.
   */
  private origin(endpoint: Endpoint): Promise<EndpointState> {
    const key = `${endpoint.scheme}|${endpoint.host}|${endpoint.verifyTls}`;
    let state = this.origins.get(key);
    if (!state) {
      state = this.ping(endpoint);
      this.origins.set(key, state);
      // A dead endpoint stays dead for a while, so a pull does not wait for it once per blob.
      state.catch(() => setTimeout(() => this.origins.get(key) === state && this.origins.delete(key), 30_000).unref());
    }
    return state;
  }

  private async ping(endpoint: Endpoint): Promise<EndpointState> {
    const schemes = endpoint.scheme === 'auto' ? (['https', 'http'] as const) : ([endpoint.scheme] as const);
    let lastError: unknown;
    for (const scheme of schemes) {
      const origin = `${scheme}://${endpoint.host}`;
      try {
        const res = await this.transport.request({ method: 'GET', url: new URL(`${origin}/v2/`), verifyTls: endpoint.verifyTls });
        discard(res);
        if (res.status === 401) this.auth.noteChallenge(origin, res.headers['www-authenticate']);
        return { origin, verifyTls: endpoint.verifyTls };
      } catch (e) {
        lastError = e;
        // Only a TLS-level failure means "try plain HTTP"; an unreachable host stays unreachable.
        if (!(e instanceof TlsError) && (e as NodeJS.ErrnoException).code !== 'ECONNRESET') break;
      }
    }
    throw lastError;
  }

  /** Sends a request to an endpoint with auth, retries and backoff. Non-2xx answers become errors unless accepted. */
  async request(endpoint: Endpoint, req: RegistryRequest): Promise<HttpResponse> {
    const state = await this.origin(endpoint);
    let url = new URL(/^https?:\/\//.test(req.path) ? req.path : `${state.origin}${req.path}`);
    let answeredChallenge = this.auth.knowsChallenge(state.origin);
    let refreshedToken = false;
    let redirects = 0;
    for (let attempt = 0; ; ) {
      const sameOrigin = url.origin === state.origin;
      const authorization = sameOrigin ? await this.auth.authorization(state.origin, endpoint.host, req.scopes, refreshedToken && attempt === 0) : undefined;
      const headers = { ...req.headers, ...(authorization ? { authorization } : {}) };
      const body = typeof req.body === 'function' ? await req.body() : req.body;
      let res: HttpResponse;
      try {
        res = await this.transport.request({ method: req.method, url, headers, ...(body ? { body } : {}), verifyTls: sameOrigin ? state.verifyTls : true });
      } catch (e) {
        if (typeof body === 'object' && !Buffer.isBuffer(body)) body.destroy();
        if (isTransient(e) && !req.noRetry && attempt < this.retry.retries) {
          await sleep(backoffDelay(this.retry, attempt++));
          continue;
        }
        throw e;
      }
      const status = res.status;
      if (req.accept?.includes(status)) return res;
      if (status >= 200 && status < 300) return res;
      if (status >= 300 && status < 400 && req.followRedirects && header(res, 'location') && redirects < 5) {
        discard(res);
        url = new URL(header(res, 'location')!, url);
        redirects++;
        continue;
      }
      if (status === 401 && sameOrigin) {
        const text = await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0));
        if (!answeredChallenge && this.auth.noteChallenge(state.origin, res.headers['www-authenticate'])) {
          answeredChallenge = true;
          continue;
        }
        if (!refreshedToken && authorization?.startsWith('Bearer ')) {
          refreshedToken = true; // the cached token may have been revoked early
          continue;
        }
        throw new UnauthorizedError(endpoint.host, `${registryErrorDetail(text) || 'access refused'} at ${endpoint.host}`);
      }
      if (status === 403 && sameOrigin) {
        const text = await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0));
        throw new DeniedError(endpoint.host, registryErrorDetail(text) || `access to ${url.pathname} was denied`);
      }
      // A missing manifest or blob is an answer for reads; for writes it is a failure.
      if (status === 404 && (req.method === 'GET' || req.method === 'HEAD')) return res;
      const text = await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0));
      const error = new HttpStatusError(status, req.method, `${url.origin}${url.pathname}`, registryErrorDetail(text));
      if ((status === 429 || status >= 500) && !req.noRetry && attempt < this.retry.retries) {
        const after = retryAfterMs(res);
        if (after !== undefined && after > this.retry.maxRetryAfterMs)
          throw new RegistryClientError(`${endpoint.host} asked to retry after ${Math.round(after / 1000)}s (HTTP ${status}); try again later`);
        await sleep(after ?? backoffDelay(this.retry, attempt));
        attempt++;
        continue;
      }
      throw error;
    }
  }

  /** Origin (scheme://host) an endpoint resolved to, after its first request. */
  async endpointOrigin(endpoint: Endpoint): Promise<string> {
    return (await this.origin(endpoint)).origin;
  }

  close(): void {
    this.transport.close();
  }
}

/** The `message` of a registry's JSON error body (`{"errors":[{"code","message"}]}`), if any. */
export function registryErrorDetail(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    const first = parsed.errors?.[0];
    if (first) return first.message || first.code?.toLowerCase().replace(/_/g, ' ') || '';
  } catch {
    // not JSON
  }
  return body.toString('utf8').trim().split('\n')[0]!.slice(0, 200);
}
