/**
 * The builder and registries: a base image missing from the store is pulled (from its registry, or
 * through --registry-mirror for docker.io names); --push sends every -t to its registry.
 */
import { join } from 'node:path';
import { writeOciDirectory } from '../builder/image/index.js';
import { Store } from '../store/index.js';
import { testWith } from './helpers/tools.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { startDistribution, type RunningRegistry } from './helpers/distribution.js';
import { projectRoot, run, tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';

const test = testWith(['runc', 'skopeo', 'docker-registry']);
const fixture = (name: string) => join(projectRoot, 'fixtures', name);

let registry: RunningRegistry;

/** Puts the busybox base into the registry under `repo:latest` with skopeo (an independent client). */
async function seed(repo: string): Promise<void> {
  const dir = tempDir('seed-');
  const store = await Store.open(join(dir, 'store'));
  const image = await makeBusyboxImage(store, 'busybox:latest');
  await writeOciDirectory(
    store,
    [{ digest: image.digest, mediaType: image.manifest.mediaType!, size: image.manifestBytes.length, names: ['busybox:latest'] }],
    join(dir, 'layout'),
  );
  const r = await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${join(dir, 'layout')}:latest`, `docker://${registry.host}/${repo}:latest`]);
  if (r.code !== 0) throw new Error(`skopeo copy failed: ${r.stderr}`);
}

test.before(async () => {
  registry = await startDistribution();
  await seed('base/busybox');
  await seed('library/busybox');
});
test.after.always(async () => {
  await registry?.stop();
});

test.serial('a base image not in the store is pulled from its registry; --push uploads the result', async (t) => {
  const root = join(tempDir('reg-root-'), 'root');
  const target = `${registry.host}/apps/from-registry:v1`;
  const r = await tsbuild(root, [
    'build',
    '--progress',
    'plain',
    '--build-arg',
    `BASE=${registry.host}/base/busybox:latest`,
    '-t',
    target,
    '--push',
    fixture('from-arg'),
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /pushing/);
  const local = JSON.parse((await tsbuild(root, ['inspect', target])).stdout) as { Digest: string };
  const remote = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${target}`]);
  t.is(remote.code, 0, remote.stderr);
  t.is((JSON.parse(remote.stdout) as { Digest: string }).Digest, local.Digest);
  const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${target}`]);
  const layers = (JSON.parse(raw.stdout) as { layers: { mediaType: string }[] }).layers;
  t.true(
    layers.every((l) => l.mediaType.endsWith('+gzip')),
    'pushed layers are gzip-compressed',
  );
  const images = await tsbuild(root, ['images', '--format', 'json']);
  t.true(images.stdout.includes(`${registry.host}/base/busybox`), 'the pulled base is named in the store');
});

test.serial('tsbuild push of a built image sends gzip layers and keeps the image id', async (t) => {
  const root = join(tempDir('push-root-'), 'root');
  const built = await tsbuild(root, [
    'build',
    '--progress',
    'plain',
    '--build-arg',
    `BASE=${registry.host}/base/busybox:latest`,
    '-t',
    'local-app:v1',
    fixture('from-arg'),
  ]);
  t.is(built.code, 0, built.stderr);
  const before = JSON.parse((await tsbuild(root, ['inspect', 'local-app:v1'])).stdout) as { Id: string; Layers: { mediaType: string }[] };
  t.true(
    before.Layers.some((l) => !l.mediaType.endsWith('+gzip')),
    'built layers stay uncompressed locally',
  );
  const target = `${registry.host}/apps/pushed:v2`;
  const pushed = await tsbuild(root, ['push', '-q', 'local-app:v1', target]);
  t.is(pushed.code, 0, pushed.stderr);
  const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${target}`]);
  t.is(raw.code, 0, raw.stderr);
  const manifest = JSON.parse(raw.stdout) as { config: { digest: string }; layers: { mediaType: string }[] };
  t.true(
    manifest.layers.every((l) => l.mediaType.endsWith('+gzip')),
    'pushed layers are gzip-compressed',
  );
  t.is(manifest.config.digest, before.Id, 'same config, same image id');
  const copy = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${target}`, `oci:${join(tempDir('pulled-'), 'l')}:x`]);
  t.is(copy.code, 0, copy.stderr);
});

test.serial('docker.io bases come through --registry-mirror', async (t) => {
  const root = join(tempDir('mirror-root-'), 'root');
  const r = await tsbuild(root, ['build', '--progress', 'plain', '--registry-mirror', registry.url, '-t', 'mirrored:v1', fixture('from-arg')]);
  t.is(r.code, 0, r.stderr);
  t.regex(registry.logs(), /GET \/v2\/library\/busybox\/manifests\/latest/);
});

test.serial('--pull asks the registry again even when the store has the base', async (t) => {
  const root = join(tempDir('pull-root-'), 'root');
  const base = `${registry.host}/base/busybox:latest`;
  const args = ['build', '-q', '--build-arg', `BASE=${base}`, '-t', 'pulled:v1', fixture('from-arg')];
  t.is((await tsbuild(root, args)).code, 0);
  const count = () => (registry.logs().match(/GET \/v2\/base\/busybox\/manifests\/latest/g) ?? []).length;
  const before = count();
  t.is((await tsbuild(root, args)).code, 0);
  t.is(count(), before, 'without --pull the stored base is used');
  t.is((await tsbuild(root, [...args, '--pull'])).code, 0);
  t.true(count() > before, 'with --pull the registry is asked');
});

test.serial('a base that is nowhere fails with a clear message', async (t) => {
  const root = join(tempDir('missing-root-'), 'root');
  const r = await tsbuild(root, [
    'build',
    '--progress',
    'plain',
    '--build-arg',
    `BASE=${registry.host}/nothing/here:latest`,
    '-t',
    'x:v1',
    fixture('from-arg'),
  ]);
  t.is(r.code, 1);
  t.regex(r.stderr, /tsbuild: Dockerfile:2: .*nothing\/here.*/);
});
