import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { startDistribution } from './helpers/distribution.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { tempDir } from './helpers/temp.js';
import { run, tsbuild } from './helpers/run.js';
import { startTokenServer } from './helpers/token-server.js';
import { Store } from '../store/index.js';
import { DockerCredentials, login, RegistryClient, UnauthorizedError, pullImage, pushImage } from '../registry/client/index.js';

const withTools = testWith(['docker-registry', 'htpasswd', 'openssl']);

/** Environment that isolates a CLI run from the machine's docker, tsbuild and containers config. */
function isolatedEnv(dockerConfig: string): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_CONFIG: dockerConfig, TSBUILD_CONFIG: '/dev/null', CONTAINERS_REGISTRIES_CONF: join(dockerConfig, 'no-registries.conf') };
}

withTools('htpasswd auth: login writes config.json, push and pull use it, wrong password says how to log in', async (t) => {
  const dir = tempDir();
  const htpasswd = await run('htpasswd', ['-Bbn', 'alice', 's3cret']);
  t.is(htpasswd.code, 0);
  const file = join(dir, 'htpasswd');
  (await import('node:fs')).writeFileSync(file, htpasswd.stdout);
  const registry = await startDistribution(`auth:\n  htpasswd:\n    realm: tsbuild-test\n    path: ${file}\n`);
  try {
    const root = join(dir, 'root');
    const source = await Store.open(root);
    await makeBusyboxImage(source, `${registry.host}/team/app:v1`);
    const dockerConfig = join(dir, 'docker');
    const env = isolatedEnv(dockerConfig);

    const anonymousPush = await tsbuild(root, ['push', `${registry.host}/team/app:v1`], { env });
    t.is(anonymousPush.code, 1);
    t.regex(anonymousPush.stderr, new RegExp(`^tsbuild: unauthorized: .*, run tsbuild login ${registry.host}\\n$`));

    const bad = await tsbuild(root, ['login', '-u', 'alice', '--password-stdin', registry.host], { env, input: 'wrong\n' });
    t.is(bad.code, 1);
    t.regex(bad.stderr, /unauthorized: .*run tsbuild login/);
    t.false(existsSync(join(dockerConfig, 'config.json')));

    const login = await tsbuild(root, ['login', '-u', 'alice', '--password-stdin', registry.host], { env, input: 's3cret\n' });
    t.is(login.code, 0, login.stderr);
    const config = JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8'));
    t.is(config.auths[registry.host].auth, Buffer.from('alice:s3cret').toString('base64'));

    const push = await tsbuild(root, ['push', `${registry.host}/team/app:v1`], { env });
    t.is(push.code, 0, push.stderr);
    const pullRoot = join(dir, 'pulled');
    const pull = await tsbuild(pullRoot, ['pull', `${registry.host}/team/app:v1`], { env });
    t.is(pull.code, 0, pull.stderr);
    t.regex(pull.stdout, /Digest: sha256:[a-f0-9]{64}/);
    const images = await tsbuild(pullRoot, ['images'], { env });
    t.regex(images.stdout, new RegExp(`${registry.host}/team/app\\s+v1`));

    const logout = await tsbuild(root, ['logout', registry.host], { env });
    t.is(logout.code, 0);
    t.deepEqual(JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8')).auths, {});
    const after = await tsbuild(join(dir, 'again'), ['pull', `${registry.host}/team/app:v1`], { env });
    t.is(after.code, 1);
    t.regex(after.stderr, /unauthorized: .*run tsbuild login/);
  } finally {
    await registry.stop();
  }
});

withTools('token auth: pull and push through a token server, anonymous pull-only, cross-repo mount', async (t) => {
  const tokens = await startTokenServer({ bob: 'hunter2' }, { 'refresh-bob': 'bob' });
  const registry = await startDistribution(tokens.registryYaml());
  try {
    const store = await Store.open(tempDir());
    const image = await makeBusyboxImage(store, `${registry.host}/proj/one:v1`);
    const bob = new RegistryClient({ credentials: async () => ({ username: 'bob', password: 'hunter2' }) });
    const pushed = await pushImage(bob, store, `${registry.host}/proj/one:v1`, [`${registry.host}/proj/one:v1`, `${registry.host}/proj/one:latest`]);
    t.deepEqual(pushed.pushed, [`${registry.host}/proj/one:v1`, `${registry.host}/proj/one:latest`]);
    t.is(pushed.uploaded, 2);
    t.true(tokens.requests.some((r) => r.account === 'bob' && r.scopes.includes('repository:proj/one:pull,push')));

    // Same registry, other repository: mounted, not uploaded (needs pull on the source in the token).
    const mounted = await pushImage(bob, store, `${registry.host}/proj/one:v1`, `${registry.host}/proj/two:v1`);
    t.is(mounted.mounted, 2);
    t.is(mounted.uploaded, 0);
    t.true(tokens.requests.some((r) => r.scopes.includes('repository:proj/one:pull') && r.scopes.includes('repository:proj/two:pull,push')));
    t.regex(registry.logs(), /POST \/v2\/proj\/two\/blobs\/uploads\/\?mount=sha256%3A[a-f0-9]{64}&from=proj%2Fone HTTP\/1.1" 201/);

    const anonymous = new RegistryClient({ credentials: async () => undefined });
    const dest = await Store.open(tempDir());
    const pulled = await pullImage(anonymous, dest, `${registry.host}/proj/two:v1`);
    t.is(pulled.digest, image.digest);
    // Tokens are cached until they expire: a second pull asks the token server for nothing new.
    const before = tokens.requests.length;
    await pullImage(anonymous, await Store.open(tempDir()), `${registry.host}/proj/two:v1`);
    t.is(tokens.requests.length, before);
    const denied = await t.throwsAsync(pushImage(anonymous, store, `${registry.host}/proj/one:v1`, `${registry.host}/proj/three:v1`));
    t.true(denied instanceof UnauthorizedError, denied?.message);
    t.regex(denied!.message, new RegExp(`run tsbuild login ${registry.host}$`));

    const viaIdentityToken = new RegistryClient({ credentials: async () => ({ identityToken: 'refresh-bob' }) });
    const tokenPush = await pushImage(viaIdentityToken, store, `${registry.host}/proj/one:v1`, `${registry.host}/proj/four:v1`);
    t.is(tokenPush.mounted + tokenPush.existing, 2);
    t.true(tokens.requests.some((r) => r.account === 'bob' && r.scopes.includes('repository:proj/four:pull,push')));
    viaIdentityToken.close();

    // login checks the password through the token server before saving it
    const credentials = new DockerCredentials(join(tempDir(), 'config.json'));
    const refused = await t.throwsAsync(login(registry.host, { username: 'bob', password: 'bad' }, { credentials }));
    t.regex(refused!.message, new RegExp(`^unauthorized: .*, run tsbuild login ${registry.host}$`));
    await login(registry.host, { username: 'bob', password: 'hunter2' }, { credentials });
    t.deepEqual(await credentials.get(registry.host), { username: 'bob', password: 'hunter2' });

    const wrong = new RegistryClient({ credentials: async () => ({ username: 'bob', password: 'nope' }) });
    const e = await t.throwsAsync(pullImage(wrong, await Store.open(tempDir()), `${registry.host}/proj/one:v1`));
    t.regex(e!.message, /^unauthorized: .*bob.*run tsbuild login/);
    for (const c of [bob, anonymous, wrong]) c.close();
  } finally {
    await registry.stop();
    await tokens.close();
  }
});
