/**
 * Behind a TLS-terminating proxy: the token realm (where docker sends the user's password) must name the
 * public https URL, from `http.host` or from a trusted proxy's X-Forwarded-* headers, and never from
 * forwarding headers of a peer nobody trusts.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { registryConfigSchema, validateConfig } from '../config/index.js';
import { startTestRegistry, type TestRegistry } from './helpers/registry-http.js';
import { tempDir } from './helpers/temp.js';

function htpasswd(): string {
  const file = join(tempDir('registry-public-url-'), 'users.htpasswd');
  writeFileSync(file, `alice:${bcrypt.hashSync('secret', 6)}\n`);
  return file;
}

const proxied = { Host: 'registry.example.test', 'X-Forwarded-Proto': 'https' };

function realmOf(header: string | string[] | undefined): string | undefined {
  return /realm="([^"]+)"/.exec(String(header ?? ''))?.[1];
}

async function withRegistry(options: Parameters<typeof startTestRegistry>[0], body: (reg: TestRegistry) => Promise<void>): Promise<void> {
  const reg = await startTestRegistry({ htpasswd: htpasswd(), anonymousRead: true, ...options });
  try {
    await body(reg);
  } finally {
    await reg.close();
  }
}

test("a trusted proxy's X-Forwarded-Proto makes the realm https (ping and push challenges alike)", async (t) => {
  await withRegistry({ trustedProxies: ['127.0.0.1'] }, async (reg) => {
    const ping = await reg.call('GET', '/v2/', { headers: proxied });
    t.is(ping.status, 401);
    t.is(realmOf(ping.headers['www-authenticate']), 'https://registry.example.test/auth/token');
    const push = await reg.call('POST', '/v2/app/blobs/uploads/', { headers: proxied });
    t.is(push.status, 401);
    t.is(realmOf(push.headers['www-authenticate']), 'https://registry.example.test/auth/token');
    const forwardedHost = await reg.call('GET', '/v2/', { headers: { ...proxied, 'X-Forwarded-Host': 'public.example.test:8443, inner.example' } });
    t.is(realmOf(forwardedHost.headers['www-authenticate']), 'https://public.example.test:8443/auth/token');
  });
});

test('a trusted CIDR covers the proxy; a proxy outside it is not believed', async (t) => {
  await withRegistry({ trustedProxies: ['127.0.0.0/8'] }, async (reg) => {
    t.is(realmOf((await reg.call('GET', '/v2/', { headers: proxied })).headers['www-authenticate']), 'https://registry.example.test/auth/token');
  });
  await withRegistry({ trustedProxies: ['10.0.0.0/8'] }, async (reg) => {
    const r = await reg.call('GET', '/v2/', { headers: { ...proxied, 'X-Forwarded-Host': 'evil.example' } });
    t.is(realmOf(r.headers['www-authenticate']), 'http://registry.example.test/auth/token');
  });
});

test('without trusted proxies, forwarding headers are ignored', async (t) => {
  await withRegistry({}, async (reg) => {
    const r = await reg.call('GET', '/v2/', { headers: { ...proxied, 'X-Forwarded-Host': 'evil.example' } });
    t.is(realmOf(r.headers['www-authenticate']), 'http://registry.example.test/auth/token');
  });
});

test('http.host fixes the realm whatever the request says', async (t) => {
  await withRegistry({ publicUrl: 'https://registry.example.com' }, async (reg) => {
    const r = await reg.call('GET', '/v2/', { headers: { Host: 'internal:5000', 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'evil.example' } });
    t.is(realmOf(r.headers['www-authenticate']), 'https://registry.example.com/auth/token');
  });
});

test('config: http.host must be a base URL; trusted-proxies a list', (t) => {
  const ok = validateConfig(registryConfigSchema, { http: { host: 'https://registry.example.com', 'trusted-proxies': ['10.0.0.0/8'] } }, 'test');
  t.is(ok.http.host, 'https://registry.example.com');
  t.deepEqual(ok.http['trusted-proxies'], ['10.0.0.0/8']);
  t.throws(() => validateConfig(registryConfigSchema, { http: { host: 'registry.example.com/v2' } }, 'test'), { message: /http\.host/ });
});

test('a malformed trusted proxy is refused at start with a one-line error', async (t) => {
  await t.throwsAsync(startTestRegistry({ trustedProxies: ['not-an-ip'] }), { message: /trusted proxy "not-an-ip"/ });
});
