import type { MethodTable, RegistryDeps } from './context.js';
import { nextLink, pageParams } from './params.js';

const MAX_PAGE = 10_000;

/** `GET /v2/<name>/tags/list`: lexical order, `n`/`last` pagination with a `Link` to the next page. */
export function tagRoutes(deps: RegistryDeps): MethodTable {
  return {
    async GET(ctx, match) {
      const page = pageParams(ctx.query, MAX_PAGE);
      const { items, more } = await deps.registry.repository(match.name, match.namespace).tags.list(page);
      if (more && items.length > 0) ctx.set('Link', nextLink(`/v2/${match.name}/tags/list`, page.n!, items[items.length - 1]!));
      ctx.body = { name: match.name, tags: items };
    },
  };
}

/** `GET /v2/_catalog`: every repository, paginated like tags. */
export function catalogRoutes(deps: RegistryDeps): MethodTable {
  return {
    async GET(ctx) {
      const page = pageParams(ctx.query, MAX_PAGE);
      const { items, more } = await deps.registry.catalog(page);
      if (more && items.length > 0) ctx.set('Link', nextLink('/v2/_catalog', page.n!, items[items.length - 1]!));
      ctx.body = { repositories: items };
    },
  };
}
