import { execFileSync } from 'node:child_process';
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './temp.js';

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** PEM bundle distribution verifies tokens with. */
  certFile: string;
  /** Token requests seen: account and scopes. */
  requests: { account?: string; scopes: string[] }[];
  /** distribution's `auth:` YAML for this server. */
  registryYaml(): string;
  close(): Promise<void>;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/**
 * A Docker token server (the registry token auth spec) issuing RS256 JWTs with an x5c chain that
 * distribution's `auth.token` verifies. Users in `users` get what they ask for; anonymous callers get pull only.
 */
export async function startTokenServer(users: Record<string, string>, refreshTokens: Record<string, string> = {}): Promise<TokenServer> {
  const dir = tempDir('token-server-');
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=tsbuild test token issuer'],
    { stdio: 'ignore' },
  );
  const key = readFileSync(keyFile, 'utf8');
  const certDer = new X509Certificate(readFileSync(certFile)).raw;
  const service = 'tsbuild-test-registry';
  const issuer = 'tsbuild-test-issuer';
  const requests: TokenServer['requests'] = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://x');
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(req.method === 'POST' ? body : '');
    const scopes = [...url.searchParams.getAll('scope'), ...form.getAll('scope')].flatMap((s) => s.split(' ')).filter(Boolean);
    let account: string | undefined;
    if (form.get('grant_type') === 'refresh_token') {
      // OAuth2 refresh: the identity token docker stores after a login with an identity provider.
      account = refreshTokens[form.get('refresh_token') ?? ''];
      if (!account) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"error":"invalid_grant"}');
        return;
      }
    }
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const [user, ...rest] = Buffer.from(basic[1]!, 'base64').toString().split(':');
      if (users[user!] !== rest.join(':')) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}');
        return;
      }
      account = user;
    }
    requests.push({ ...(account ? { account } : {}), scopes });
    const access = scopes.map((s) => {
      const [type, ...middle] = s.split(':');
      const actions = middle.pop()!.split(',');
      return { type, name: middle.join(':'), actions: account ? actions : actions.filter((a) => a === 'pull') };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: account ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(key);
    const token = `${signingInput}.${b64url(signature)}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  const realm = `http://127.0.0.1:${port}/token`;
  return {
    realm,
    service,
    issuer,
    certFile,
    requests,
    registryYaml: () => `auth:\n  token:\n    realm: ${realm}\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${certFile}\n`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
