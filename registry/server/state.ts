import type { Next, ParameterizedContext } from 'koa';

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
