import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import type Koa from 'koa';
import pino, { type Logger } from 'pino';
import { Store, warmHashThread } from '../../store/index.js';
import { createRegistryApp } from './app.js';
import type { RegistryDeps, RegistryState } from './context.js';
import { Htpasswd } from './htpasswd.js';
import { createHttpServer, type TlsFiles } from './http-server.js';
import { ManifestCache } from '../repository/index.js';
import { CachedRegistry, LocalRegistry, openScaleout, type Registry, type Scaleout, type ScaleoutOptions } from '../repository/index.js';
import { MirrorMaintenance, MirrorMetrics, MirrorRegistry, type MirrorCacheOptions, type MirrorOptions, type MirrorUpstreamOptions } from '../mirror/index.js';
import { RegistryMetrics } from './metrics.js';
import { startUploadExpiry } from './upload-expiry.js';
import { GcMetrics, startOnlineGc, type OnlineGcOptions } from './gc.js';

export interface RegistryServerOptions {
  /** An open store to serve; or `storage`, a store root to open. */
  store?: Store | undefined;
  storage?: string | undefined;
  /** Listen address; default 127.0.0.1. */
  host?: string | undefined;
  /** Listen port; default 5000, 0 picks a free one. */
  port?: number | undefined;
  /** HTTPS with this certificate and key (PEM files); plain HTTP otherwise. */
  tls?: TlsFiles | undefined;
  /** htpasswd file (bcrypt entries): turns on basic auth. */
  htpasswd?: string | undefined;
  /** With auth: let requests without credentials read content. */
  anonymousRead?: boolean | undefined;
  realm?: string | undefined;
  /** Answer every write with 405 UNSUPPORTED. */
  readOnly?: boolean | undefined;
  /** pino level for access and event logs; default info. 'silent' turns them off. */
  logLevel?: string | undefined;
  /** Where logs go: a file descriptor (default 1, stdout) or a file path. */
  logDestination?: number | string | undefined;
  /** Use this logger instead of making one. */
  logger?: Logger | undefined;
  /** Uploads idle this long are removed; default 24 hours. */
  uploadExpiryMs?: number | undefined;
  /** How often abandoned uploads are looked for; default 10 minutes. */
  uploadPurgeIntervalMs?: number | undefined;
  /** An upload body that sends nothing for this long is cut; the session keeps what arrived. Default 30 s; 0 never cuts. */
  bodyIdleTimeoutMs?: number | undefined;
  /** On close(), how long requests in flight may go on before their connections are cut; default 5 s. */
  shutdownGraceMs?: number | undefined;
  /** Largest manifest accepted; default 4 MiB. */
  maxManifestBytes?: number | undefined;
  /** How long tag and manifest lookups are cached (seconds; 0 disables); default 5. */
  manifestCacheSeconds?: number | undefined;
  /** Serve /metrics; default true. */
  metrics?: boolean | undefined;
  /** Periodic online garbage collection (registry/server/gc.ts); off when absent or intervalMs is 0. */
  gc?: OnlineGcOptions | undefined;
  headersTimeoutMs?: number | undefined;
  keepAliveTimeoutMs?: number | undefined;
  /** Public base URL (`http.host`), e.g. https://registry.example.com: used for the token realm. */
  publicUrl?: string | undefined;
  /** Addresses/CIDRs of TLS-terminating proxies whose X-Forwarded-Proto/Host are honoured. */
  trustedProxies?: string[] | undefined;
  /**
   * Upstream registries to mirror (pull-through cache): `[{ registry: 'docker.io', url: 'https://registry-1.docker.io' }]`.
   * The mirror decorates the local services (registry/mirror); names no upstream claims stay a plain registry.
   */
  mirrors?: MirrorUpstreamOptions[] | undefined;
  /** Mirror behaviour: default upstream, revalidation and upstream timeouts. */
  mirror?: Omit<MirrorOptions, 'upstreams'> | undefined;
  /** The mirror's cache: size limit and eviction grace; counters and access times go to the store. */
  mirrorCache?: MirrorCacheOptions | undefined;
  /**
   * Serve from a bucket shared with other replicas, upload sessions and the tag cache in Redis
   * (registry/repository/scaleout.ts; issue 16). `storage` is then only this replica's local directory.
   */
  scaleout?: Omit<ScaleoutOptions, 'root'> | undefined;
}

export interface RegistryServer {
  /** Starts listening; resolves with the base URL (http://host:port). */
  listen(): Promise<string>;
  /**
   * Stops accepting and closes idle connections; requests in flight get `shutdownGraceMs`, then their
   * connections are cut. Resolves once their handlers have stored what arrived (bounded).
   */
  close(): Promise<void>;
  /** Base URL once listening. */
  readonly url: string;
  /** `host:port` as clients name the registry (e.g. in image references). */
  readonly host: string;
  /** The store served (after listen). */
  readonly store: Store;
  /** The Koa app (after listen), for mounting elsewhere. */
  readonly app: Koa<RegistryState>;
  /** The Node server (after listen). */
  readonly httpServer: http.Server;
}

export const DEFAULT_PORT = 5000;
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

function makeLogger(options: RegistryServerOptions): Logger {
  if (options.logger) return options.logger;
  const level = options.logLevel ?? 'info';
  if (level === 'silent') return pino({ level: 'silent' });
  const destination = pino.destination({ dest: options.logDestination ?? 1, sync: false });
  return pino({ level, base: { service: 'tsbuild-registry' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** The registry server: `await createRegistryServer({ storage }).listen()` serves the store over HTTP. */
export function createRegistryServer(options: RegistryServerOptions): RegistryServer {
  if (!options.store && !options.storage) throw new Error('createRegistryServer needs a store or a storage directory');
  const users = options.htpasswd ? Htpasswd.fromFile(options.htpasswd) : undefined;
  const logger = makeLogger(options);
  let server: http.Server | undefined;
  let store: Store | undefined = options.store;
  let app: Koa<RegistryState> | undefined;
  let cache: ManifestCache | undefined;
  let mirror: MirrorRegistry | undefined;
  let maintenance: MirrorMaintenance | undefined;
  let stopExpiry: (() => void) | undefined;
  let stopGc: (() => Promise<void>) | undefined;
  let scaleout: Scaleout | undefined;
  /** Requests being handled (their handlers' promises), awaited on close. */
  const inFlight = new Set<Promise<void>>();
  let url = '';
  let host = '';

  return {
    get url() {
      return url;
    },
    get host() {
      return host;
    },
    get store() {
      if (!store) throw new Error('the registry server is not listening yet');
      return store;
    },
    get app() {
      if (!app) throw new Error('the registry server is not listening yet');
      return app;
    },
    get httpServer() {
      if (!server) throw new Error('the registry server is not listening');
      return server;
    },

    async listen() {
      if (options.scaleout) {
        scaleout = await openScaleout({ ...options.scaleout, root: options.storage! });
        store = scaleout.store;
      }
      store ??= await Store.open(options.storage!);
      // Uploads write and hash on a thread; one that is still starting would leave the first upload to be hashed again at commit.
      void warmHashThread();
      // Replicas share their tag cache through Redis; a per-process cache would answer stale tags.
      cache = new ManifestCache(scaleout ? 0 : (options.manifestCacheSeconds ?? 5));
      const local: Registry = scaleout ? scaleout.registry(new LocalRegistry(store)) : new LocalRegistry(store);
      const metrics = new RegistryMetrics(local);
      const gcMetrics = new GcMetrics(store, metrics.registry);
      // The manifest cache decorates the local services; the mirror goes around both. Its tags follow the
      // upstream by their own TTL, so no cache in front of it may answer for the upstream.
      let registry: Registry = cache.enabled ? new CachedRegistry(local, cache) : local;
      if (options.mirrors && options.mirrors.length > 0) {
        const mirrorMetrics = new MirrorMetrics([metrics.registry]);
        maintenance = new MirrorMaintenance(
          store,
          mirrorMetrics,
          options.mirrors.map((m) => m.registry),
          options.mirrorCache,
          logger,
        );
        mirror = new MirrorRegistry(registry, store, { ...options.mirror, upstreams: options.mirrors }, mirrorMetrics, maintenance.touch);
        maintenance.start();
        registry = mirror;
      }
      const deps: RegistryDeps = {
        registry,
        metrics,
        logger,
        maxManifestBytes: options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES,
        bodyIdleTimeoutMs: options.bodyIdleTimeoutMs === 0 ? undefined : (options.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS),
      };
      app = createRegistryApp(
        deps,
        {
          readOnly: options.readOnly ?? false,
          exposeMetrics: options.metrics ?? true,
          publicUrl: { host: options.publicUrl, trustedProxies: options.trustedProxies },
          auth: users ? { users, realm: options.realm ?? 'tsbuild registry', anonymousRead: options.anonymousRead ?? false } : undefined,
        },
        logger,
      );
      const handle = app.callback();
      server = createHttpServer(
        (req, res) => {
          const handled = handle(req, res);
          inFlight.add(handled);
          void handled.finally(() => inFlight.delete(handled));
        },
        options.tls,
        {
          headersTimeoutMs: options.headersTimeoutMs ?? 60_000,
          keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 75_000,
        },
      );
      const bindHost = options.host ?? '127.0.0.1';
      await new Promise<void>((resolve, reject) => {
        server!.once('error', (e: NodeJS.ErrnoException) =>
          reject(
            new Error(
              e.code === 'EADDRINUSE'
                ? `cannot listen on ${bindHost}:${options.port ?? DEFAULT_PORT}: the address is in use; pick another with --listen`
                : `cannot listen on ${bindHost}: ${e.message}`,
            ),
          ),
        );
        server!.listen(options.port ?? DEFAULT_PORT, bindHost, () => resolve());
      });
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      host = `${shownHost === '0.0.0.0' || shownHost === '[::]' ? '127.0.0.1' : shownHost}:${address.port}`;
      url = `${options.tls ? 'https' : 'http'}://${host}`;
      stopExpiry = startUploadExpiry(
        deps.registry,
        { expireAfterMs: options.uploadExpiryMs ?? 24 * 3600_000, intervalMs: options.uploadPurgeIntervalMs ?? 10 * 60_000 },
        logger,
      );
      if (options.gc && options.gc.intervalMs > 0 && !options.readOnly)
        stopGc = startOnlineGc(store, { ...options.gc, registryOnly: !!scaleout }, gcMetrics, logger, scaleout?.collected);
      logger.info(
        { url, storage: scaleout ? scaleout.driver.location : store.root, auth: Boolean(users), readOnly: options.readOnly ?? false },
        'registry listening',
      );
      return url;
    },

    async close() {
      stopExpiry?.();
      const gcStopped = stopGc?.();
      cache?.close();
      mirror?.close();
      if (server) {
        const s = server;
        server = undefined;
        const graceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
        await new Promise<void>((resolve) => {
          // Requests in flight get the grace period; connections are closed as soon as they are idle.
          const idle = setInterval(() => s.closeIdleConnections(), 100).unref();
          // Then the rest are cut: an upload cut there stays a resumable session at the bytes received.
          const cut = setTimeout(() => s.closeAllConnections(), graceMs).unref();
          s.close(() => {
            clearInterval(idle);
            clearTimeout(cut);
            resolve();
          });
          s.closeIdleConnections();
        });
        // The cut requests' handlers store what arrived before close() returns (bounded: a handler may
        // be waiting on something that never ends, e.g. an upstream).
        await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => setTimeout(r, 3000).unref())]);
      }
      // After the last request: its counts and touches are written too.
      await maintenance?.close();
      await gcStopped;
      await scaleout?.close();
      logger.flush?.();
    },
  };
}

export { Htpasswd } from './htpasswd.js';
export { RegistryError, ErrorCodes, type ErrorCode } from './errors.js';
export { matchRoute } from './dispatch.js';
// Building blocks for servers that extend the registry (the mirror serves the same routes from upstream).
export { createRegistryApp, type AppOptions } from './app.js';
export type { RegistryDeps, RegistryState, RouteMatch, RouteName, Handler, MethodTable } from './context.js';
export { ManifestCache, type CachedManifest } from '../repository/index.js';
export { RegistryMetrics } from './metrics.js';
export { GcMetrics, startOnlineGc, type OnlineGcOptions } from './gc.js';
export { runRegistryGc, lastGcReport } from './gc-report.js';
export { parseManifest, checkReferences, ACCEPTED_MANIFEST_TYPES, type ParsedManifest } from '../repository/index.js';
