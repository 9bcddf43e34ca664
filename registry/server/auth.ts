import type { Context, Next } from './context.js';
import { RegistryError } from './errors.js';
import type { Htpasswd } from './htpasswd.js';
import type { RouteMatch } from './context.js';

export interface AuthOptions {
  users: Htpasswd;
  realm: string;
  /** Let requests without credentials read (GET/HEAD of content); writes always need a login. */
  anonymousRead: boolean;
}

const READS = new Set(['GET', 'HEAD']);

export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * htpasswd basic auth with `WWW-Authenticate: Basic` challenges, every request needing a login. `GET /v2/`
 * challenges a caller without credentials: clients decide from that ping whether to send the credentials
 * they have. (With anonymous reads the app uses token-auth.ts instead; this middleware still honours
 * `anonymousRead` for content reads, an empty `:` login counting as anonymous.)
 */
export function basicAuth(options: AuthOptions) {
  const challenge = { 'WWW-Authenticate': `Basic realm="${options.realm.replace(/"/g, '')}"` };
  const deny = (message: string) => new RegistryError('UNAUTHORIZED', message, undefined, 401, challenge);
  return async (ctx: Context, next: Next): Promise<void> => {
    const header = ctx.get('Authorization') || undefined;
    const creds = parseBasic(header);
    if (header && !creds) throw deny('authorization header is not valid basic authentication');
    if (creds && (creds.user !== '' || creds.password !== '')) {
      const user = await options.users.verify(creds.user, creds.password);
      if (!user) throw deny('invalid username or password');
      ctx.state.user = user;
      return next();
    }
    const route = ctx.state.route;
    if (options.anonymousRead && READS.has(ctx.method) && route && route.route !== 'base') return next();
    throw deny('authentication required');
  };
}
