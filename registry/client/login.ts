import { Authenticator } from './auth.js';
import { DockerCredentials, type Credentials } from './credentials.js';
import { UnauthorizedError, loginHost } from './errors.js';
import { endpointsFor, emptySettings, type RegistrySettings } from './hosts.js';
import { discard, Transport, type TransportOptions } from './transport.js';

export interface LoginOptions {
  settings?: RegistrySettings;
  transport?: TransportOptions;
  credentials?: DockerCredentials;
}

/**
 * Checks the credentials against the registry (as docker does: `GET /v2/` answered with them, through
 * a token when the registry asks for one) and saves them in docker's config.json.
 */
export async function login(host: string, creds: Credentials, options: LoginOptions = {}): Promise<void> {
  const registry = loginHost(host.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, ''));
  const transport = new Transport(options.transport);
  try {
    const [endpoint] = await endpointsFor(options.settings ?? emptySettings(), registry, { mirrors: false });
    const auth = new Authenticator(transport, async () => creds);
    const schemes = endpoint!.scheme === 'auto' ? ['https', 'http'] : [endpoint!.scheme];
    let lastError: unknown;
    for (const scheme of schemes) {
      const origin = `${scheme}://${endpoint!.host}`;
      try {
        const first = await transport.request({ method: 'GET', url: new URL(`${origin}/v2/`), verifyTls: endpoint!.verifyTls });
        discard(first);
        if (first.status === 401) {
          auth.noteChallenge(origin, first.headers['www-authenticate']);
          const authorization = await auth.authorization(origin, endpoint!.host, []);
          const second = await transport.request({
            method: 'GET',
            url: new URL(`${origin}/v2/`),
            headers: authorization ? { authorization } : {},
            verifyTls: endpoint!.verifyTls,
          });
          discard(second);
          if (second.status === 401 || second.status === 403) throw new UnauthorizedError(registry, `${registry} rejected the user name or password`);
        }
        lastError = undefined;
        break;
      } catch (e) {
        lastError = e;
        if (e instanceof UnauthorizedError) break;
      }
    }
    if (lastError) throw lastError;
    await (options.credentials ?? new DockerCredentials()).store(registry, creds);
  } finally {
    transport.close();
  }
}

/** Removes the stored login for a registry; returns whether there was one. */
export async function logout(host: string, credentials = new DockerCredentials()): Promise<boolean> {
  return credentials.erase(loginHost(host.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '')));
}
