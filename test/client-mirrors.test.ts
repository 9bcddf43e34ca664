import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { startDistribution, type RunningRegistry } from './helpers/distribution.js';
import { makeBusyboxImage, type FixtureImage } from './helpers/busybox-image.js';
import { tempDir } from './helpers/temp.js';
import { tsbuild } from './helpers/run.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { Store } from '../store/index.js';
import { RegistryClient, pullImage, pushImage } from '../registry/client/index.js';

const withTools = testWith(['docker-registry']);
let registry: RunningRegistry | undefined;
let image: FixtureImage;

function isolatedEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  // dockerd's daemon.json is the machine's (other tests' dockerd may set mirrors in it): read none.
  return {
    ...process.env,
    DOCKER_CONFIG: join(dir, 'docker'),
    TSBUILD_CONFIG: '/dev/null',
    CONTAINERS_REGISTRIES_CONF: join(dir, 'none.conf'),
    TSBUILD_DOCKER_DAEMON_JSON: '/dev/null',
    ...extra,
  };
}

withTools.before(async () => {
  registry = await startDistribution();
  // Seed the local registry with what docker.io/library/busybox would be.
  const seed = await Store.open(tempDir());
  image = await makeBusyboxImage(seed, `${registry.host}/library/busybox:latest`);
  const client = new RegistryClient({ credentials: async () => undefined });
  await pushImage(client, seed, `${registry.host}/library/busybox:latest`);
  client.close();
});
withTools.after.always(async () => {
  await registry?.stop();
});

withTools('tsbuild pull busybox:latest goes through --registry-mirror (docker.io is offline)', async (t) => {
  const dir = tempDir();
  const root = join(dir, 'root');
  const pull = await tsbuild(root, ['pull', '--registry-mirror', registry!.url, 'busybox:latest'], { env: isolatedEnv(dir) });
  t.is(pull.code, 0, pull.stderr);
  t.regex(pull.stdout, /busybox:latest\n$/);
  const store = await Store.open(root);
  const rec = await store.images.get('docker.io/library/busybox:latest');
  t.is(rec.digest, image.digest);
  t.true(await store.blobs.has(image.manifest.layers[0]!.digest));
});

withTools('registry-mirrors from the tsbuild config file and mirrors from registries.conf apply', async (t) => {
  const dir = tempDir();
  writeFileSync(join(dir, 'config.yaml'), `registry-mirrors:\n  - ${registry!.url}\n`);
  const viaConfig = await tsbuild(join(dir, 'a'), ['pull', '-q', 'busybox'], { env: isolatedEnv(dir, { TSBUILD_CONFIG: join(dir, 'config.yaml') }) });
  t.is(viaConfig.code, 0, viaConfig.stderr);
  t.is(viaConfig.stdout, 'busybox:latest\n');
  writeFileSync(
    join(dir, 'registries.conf'),
    `# podman style\nunqualified-search-registries = ["docker.io"]\n\n[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "${registry!.host}"\ninsecure = true\n`,
  );
  const viaConf = await tsbuild(join(dir, 'b'), ['pull', '-q', 'docker.io/library/busybox:latest'], {
    env: isolatedEnv(dir, { CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf') }),
  });
  t.is(viaConf.code, 0, viaConf.stderr);
});

withTools('a mirror serving wrong bytes is detected by digest and skipped for the next one', async (t) => {
  const corrupt = await startFaultProxy(registry!.url, { corruptBlobs: true });
  try {
    const notices: string[] = [];
    const client = new RegistryClient({
      credentials: async () => undefined,
      settings: { mirrors: { 'docker.io': [{ location: corrupt.url }, { location: registry!.url }] }, insecureRegistries: [] },
      onProgress: (e) => void (e.type === 'notice' && notices.push(e.message)),
    });
    const store = await Store.open(tempDir());
    const pulled = await pullImage(client, store, 'busybox');
    t.is(pulled.digest, image.digest);
    t.true(
      corrupt.requests.some((r) => r.url.includes(`/blobs/${image.manifest.layers[0]!.digest}`)),
      'the corrupting mirror was asked first',
    );
    t.true(
      notices.some((n) => /does not match its digest/.test(n)),
      notices.join('\n'),
    );
    t.true(await store.blobs.has(image.manifest.layers[0]!.digest));
    client.close();
  } finally {
    await corrupt.close();
  }
});

withTools('mirrors of any registry: a dead mirror and a mirror without the image fall through to the registry', async (t) => {
  const empty = await startDistribution();
  try {
    const notices: string[] = [];
    const client = new RegistryClient({
      credentials: async () => undefined,
      settings: { mirrors: { [registry!.host]: [{ location: '127.0.0.1:1' }, { location: `${empty.host}/cache` }] }, insecureRegistries: [] },
      onProgress: (e) => void (e.type === 'notice' && notices.push(e.message)),
    });
    const pulled = await pullImage(client, await Store.open(tempDir()), `${registry!.host}/library/busybox:latest`);
    t.is(pulled.digest, image.digest);
    t.regex(notices.join('\n'), /127\.0\.0\.1:1 failed .*connection refused/);
    t.regex(empty.logs(), /GET \/v2\/cache\/library\/busybox\/manifests\/latest HTTP\/1.1" 404/);
    const missing = await t.throwsAsync(pullImage(client, await Store.open(tempDir()), `${registry!.host}/library/nothing:here`));
    t.regex(missing!.message, /^not found: 127\.0\.0\.1:\d+\/library\/nothing:here/);
    client.close();
  } finally {
    await empty.stop();
  }
});
