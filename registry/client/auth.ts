import type { Credentials } from './credentials.js';
import { RegistryClientError, UnauthorizedError, loginHost } from './errors.js';
import { readBody, type Transport } from './transport.js';

/** One `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header value (possibly several challenges). */
export function parseChallenges(value: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const v of Array.isArray(value) ? value : value ? [value] : []) {
    let i = 0;
    let current: Challenge | undefined;
    const skip = () => {
      while (i < v.length && /[\s,]/.test(v[i]!)) i++;
    };
    while (i < v.length) {
      skip();
      const token = /^[\w!#$%&'*+.^`|~-]+/.exec(v.slice(i));
      if (!token) break;
      i += token[0].length;
      while (v[i] === ' ') i++;
      if (v[i] === '=' && current) {
        i++;
        while (v[i] === ' ') i++;
        let value = '';
        if (v[i] === '"') {
          i++;
          while (i < v.length && v[i] !== '"') {
            if (v[i] === '\\') i++;
            value += v[i++] ?? '';
          }
          i++;
        } else {
          const bare = /^[^\s,]*/.exec(v.slice(i))![0];
          value = bare;
          i += bare.length;
        }
        current.params[token[0].toLowerCase()] = value;
      } else {
        current = { scheme: token[0].toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}

/** `repository:library/busybox:pull` and friends. */
export function repositoryScope(repository: string, actions: ('pull' | 'push' | 'delete')[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** Merges scopes on the same resource (`…:pull` + `…:push` → `…:pull,push`) and sorts them. */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const s of scopes) {
    const i = s.lastIndexOf(':');
    if (i === -1) continue;
    const set = byResource.get(s.slice(0, i)) ?? new Set<string>();
    for (const a of s.slice(i + 1).split(',')) if (a) set.add(a);
    byResource.set(s.slice(0, i), set);
  }
  return [...byResource.entries()].map(([r, a]) => `${r}:${[...a].sort().join(',')}`).sort();
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export type CredentialSource = (host: string) => Promise<Credentials | undefined>;

/**
 * Answers registry challenges: Basic with the stored credentials, Bearer by fetching a token for the
 * scopes a request needs (anonymously when no credentials are stored), cached until it expires.
 */
export class Authenticator {
  /** The last challenge each origin (scheme://host) sent. */
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();
  private readonly credentialCache = new Map<string, Promise<Credentials | undefined>>();

  constructor(
    private readonly transport: Transport,
    private readonly credentials: CredentialSource,
  ) {}

  /** Remembers what a 401 asked for; returns whether it is a scheme we can answer. */
  noteChallenge(origin: string, header: string | string[] | undefined): boolean {
    const challenges = parseChallenges(header);
    const usable = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (!usable) return false;
    this.challenges.set(origin, usable);
    return true;
  }

  knowsChallenge(origin: string): boolean {
    return this.challenges.has(origin);
  }

  private creds(host: string): Promise<Credentials | undefined> {
    let p = this.credentialCache.get(host);
    if (!p) {
      p = this.credentials(loginHost(host));
      this.credentialCache.set(host, p);
    }
    return p;
  }

  /** The Authorization header for a request to `origin` needing `scopes`, if the origin asked for auth. */
  async authorization(origin: string, host: string, scopes: string[], refresh = false): Promise<string | undefined> {
    const challenge = this.challenges.get(origin);
    if (!challenge) return undefined;
    const creds = await this.creds(host);
    if (challenge.scheme === 'basic') {
      if (!creds?.username) throw new UnauthorizedError(host, `${host} requires a user name and password and none is stored`);
      return `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
    }
    const wanted = mergeScopes([...scopes, ...(challenge.params.scope ? challenge.params.scope.split(' ') : [])]);
    const key = JSON.stringify([challenge.params.realm, challenge.params.service, wanted, creds?.username ?? '', creds?.identityToken ? 'id' : '']);
    const cached = this.tokens.get(key);
    if (cached && !refresh && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    let inflight = this.pending.get(key);
    if (!inflight) {
      inflight = this.fetchToken(challenge, host, wanted, creds).finally(() => this.pending.delete(key));
      this.pending.set(key, inflight);
    }
    const token = await inflight;
    this.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  private async fetchToken(challenge: Challenge, host: string, scopes: string[], creds: Credentials | undefined): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryClientError(`${host} asked for a bearer token without saying where to get one (no realm)`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryClientError(`${host} named an invalid token realm "${realm}"`);
    }
    const service = challenge.params.service;
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: Buffer | undefined;
    let method = 'GET';
    if (creds?.identityToken) {
      method = 'POST';
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        client_id: 'tsbuild',
        ...(service ? { service } : {}),
      });
      if (scopes.length) form.set('scope', scopes.join(' '));
      body = Buffer.from(form.toString());
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (creds?.username) {
        url.searchParams.set('account', creds.username);
        headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
      }
    }
    const started = Date.now();
    const res = await this.transport.request({ method, url, headers, ...(body ? { body } : {}), verifyTls: true });
    const text = (await readBody(res, 1024 * 1024)).toString('utf8');
    if (res.status === 401 || res.status === 403) {
      const who = creds?.username ? `the token server ${url.host} rejected the credentials of ${creds.username} for ${host}` : `${host} needs credentials`;
      throw new UnauthorizedError(host, who);
    }
    if (res.status !== 200)
      throw new RegistryClientError(`token server ${url.origin}${url.pathname} answered HTTP ${res.status} for ${host}: ${text.slice(0, 200)}`);
    let parsed: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new RegistryClientError(`token server ${url.origin} for ${host} did not answer JSON`);
    }
    const token = parsed.token ?? parsed.access_token;
    if (!token) throw new RegistryClientError(`token server ${url.origin} for ${host} answered without a token`);
    const lifetime = Math.max(60, parsed.expires_in ?? 60) * 1000;
    const issued = parsed.issued_at ? Date.parse(parsed.issued_at) : NaN;
    const base = Number.isFinite(issued) && Math.abs(issued - started) < 5 * 60_000 ? issued : started;
    return { token, expiresAt: base + lifetime - 10_000 };
  }
}
