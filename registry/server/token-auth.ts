import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from './context.js';
import type { AuthOptions } from './auth.js';
import { parseBasic } from './auth.js';
import type { RouteMatch } from './context.js';
import { RegistryError } from './errors.js';

export const TOKEN_PATH = '/auth/token';
const TOKEN_TTL_SECONDS = 300;
const SERVICE = 'tsbuild-registry';
const READS = new Set(['GET', 'HEAD']);

/**
 * Docker's token flow, used when anonymous reads are allowed. With Basic challenges docker refuses to
 * send a request without credentials ("no basic auth credentials"), so an anonymous `docker pull` could
 * never work; with a Bearer challenge docker asks the token endpoint, with the login it has or
 * anonymously, and the registry decides per request what that token may do: anonymous tokens read,
 * users' tokens read and write. Tokens are HMAC-signed by a key made at start (a restart makes clients
 * fetch new ones).
 */
export function tokenAuth(options: AuthOptions) {
  const key = randomBytes(32);
  const sign = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url');

  function issue(user: string): string {
    const payload = Buffer.from(JSON.stringify({ sub: user, exp: Math.floor(Date.now() / 1000) + TOKEN_TTL_SECONDS })).toString('base64url');
    return `${payload}.${sign(payload)}`;
  }

  function verify(token: string): string | undefined {
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1));
    const expected = Buffer.from(sign(payload));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub: string; exp: number };
      return claims.exp > Date.now() / 1000 ? claims.sub : undefined;
    } catch {
      return undefined;
    }
  }

  // The public base URL (public-url.ts): behind a TLS-terminating proxy the realm must say https.
  const realm = (ctx: Context) => `${ctx.state.baseUrl ?? `${ctx.protocol}://${ctx.host}`}${TOKEN_PATH}`;
  const challenge = (ctx: Context, scope?: string) => ({
    'WWW-Authenticate': `Bearer realm="${realm(ctx)}",service="${SERVICE}"${scope ? `,scope="${scope}"` : ''}`,
  });

  /** `GET /auth/token`: a token for the Basic login given, or an anonymous one without credentials. */
  async function tokenEndpoint(ctx: Context): Promise<void> {
    const header = ctx.get('Authorization') || undefined;
    const creds = parseBasic(header);
    let user = '';
    if (header && (!creds || creds.user !== '' || creds.password !== '')) {
      user = (creds && (await options.users.verify(creds.user, creds.password))) ?? '';
      if (!user) {
        throw new RegistryError('UNAUTHORIZED', 'invalid username or password', undefined, 401, {
          'WWW-Authenticate': `Basic realm="${options.realm.replace(/"/g, '')}"`,
        });
      }
    }
    const token = issue(user);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { token, access_token: token, expires_in: TOKEN_TTL_SECONDS, issued_at: new Date().toISOString() };
  }

  async function middleware(ctx: Context, next: Next): Promise<void> {
    const header = ctx.get('Authorization') || undefined;
    const route = ctx.state.route;
    let user: string | undefined;
    let presented = false;
    if (header?.startsWith('Bearer ')) {
      user = verify(header.slice(7).trim());
      if (user === undefined) throw new RegistryError('UNAUTHORIZED', 'the token is invalid or expired', undefined, 401, challenge(ctx));
      presented = true;
    } else if (header) {
      const creds = parseBasic(header);
      if (!creds) throw new RegistryError('UNAUTHORIZED', 'authorization header is not valid', undefined, 401, challenge(ctx));
      if (creds.user !== '' || creds.password !== '') {
        user = await options.users.verify(creds.user, creds.password);
        if (!user) throw new RegistryError('UNAUTHORIZED', 'invalid username or password', undefined, 401, challenge(ctx));
        presented = true;
      }
    }
    if (user) {
      ctx.state.user = user;
      return next();
    }
    const scope = route && route.name ? `repository:${route.name}:pull${READS.has(ctx.method) ? '' : ',push'}` : undefined;
    // The API ping without any token starts the token flow; with an anonymous token it succeeds.
    if (route?.route === 'base' && !presented) throw new RegistryError('UNAUTHORIZED', 'authentication required', undefined, 401, challenge(ctx));
    if (READS.has(ctx.method)) return next();
    throw new RegistryError('UNAUTHORIZED', 'authentication required to push or delete', undefined, 401, challenge(ctx, scope));
  }

  return { tokenEndpoint, middleware };
}
