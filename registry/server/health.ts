import { promises as fs } from 'node:fs';
import type { Context } from 'koa';
import type { Store } from '../../store/index.js';

/** `/healthz`: 200 while the storage root is reachable, 503 otherwise (what load balancers poll). */
export function health(store: Store) {
  return async (ctx: Context): Promise<void> => {
    try {
      await fs.access(store.root);
      ctx.body = { status: 'ok' };
    } catch (e) {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', error: `storage ${store.root} is not reachable: ${(e as Error).message}` };
    }
  };
}
