import type { Context, Next } from './context.js';
import { isValidRepositoryName } from '../../oci/index.js';
import type { MethodTable, RouteMatch, RouteName } from './context.js';
import { RegistryError } from './errors.js';

/**
 * Repository names hold slashes, so routes are recognized by their tail; the greedy name group makes
 * `/v2/a/manifests/manifests/x` the repository `a/manifests`. Paths are matched undecoded: a name with
 * `%`, `..`, upper case or an empty component fails the spec's grammar and never reaches the store.
 */
const patterns: [RegExp, RouteName][] = [
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, 'manifest'],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, 'upload-start'],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, 'upload'],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, 'blob'],
  [/^\/v2\/(.+)\/tags\/list$/, 'tags'],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, 'referrers'],
];

/** Which endpoint a path names; undefined for paths outside the API. Throws NAME_INVALID for a bad name. */
export function matchRoute(path: string): RouteMatch | undefined {
  if (path === '/v2/' || path === '/v2') return { route: 'base', name: '', reference: '' };
  if (path === '/v2/_catalog') return { route: 'catalog', name: '', reference: '' };
  if (!path.startsWith('/v2/')) return undefined;
  for (const [re, route] of patterns) {
    const m = re.exec(path);
    if (!m) continue;
    const name = m[1]!;
    if (!isValidRepositoryName(name)) {
      throw new RegistryError('NAME_INVALID', 'invalid repository name', { name: name.slice(0, 300) });
    }
    return { route, name, reference: m[2] ?? '' };
  }
  return undefined;
}

/** Records the matched route on the context (so auth, read-only and metrics can see it), then runs later middleware. */
export async function recognizeRoute(ctx: Context, next: Next): Promise<void> {
  const match = matchRoute(ctx.path);
  if (!match) throw new RegistryError('UNSUPPORTED', `no registry endpoint at ${ctx.path.slice(0, 200)}`, undefined, 404);
  const ns = ctx.query.ns;
  if (typeof ns === 'string' && ns !== '') match.namespace = ns.toLowerCase();
  ctx.state.route = match;
  await next();
}

/** Calls the handler for the matched route and method; 405 with Allow for other methods. */
export function dispatch(table: Record<RouteName, MethodTable>) {
  return async function dispatchRoute(ctx: Context): Promise<void> {
    const match = ctx.state.route;
    // recognizeRoute runs first and answers paths outside the API itself.
    if (!match) throw new RegistryError('UNSUPPORTED', `no registry endpoint at ${ctx.path.slice(0, 200)}`, undefined, 404);
    const methods = table[match.route];
    const handler = methods[ctx.method as keyof MethodTable];
    if (!handler) {
      throw new RegistryError('UNSUPPORTED', `${ctx.method} is not supported on this endpoint`, undefined, 405, { Allow: Object.keys(methods).join(', ') });
    }
    await handler(ctx, match);
  };
}
