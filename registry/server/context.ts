import type { Next, ParameterizedContext } from 'koa';
import type { Logger } from 'pino';
import type { Registry } from '../repository/index.js';
import type { RegistryMetrics } from './metrics.js';

/** What the middleware leave on `ctx.state` for later ones (typed through Koa's generics, no casts). */
export interface RegistryState {
  /** The endpoint the request matched (dispatch.ts); read by auth, read-only, metrics and logs. */
  route?: RouteMatch;
  /** The authenticated user (auth.ts, token-auth.ts). */
  user?: string;
  /** Body bytes a write took in, for metrics. */
  bytesIn?: number;
  /** The public scheme://host of this registry (public-url.ts), for absolute URLs. */
  baseUrl?: string;
  /** The cause of a 5xx answer, for the access log. */
  error?: unknown;
}

/** Koa's context with the registry's state. */
export type Context = ParameterizedContext<RegistryState>;
export type { Next };

/** The endpoints of the distribution spec (one name each, used by dispatch, auth, metrics and logs). */
export type RouteName = 'base' | 'catalog' | 'manifest' | 'blob' | 'upload-start' | 'upload' | 'tags' | 'referrers';

export interface RouteMatch {
  route: RouteName;
  /** Repository name, already validated. */
  name: string;
  /** Tag or digest (manifests), digest (blobs, referrers) or upload id. */
  reference: string;
  /**
   * The registry the client means, from containerd's `?ns=` query (`docker.io`, `ghcr.io`): a mirror
   * routes by it; a plain registry ignores it.
   */
  namespace?: string;
}

/** What every handler needs, built once per server. */
export interface RegistryDeps {
  /** The repository services every handler works through (local, cached, mirrored: handlers cannot tell). */
  registry: Registry;
  metrics: RegistryMetrics;
  logger: Logger;
  /** Largest manifest accepted on PUT, in bytes. */
  maxManifestBytes: number;
  /** An upload body that sends nothing for this many milliseconds is cut (the session keeps what arrived); unbounded when absent. */
  bodyIdleTimeoutMs?: number | undefined;
}

export type Handler = (ctx: Context, match: RouteMatch) => Promise<void>;
export type MethodTable = Partial<Record<'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE', Handler>>;

/** The route a request matched (set by dispatch; read by auth, read-only, metrics and logs). */
export function routeOf(ctx: Context): RouteMatch | undefined {
  return ctx.state.route;
}

/** A status with an empty body (202/201/204 answers carry their meaning in headers). */
export function answerEmpty(ctx: Context, status: number): void {
  ctx.status = status;
  ctx.body = status === 204 ? null : '';
  ctx.status = status;
  ctx.remove('Content-Type');
}
