import type { Context, Next } from './context.js';
import { RegistryError } from './errors.js';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** `--read-only`: every write answers 405 UNSUPPORTED (distribution's maintenance mode does the same). */
export async function readOnly(ctx: Context, next: Next): Promise<void> {
  if (!READS.has(ctx.method)) {
    throw new RegistryError('UNSUPPORTED', 'the registry is in read-only mode', undefined, 405, { Allow: 'GET, HEAD' });
  }
  await next();
}
