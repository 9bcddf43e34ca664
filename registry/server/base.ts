import type { Context } from './context.js';
import type { MethodTable } from './context.js';

/** `GET /v2/`: the API version check every client starts with (auth, when enabled, answers first). */
export function baseRoutes(): MethodTable {
  const ok = async (ctx: Context): Promise<void> => {
    ctx.type = 'application/json';
    ctx.body = '{}';
  };
  return { GET: ok, HEAD: ok };
}
