import type { Context, Next } from './context.js';
import { toRegistryError } from '../repository/index.js';

export { RegistryError, ErrorCodes, type ErrorCode } from '../repository/index.js';

/** Turns any thrown error into the spec's JSON error body; 5xx are logged with their cause. */
export async function errorHandler(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (e) {
    const err = toRegistryError(e);
    if (err.status >= 500) ctx.state.error = e;
    // A body the client is still sending is drained so the connection can be reused for the answer.
    if (!ctx.req.readableEnded) ctx.req.resume();
    ctx.status = err.status;
    for (const [k, v] of Object.entries(err.headers)) ctx.set(k, v);
    ctx.body = { errors: [{ code: err.code, message: err.message, ...(err.detail !== undefined ? { detail: err.detail } : {}) }] };
  }
}
