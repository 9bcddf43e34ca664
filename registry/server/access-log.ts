import type { Context, Next } from './context.js';
import type { Logger } from 'pino';

/** One JSON line per request (pino), written asynchronously so logging stays off the request's path. */
export function accessLog(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    // Failed requests are logged at error level even when the per-request lines (info) are off.
    if (!logger.isLevelEnabled('error')) return next();
    const start = performance.now();
    try {
      await next();
    } finally {
      const fields: Record<string, unknown> = {
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        ms: Math.round((performance.now() - start) * 100) / 100,
        remote: ctx.req.socket?.remoteAddress,
      };
      if (ctx.length !== undefined) fields.bytes = ctx.length;
      if (ctx.state.user) fields.user = ctx.state.user;
      if (ctx.state.route) fields.route = ctx.state.route.route;
      if (ctx.state.error) {
        fields.err = ctx.state.error;
        logger.error(fields, 'request failed');
      } else {
        logger.info(fields, 'request');
      }
    }
  };
}
