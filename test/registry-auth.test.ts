/** htpasswd basic auth: challenges, anonymous read, and `docker login` / skopeo with credentials. */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { MediaType } from '../oci/index.js';
import { Store, exportOciLayout } from '../store/index.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { pushImage, startTestRegistry, type TestRegistry } from './helpers/registry-http.js';
import { findTool, testWith } from './helpers/tools.js';
import { run } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { createRegistryServer } from '../registry/index.js';

const DOCKER = '/usr/bin/docker';
const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

function htpasswdFile(lines: string[]): string {
  const file = join(tempDir('registry-auth-'), 'users.htpasswd');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** alice via bcryptjs ($2b$), bob via Apache's htpasswd -B ($2y$) when it is installed. */
async function users(): Promise<string> {
  const lines = [`alice:${bcrypt.hashSync('secret', 6)}`];
  if (findTool('htpasswd')) {
    const r = await run(findTool('htpasswd')!, ['-Bbn', '-C', '5', 'bob', 'hunter2']);
    lines.push(r.stdout.trim());
  }
  return htpasswdFile(lines);
}

let closed: TestRegistry;
let anonymous: TestRegistry;
test.before(async () => {
  const file = await users();
  closed = await startTestRegistry({ htpasswd: file });
  anonymous = await startTestRegistry({ htpasswd: file, anonymousRead: true });
});
test.after.always(async () => {
  await closed?.close();
  await anonymous?.close();
});

test('requests without credentials get 401 UNAUTHORIZED with a Basic challenge', async (t) => {
  for (const path of ['/v2/', '/v2/x/tags/list', '/v2/_catalog']) {
    const r = await closed.call('GET', path);
    t.is(r.status, 401, path);
    t.is(r.code, 'UNAUTHORIZED');
    t.is(r.headers['www-authenticate'], 'Basic realm="tsbuild registry"');
  }
});

test('wrong passwords, unknown users and malformed headers are refused; the right password works', async (t) => {
  t.is((await closed.call('GET', '/v2/', { headers: basic('alice', 'wrong') })).status, 401);
  t.is((await closed.call('GET', '/v2/', { headers: basic('mallory', 'secret') })).status, 401);
  t.is((await closed.call('GET', '/v2/', { headers: { Authorization: 'Basic !!!' } })).status, 401);
  t.is((await closed.call('GET', '/v2/', { headers: { Authorization: 'Bearer abc' } })).status, 401);
  t.is((await closed.call('GET', '/v2/', { headers: basic('alice', 'secret') })).status, 200);
  if (findTool('htpasswd')) t.is((await closed.call('GET', '/v2/', { headers: basic('bob', 'hunter2') })).status, 200);
  const img = await pushImage(closed, 'auth/app', 'v1', 'a', basic('alice', 'secret'));
  const get = await closed.call('GET', `/v2/auth/app/manifests/${img.digest}`, { headers: basic('alice', 'secret') });
  t.is(get.status, 200);
});

test('anonymous read: content reads work without credentials, pushes need a login, /v2/ still challenges', async (t) => {
  const img = await pushImage(anonymous, 'anon/app', 'v1', 'anon', basic('alice', 'secret'));
  const read = await anonymous.call('GET', '/v2/anon/app/manifests/v1');
  t.is(read.status, 200);
  t.true(read.body.equals(img.bytes));
  t.is((await anonymous.call('GET', `/v2/anon/app/blobs/${img.layer}`)).status, 200);
  t.is((await anonymous.call('GET', '/v2/anon/app/tags/list')).status, 200);
  // an empty login (what containers/image sends without credentials) counts as anonymous
  t.is((await anonymous.call('GET', '/v2/anon/app/manifests/v1', { headers: basic('', '') })).status, 200);
  const push = await anonymous.call('POST', '/v2/anon/app/blobs/uploads/');
  t.is(push.status, 401);
  t.is(push.code, 'UNAUTHORIZED');
  t.is((await anonymous.call('PUT', '/v2/anon/app/manifests/v2', { headers: { 'Content-Type': MediaType.ociManifest }, body: img.bytes })).status, 401);
  t.is((await anonymous.call('DELETE', `/v2/anon/app/manifests/${img.digest}`)).status, 401);
  t.is((await anonymous.call('GET', '/v2/')).status, 401);
  // wrong credentials are refused even for reads
  t.is((await anonymous.call('GET', '/v2/anon/app/manifests/v1', { headers: basic('alice', 'nope') })).status, 401);
});

test("anonymous read uses docker's token flow: anonymous tokens read, users' tokens write", async (t) => {
  const ping = await anonymous.call('GET', '/v2/');
  t.is(ping.status, 401);
  const challenge = ping.headers['www-authenticate'] as string;
  const realm = /^Bearer realm="([^"]+)",service="([^"]+)"/.exec(challenge);
  t.truthy(realm, challenge);
  const tokenPath = new URL(realm![1]!).pathname;
  const anon = await anonymous.call('GET', `${tokenPath}?service=${realm![2]}&scope=repository:tok/app:pull`);
  t.is(anon.status, 200);
  const anonToken = anon.json().token as string;
  t.is(anon.json().access_token, anonToken);
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  t.is((await anonymous.call('GET', '/v2/', { headers: bearer(anonToken) })).status, 200);
  const denied = await anonymous.call('POST', '/v2/tok/app/blobs/uploads/', { headers: bearer(anonToken) });
  t.is(denied.status, 401);
  t.regex(denied.headers['www-authenticate'] as string, /scope="repository:tok\/app:pull,push"/);
  t.is((await anonymous.call('GET', tokenPath, { headers: basic('alice', 'wrong') })).status, 401);
  const userToken = (await anonymous.call('GET', tokenPath, { headers: basic('alice', 'secret') })).json().token as string;
  const img = await pushImage(anonymous, 'tok/app', 'v1', 'tok', bearer(userToken));
  t.is((await anonymous.call('GET', `/v2/tok/app/manifests/${img.digest}`, { headers: bearer(anonToken) })).status, 200);
  t.is((await anonymous.call('GET', '/v2/', { headers: bearer(`${anonToken.slice(0, -2)}xx`) })).status, 401);
});

test('an htpasswd file with non-bcrypt entries is refused at start with the line named', (t) => {
  const file = htpasswdFile(['carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=']);
  const err = t.throws(() => createRegistryServer({ storage: tempDir(), htpasswd: file }));
  t.regex(err!.message, /users\.htpasswd:1: not a bcrypt entry/);
});

const e2e = testWith(['dockerd', 'skopeo', 'htpasswd']);

e2e.serial('docker login, push and pull with htpasswd basic auth; skopeo with --creds', async (t) => {
  const store = await Store.open(tempDir('registry-auth-store-'));
  const fixture = await makeBusyboxImage(store, 'busybox:latest');
  const layout = tempDir('registry-auth-layout-');
  await exportOciLayout(store.blobs, layout, [{ digest: fixture.digest, mediaType: MediaType.ociManifest, size: fixture.manifestBytes.length, tag: 'latest' }]);
  const config = tempDir('registry-auth-docker-');
  const docker = (args: string[], input?: string) => run(DOCKER, ['--config', config, ...args], input !== undefined ? { input } : {});
  const local = `tsbuild-registry-auth/busybox:${process.pid}`;
  const remote = `${closed.host}/auth/docker:v1`;
  t.teardown(async () => {
    await run(DOCKER, ['rmi', '-f', local, remote]);
  });
  const copied = await run('skopeo', ['copy', `oci:${layout}:latest`, `docker-daemon:${local}`]);
  t.is(copied.code, 0, copied.stderr);
  t.is((await docker(['tag', local, remote])).code, 0);

  const denied = await docker(['push', remote]);
  t.not(denied.code, 0);
  t.regex(denied.stderr + denied.stdout, /no basic auth credentials|unauthorized|authentication required/i);

  const badLogin = await docker(['login', '-u', 'alice', '--password-stdin', closed.host], 'wrong');
  t.not(badLogin.code, 0);
  const login = await docker(['login', '-u', 'alice', '--password-stdin', closed.host], 'secret');
  t.is(login.code, 0, login.stderr);
  t.regex(login.stdout, /Login Succeeded/);

  const push = await docker(['push', remote]);
  t.is(push.code, 0, push.stderr);
  t.is((await docker(['rmi', '-f', local, remote])).code, 0);
  const pull = await docker(['pull', remote]);
  t.is(pull.code, 0, pull.stderr);

  const skopeoDenied = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${remote}`]);
  t.not(skopeoDenied.code, 0);
  const skopeoOk = await run('skopeo', [
    'copy',
    '--dest-tls-verify=false',
    '--dest-creds',
    'alice:secret',
    `oci:${layout}:latest`,
    `docker://${closed.host}/auth/skopeo:v1`,
  ]);
  t.is(skopeoOk.code, 0, skopeoOk.stderr);
  t.is((await closed.call('GET', '/v2/auth/skopeo/tags/list', { headers: basic('alice', 'secret') })).json().tags[0], 'v1');
  t.is((await docker(['logout', closed.host])).code, 0);
});

e2e.serial('anonymous read: docker pulls without a login, pushes only after docker login', async (t) => {
  const store = await Store.open(tempDir('registry-auth-store-'));
  const fixture = await makeBusyboxImage(store, 'busybox:latest');
  const layout = tempDir('registry-auth-layout-');
  await exportOciLayout(store.blobs, layout, [{ digest: fixture.digest, mediaType: MediaType.ociManifest, size: fixture.manifestBytes.length, tag: 'latest' }]);
  const config = tempDir('registry-auth-docker-');
  const docker = (args: string[], input?: string) => run(DOCKER, ['--config', config, ...args], input !== undefined ? { input } : {});
  const local = `tsbuild-registry-anon/busybox:${process.pid}`;
  const remote = `${anonymous.host}/anon/docker:v1`;
  t.teardown(async () => {
    await run(DOCKER, ['rmi', '-f', local, remote]);
  });
  t.is((await run('skopeo', ['copy', `oci:${layout}:latest`, `docker-daemon:${local}`])).code, 0);
  t.is((await docker(['tag', local, remote])).code, 0);
  const denied = await docker(['push', remote]);
  t.not(denied.code, 0);
  t.regex(denied.stderr + denied.stdout, /unauthorized|authentication required/i);
  t.is((await docker(['login', '-u', 'alice', '--password-stdin', anonymous.host], 'secret')).code, 0);
  const push = await docker(['push', remote]);
  t.is(push.code, 0, push.stderr);
  t.is((await docker(['logout', anonymous.host])).code, 0);
  t.is((await docker(['rmi', '-f', local, remote])).code, 0);
  const pull = await docker(['pull', remote]);
  t.is(pull.code, 0, pull.stderr);
  const inspect = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${remote}`]);
  t.is(inspect.code, 0, inspect.stderr);
});
