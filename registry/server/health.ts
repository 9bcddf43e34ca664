import type { Context } from './context.js';
import type { Registry } from '../repository/index.js';

/** `/healthz`: 200 while the storage is reachable, 503 otherwise (what load balancers poll). */
export function health(registry: Registry) {
  return async (ctx: Context): Promise<void> => {
    try {
      await registry.checkHealth();
      ctx.body = { status: 'ok' };
    } catch (e) {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', error: (e as Error).message };
    }
  };
}
