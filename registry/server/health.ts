import type { Context } from './context.js';
import type { Registry } from '../repository/index.js';

/**
 * `/healthz`: 200 while the storage is reachable, 503 otherwise (what load balancers poll). A degraded
 * registry stays 200 with `{status: 'degraded', detail}`: replicas share one Redis, so taking one out of
 * the balancer for it helps nothing, and it still serves pulls.
 */
export function health(registry: Registry) {
  return async (ctx: Context): Promise<void> => {
    try {
      const degraded = await registry.checkHealth();
      ctx.body = degraded ? { status: 'degraded', detail: degraded } : { status: 'ok' };
    } catch (e) {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', error: (e as Error).message };
    }
  };
}
