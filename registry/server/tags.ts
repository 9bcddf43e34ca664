import type { MethodTable, RegistryDeps } from './context.js';
import { RegistryError } from './errors.js';
import { nextLink, pageParams } from './params.js';

const MAX_PAGE = 10_000;

/** `GET /v2/<name>/tags/list`: lexical order, `n`/`last` pagination with a `Link` to the next page. */
export function tagRoutes(deps: RegistryDeps): MethodTable {
  return {
    async GET(ctx, match) {
      const page = pageParams(ctx.query, MAX_PAGE);
      if (!(await deps.store.repositories.exists(match.name))) {
        throw new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name: match.name });
      }
      const { items, more } = await deps.store.repositories.listTags(match.name, page);
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
      const { items, more } = await deps.store.repositories.catalog(page);
      if (more && items.length > 0) ctx.set('Link', nextLink('/v2/_catalog', page.n!, items[items.length - 1]!));
      ctx.body = { repositories: items };
    },
  };
}
