/** `tsbuild registry`: config file, flags overriding it, TLS, read-only, and one-line errors. */
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { registryConfigSchema, validateConfig } from '../config/index.js';
import { freePort, waitForHttp } from './helpers/distribution.js';
import { call } from './helpers/registry-http.js';
import { run, tsbuild, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { findTool } from './helpers/tools.js';

function serve(root: string, args: string[]): { stop(): Promise<void>; output(): string } {
  const child = spawn(process.execPath, [tsbuildBin, '--root', root, 'registry', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return {
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

test('the config schema fills defaults and parses durations and sizes', (t) => {
  const c = validateConfig(
    registryConfigSchema,
    { uploads: { 'expire-after': '2h' }, limits: { 'manifest-size': '1MiB' }, cache: { 'manifest-ttl': 0 } },
    'test',
  );
  t.is(c.uploads['expire-after'], 2 * 3_600_000);
  t.is(c.uploads['purge-interval'], 10 * 60_000);
  t.is(c.limits['manifest-size'], 1 << 20);
  t.is(c.cache['manifest-ttl'], 0);
  t.is(c.log.level, 'info');
  t.false(c['read-only']);
  t.throws(() => validateConfig(registryConfigSchema, { lisen: '127.0.0.1:5000' }, 'reg.yaml'), { message: /reg\.yaml: unknown key "lisen"/ });
  t.throws(() => validateConfig(registryConfigSchema, { uploads: { 'expire-after': 'soon' } }, 'reg.yaml'), {
    message: /uploads\.expire-after: "soon" is not a duration/,
  });
  t.throws(() => validateConfig(registryConfigSchema, { listen: 'localhost' }, 'reg.yaml'), { message: /listen/ });
});

test('the annotated example config validates', async (t) => {
  const { loadConfigFile } = await import('../config/index.js');
  const { projectRoot } = await import('./helpers/run.js');
  const c = loadConfigFile(registryConfigSchema, join(projectRoot, 'config', 'registry.yaml'));
  t.is(c.listen, '127.0.0.1:5000');
  t.is(c.limits['manifest-size'], 4 * 1024 * 1024);
});

test('flags override the config file (listen, storage, read-only)', async (t) => {
  const dir = tempDir('registry-cli-');
  const filePort = await freePort();
  const flagPort = await freePort();
  const config = join(dir, 'registry.yaml');
  writeFileSync(config, `listen: 127.0.0.1:${filePort}\nstorage: from-file\nread-only: false\nlog:\n  level: info\n`);
  const server = serve(join(dir, 'root'), ['--config', config, '--listen', `127.0.0.1:${flagPort}`, '--storage', join(dir, 'flag-storage'), '--read-only']);
  t.teardown(() => server.stop());
  await waitForHttp(`http://127.0.0.1:${flagPort}/v2/`);
  const url = `http://127.0.0.1:${flagPort}`;
  t.is((await call(url, 'GET', '/v2/')).status, 200);
  const write = await call(url, 'POST', '/v2/cli/app/blobs/uploads/');
  t.is(write.status, 405);
  t.is(write.code, 'UNSUPPORTED');
  await server.stop();
  t.regex(server.output(), new RegExp(`serving ${join(dir, 'flag-storage')} at http://127\\.0\\.0\\.1:${flagPort}`));
  // access logs are JSON lines
  const line = server
    .output()
    .split('\n')
    .find((l) => l.includes('"path":"/v2/cli/app/blobs/uploads/"'));
  t.truthy(line);
  t.is(JSON.parse(line!).status, 405);
});

test('bad flags are one-line usage errors', async (t) => {
  const root = tempDir('registry-cli-');
  const listen = await tsbuild(root, ['registry', '--listen', 'nowhere']);
  t.is(listen.code, 2);
  t.regex(listen.stderr, /^tsbuild: --listen "nowhere" must be HOST:PORT/);
  const tls = await tsbuild(root, ['registry', '--tls-cert', '/x.pem']);
  t.is(tls.code, 2);
  t.regex(tls.stderr, /--tls-cert and --tls-key go together/);
  const config = await tsbuild(root, ['registry', '--config', join(root, 'missing.yaml')]);
  t.is(config.code, 1);
  t.regex(config.stderr, /^tsbuild: cannot read config file/);
});

test('TLS when a certificate is given', async (t) => {
  if (!findTool('openssl')) return t.pass('openssl not installed');
  const dir = tempDir('registry-tls-');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1']);
  t.is(made.code, 0, made.stderr);
  const port = await freePort();
  const server = serve(join(dir, 'root'), ['--listen', `127.0.0.1:${port}`, '--tls-cert', cert, '--tls-key', key, '--log-level', 'silent']);
  t.teardown(() => server.stop());
  let status = 0;
  for (let i = 0; i < 100 && status === 0; i++) {
    status = await new Promise<number>((resolve) => {
      https
        .get({ host: '127.0.0.1', port, path: '/v2/', rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on('error', () => setTimeout(() => resolve(0), 100));
    });
  }
  t.is(status, 200);
});
