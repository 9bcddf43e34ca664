import test from 'ava';
import { chmodSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/temp.js';
import { DockerCredentials, DOCKER_HUB_AUTH_KEY } from '../registry/client/index.js';

test('reads auths (base64, docker.io legacy key, identity token) from config.json', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      auths: {
        [DOCKER_HUB_AUTH_KEY]: { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
        'https://reg.example:5000/v1/': { auth: Buffer.from('u:p').toString('base64') },
        'ghcr.example': { identitytoken: 'refresh-me' },
      },
    }),
  );
  const creds = new DockerCredentials(file);
  t.deepEqual(await creds.get('docker.io'), { username: 'hubuser', password: 'hub:pass' });
  t.deepEqual(await creds.get('registry-1.docker.io'), { username: 'hubuser', password: 'hub:pass' });
  t.deepEqual(await creds.get('reg.example:5000'), { username: 'u', password: 'p' });
  t.deepEqual(await creds.get('ghcr.example'), { identityToken: 'refresh-me' });
  t.is(await creds.get('unknown.example'), undefined);
  t.is(await new DockerCredentials(join(dir, 'missing.json')).get('docker.io'), undefined);
});

test('store and erase write the file as docker does, keeping other keys', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'docker', 'config.json');
  const creds = new DockerCredentials(file);
  await creds.store('docker.io', { username: 'a', password: 'b' });
  await creds.store('127.0.0.1:5000', { username: 'c', password: 'd' });
  const written = JSON.parse(readFileSync(file, 'utf8'));
  t.deepEqual(written.auths, { [DOCKER_HUB_AUTH_KEY]: { auth: 'YTpi' }, '127.0.0.1:5000': { auth: Buffer.from('c:d').toString('base64') } });
  t.is(statSync(file).mode & 0o777, 0o600);
  writeFileSync(file, JSON.stringify({ ...written, psFormat: 'table' }));
  t.true(await creds.erase('127.0.0.1:5000'));
  t.false(await creds.erase('127.0.0.1:5000'));
  const after = JSON.parse(readFileSync(file, 'utf8'));
  t.is(after.psFormat, 'table');
  t.deepEqual(Object.keys(after.auths), [DOCKER_HUB_AUTH_KEY]);
});

test('credential helpers (credsStore and credHelpers) are run as docker-credential-NAME get/store/erase', async (t) => {
  const dir = tempDir();
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const db = join(dir, 'helper-db');
  // A real helper program speaking the docker-credential protocol, keeping secrets in a file.
  writeFileSync(
    join(bin, 'docker-credential-testhelper'),
    `#!/bin/sh
set -e
input=$(cat)
case "$1" in
  get)
    line=$(grep -F "$input " "${db}" 2>/dev/null | tail -n1) || true
    if [ -z "$line" ]; then echo "credentials not found in native keychain"; exit 1; fi
    echo "$line" | cut -d' ' -f2-
    ;;
  store)
    url=$(echo "$input" | sed 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/')
    echo "$url $input" >> "${db}"
    ;;
  erase)
    grep -v -F "$input " "${db}" > "${db}.new" || true; mv "${db}.new" "${db}"
    ;;
esac
`,
  );
  chmodSync(join(bin, 'docker-credential-testhelper'), 0o755);
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath}`;
  try {
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ credsStore: 'testhelper', credHelpers: { 'special.example': 'testhelper' } }));
    const creds = new DockerCredentials(file);
    t.is(await creds.get('reg.example'), undefined);
    await creds.store('reg.example', { username: 'x', password: 'y' });
    t.deepEqual(await creds.get('reg.example'), { username: 'x', password: 'y' });
    t.deepEqual(JSON.parse(readFileSync(file, 'utf8')).auths, { 'reg.example': {} });
    await creds.store('special.example', { identityToken: 'tok' });
    t.deepEqual(await creds.get('special.example'), { identityToken: 'tok' });
    t.true(await creds.erase('reg.example'));
    t.is(await creds.get('reg.example'), undefined);
  } finally {
    process.env.PATH = oldPath;
  }
});
