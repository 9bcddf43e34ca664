import Koa from 'koa';
import type { Context, Next, RegistryState } from './context.js';
import type { Logger } from 'pino';
import { accessLog } from './access-log.js';
import { basicAuth, type AuthOptions } from './auth.js';
import { baseRoutes } from './base.js';
import { blobRoutes } from './blobs.js';
import type { MethodTable, RegistryDeps, RouteName } from './context.js';
import { dispatch, recognizeRoute } from './dispatch.js';
import { errorHandler } from './errors.js';
import { health } from './health.js';
import { publicUrl, type PublicUrlOptions } from './public-url.js';
import { manifestRoutes } from './manifests.js';
import { readOnly } from './read-only.js';
import { referrerRoutes } from './referrers.js';
import { catalogRoutes, tagRoutes } from './tags.js';
import { uploadRoutes } from './uploads.js';
import { TOKEN_PATH, tokenAuth } from './token-auth.js';

export interface AppOptions {
  auth?: AuthOptions | undefined;
  readOnly: boolean;
  /** Serve `/metrics` (Prometheus text format). */
  exposeMetrics: boolean;
  /** How absolute URLs (the token realm) are made: a fixed public URL, or trusted proxies' forwarding headers. */
  publicUrl?: PublicUrlOptions | undefined;
}

async function apiVersion(ctx: Context, next: Next): Promise<void> {
  ctx.set('Docker-Distribution-API-Version', 'registry/2.0');
  await next();
}

/** `/healthz`, `/metrics` and the token endpoint sit outside the API: no auth, no read-only gate. */
function operational(deps: RegistryDeps, exposeMetrics: boolean, tokens?: (ctx: Context) => Promise<void>) {
  const healthz = health(deps.registry);
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.path === '/healthz' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return healthz(ctx);
    if (exposeMetrics && ctx.path === '/metrics' && ctx.method === 'GET') return deps.metrics.serve(ctx);
    if (tokens && ctx.path === TOKEN_PATH && ctx.method === 'GET') return tokens(ctx);
    return next();
  };
}

/**
 * The registry as a Koa app, outermost first: access log, metrics, the API version header, the error
 * mapper, health and metrics endpoints, route recognition, read-only gate, auth, then the endpoint.
 */
export function createRegistryApp(deps: RegistryDeps, options: AppOptions, logger: Logger): Koa<RegistryState> {
  const app = new Koa<RegistryState>();
  app.silent = true;
  // Errors after the answer started (a client closing mid-download) are the client's business.
  app.on('error', (e: Error) => logger.debug({ err: e }, 'response stream ended early'));
  const uploads = uploadRoutes(deps);
  const table: Record<RouteName, MethodTable> = {
    base: baseRoutes(),
    catalog: catalogRoutes(deps),
    manifest: manifestRoutes(deps),
    blob: blobRoutes(deps),
    'upload-start': uploads.start,
    upload: uploads.session,
    tags: tagRoutes(deps),
    referrers: referrerRoutes(deps),
  };
  app.use(accessLog(logger));
  app.use(deps.metrics.middleware());
  app.use(apiVersion);
  app.use(errorHandler);
  app.use(publicUrl(options.publicUrl ?? {}));
  // Anonymous reads need docker's token flow (see token-auth.ts); otherwise plain Basic challenges.
  const tokens = options.auth?.anonymousRead ? tokenAuth(options.auth) : undefined;
  app.use(operational(deps, options.exposeMetrics, tokens?.tokenEndpoint));
  app.use(recognizeRoute);
  if (options.readOnly) app.use(readOnly);
  if (tokens) app.use(tokens.middleware);
  else if (options.auth) app.use(basicAuth(options.auth));
  app.use(dispatch(table));
  return app;
}
