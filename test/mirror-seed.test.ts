/**
 * Seeding the mirror for offline use (issue 12, "Seeding for offline use" and "Done when"): `tsbuild
 * mirror sync` fills the cache from a local distribution as pulls through the mirror would, `export`
 * writes a bundle and `import` loads it into a fresh store; with the upstream stopped, a mirror on the
 * imported store serves skopeo (and docker) pulls. Also: `sync -f Dockerfile`, multi-platform indexes
 * (only the cached platforms travel), a damaged bundle refused, errors that name the image and upstream,
 * and a sync into the store a running mirror serves while it serves a pull of the same image.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MediaType, type Digest } from '../oci/index.js';
import { Store } from '../store/index.js';
import { MIRROR_REF } from '../registry/index.js';
import {
  layoutProblems,
  pushImageHttp,
  runFor,
  skopeoPull,
  smallImage,
  startMirror,
  startUpstream,
  type SeededImage,
  type Upstream,
} from './helpers/mirror-upstream.js';
import { call } from './helpers/registry-http.js';
import { tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';
import type { ExecutionContext } from 'ava';

const test = testWith(['docker-registry', 'skopeo']);
const withDocker = testWith(['docker-registry', 'skopeo', 'dockerd']);

/** tsbuild without the machine's docker credentials or config files. */
function env(): NodeJS.ProcessEnv {
  const dir = tempDir('mirror-seed-env-');
  return { ...process.env, DOCKER_CONFIG: join(dir, 'docker'), TSBUILD_CONFIG: '/dev/null', TSBUILD_DOCKER_DAEMON_JSON: '/dev/null' };
}

async function cli(t: ExecutionContext, root: string, args: string[], expectCode = 0) {
  const r = await tsbuild(root, args, { env: env() });
  t.is(r.code, expectCode, `tsbuild ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r;
}

/** An upstream stopped at the end of the test; `up.stop()` may be called before (it stops once). */
async function upstream(t: ExecutionContext): Promise<Upstream> {
  const up = await startUpstream();
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= up.stop());
  t.teardown(stop);
  return { ...up, stop };
}

/** Every blob of the store hashes to its name; no temp files lie around. */
async function storeProblems(root: string): Promise<string[]> {
  const store = await Store.open(root, { noSweep: true });
  const problems: string[] = [];
  for await (const digest of store.blobs.list()) {
    const hash = createHash('sha256');
    for await (const chunk of await store.blobs.read(digest)) hash.update(chunk as Buffer);
    if (`sha256:${hash.digest('hex')}` !== digest) problems.push(`${digest} holds other bytes`);
  }
  const temps = execFileSync('find', [join(root, 'content'), '-name', '*.tmp-*'], { encoding: 'utf8' }).trim();
  if (temps) problems.push(`temp files left: ${temps}`);
  return problems;
}

test('sync, export, import into a fresh store; with the upstream gone, a mirror on the imported store serves skopeo pulls', async (t) => {
  const up = await upstream(t);
  const root = tempDir('seed-src-');
  const sync = await cli(t, root, ['mirror', 'sync', '--mirror', `docker.io=${up.url}`, 'busybox', 'library/multi:v1']);
  t.regex(sync.stdout, new RegExp(`busybox:latest: ${up.busybox.digest}: 3 blobs`));
  t.regex(sync.stdout, new RegExp(`multi:v1: ${up.multi.digest}: 5 blobs`));
  // Exactly where a pull through the mirror puts it.
  const store = await Store.open(root);
  t.is(await store.repositories.resolveTag('docker.io/library/busybox', 'latest'), up.busybox.digest as Digest);
  t.is(await store.repositories.resolveTag('docker.io/library/multi', 'v1'), up.multi.digest as Digest);
  for (const b of up.multi.blobs) t.true(await store.repositories.hasBlob('docker.io/library/multi', b.digest as Digest), `${b.digest} linked`);
  // A second sync moves nothing from the upstream.
  const before = up.proxy.requests.filter((r) => r.method === 'GET' && r.url.includes('/blobs/')).length;
  const again = await cli(t, root, ['mirror', 'sync', '--mirror', `docker.io=${up.url}`, 'busybox']);
  t.regex(again.stdout, /0B fetched/);
  t.is(up.proxy.requests.filter((r) => r.method === 'GET' && r.url.includes('/blobs/')).length, before, 'a second sync fetched blobs');

  const bundle = join(tempDir('seed-bundle-'), 'bundle.tar');
  const exported = await cli(t, root, ['mirror', 'export', '-o', bundle, 'busybox', 'docker.io/library/multi:v1']);
  t.regex(exported.stdout, /wrote .*bundle\.tar: 2 images/);
  const listing = execFileSync('tar', ['tf', bundle], { encoding: 'utf8' }).split('\n');
  t.true(listing.includes('oci-layout') && listing.includes('index.json'));
  for (const image of [up.busybox, up.multi])
    for (const d of [image.digest, ...image.blobs.map((b) => b.digest)]) t.true(listing.includes(`blobs/sha256/${d.slice(7)}`), `${d} in the bundle`);
  const index = JSON.parse(execFileSync('tar', ['xOf', bundle, 'index.json'], { encoding: 'utf8' }));
  t.deepEqual(
    index.manifests.map((m: { digest: string; annotations: Record<string, string> }) => [
      m.digest,
      m.annotations[MIRROR_REF],
      m.annotations['org.opencontainers.image.ref.name'],
    ]),
    [
      [up.busybox.digest, 'docker.io/library/busybox:latest', 'latest'],
      [up.multi.digest, 'docker.io/library/multi:v1', 'v1'],
    ],
  );

  const fresh = tempDir('seed-dst-');
  const imported = await cli(t, fresh, ['mirror', 'import', bundle]);
  t.regex(imported.stdout, /imported 2 images/);
  t.deepEqual(await storeProblems(fresh), []);
  // Without a config, status knows the imported content is docker.io's.
  const status = JSON.parse((await cli(t, fresh, ['mirror', 'status', '--format', 'json'])).stdout);
  t.is(status.cache.images, 2);
  t.deepEqual(
    status.upstreams.map((u: { registry: string }) => u.registry),
    ['docker.io'],
  );
  t.is(status.cache.bytes, up.busybox.totalBytes + up.multi.totalBytes - up.busybox.layers[0]!.size, 'the shared busybox layer counts once');
  await up.stop();
  const mirror = await startMirror({ via: 'cli', upstreams: [{ registry: 'docker.io', url: up.url }], storage: fresh });
  t.teardown(() => mirror.close());
  for (const [ref, image] of [
    ['library/busybox:latest', up.busybox],
    ['library/multi:v1', up.multi],
    [`library/multi@${up.multi.digest}`, up.multi],
  ] as [string, SeededImage][]) {
    const pull = await skopeoPull(mirror.host, ref, 60_000);
    t.is(pull.code, 0, `skopeo pull ${ref} with the upstream down: ${pull.stderr}`);
    t.deepEqual(layoutProblems(pull.dir, image), [], ref);
  }
});

withDocker('docker pulls and runs an imported image from a mirror whose upstream is down', async (t) => {
  const up = await upstream(t);
  const root = tempDir('seed-docker-src-');
  await cli(t, root, ['mirror', 'sync', '--mirror', `docker.io=${up.url}`, 'busybox']);
  const bundle = join(tempDir('seed-docker-bundle-'), 'bundle.tar');
  await cli(t, root, ['mirror', 'export', '-o', bundle, 'busybox']);
  const fresh = tempDir('seed-docker-dst-');
  await cli(t, fresh, ['mirror', 'import', bundle]);
  await up.stop();
  const mirror = await startMirror({ via: 'cli', upstreams: [{ registry: 'docker.io', url: up.url }], storage: fresh });
  t.teardown(() => mirror.close());
  const image = `${mirror.host}/library/busybox:latest`;
  t.teardown(async () => {
    await runFor('/usr/bin/docker', ['rmi', '-f', image], 30_000);
  });
  const pull = await runFor('/usr/bin/docker', ['pull', image], 120_000);
  t.is(pull.code, 0, `docker pull: ${pull.stderr}`);
  const run = await runFor('/usr/bin/docker', ['run', '--rm', '--network', 'none', image, 'cat', '/etc/mirror-upstream'], 60_000);
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout.trim(), up.label, 'the image came from the bundle of this upstream');
});

/** Pushes a two-platform OCI index (linux/amd64, linux/arm64) of two small images under `repo:tag`. */
async function pushIndex(up: Upstream, repo: string, tag: string): Promise<{ index: Buffer; digest: string; amd64: SeededImage; arm64: SeededImage }> {
  const amd64 = await smallImage(`${up.label}-amd64`, repo, []);
  const arm64 = await smallImage(`${up.label}-arm64`, repo, []);
  await pushImageHttp(up.registry.url, amd64);
  await pushImageHttp(up.registry.url, arm64);
  const entry = (image: SeededImage, architecture: string) => ({
    mediaType: MediaType.ociManifest,
    digest: image.digest,
    size: image.manifest.length,
    platform: { os: 'linux', architecture },
  });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [entry(amd64, 'amd64'), entry(arm64, 'arm64')] }));
  const put = await call(up.registry.url, 'PUT', `/v2/${repo}/manifests/${tag}`, { headers: { 'Content-Type': MediaType.ociIndex }, body: index });
  if (put.status !== 201) throw new Error(`PUT index: ${put.status} ${put.body}`);
  return { index, digest: `sha256:${createHash('sha256').update(index).digest('hex')}`, amd64, arm64 };
}

test('an index: sync takes one platform (or all), export carries what is cached, the imported index pulls offline', async (t) => {
  const up = await upstream(t);
  const multi = await pushIndex(up, 'library/multiarch', 'v1');
  const root = tempDir('seed-index-');
  const sync = await cli(t, root, ['mirror', 'sync', '--mirror', `docker.io=${up.url}`, '--platform', 'linux/amd64', 'multiarch:v1']);
  t.regex(sync.stdout, new RegExp(`multiarch:v1: ${multi.digest} \\[linux/amd64\\]: 2 blobs`));
  const store = await Store.open(root);
  t.truthy(await store.repositories.getManifestLink('docker.io/library/multiarch', multi.amd64.digest as Digest));
  t.falsy(await store.repositories.getManifestLink('docker.io/library/multiarch', multi.arm64.digest as Digest), 'arm64 was not asked for');
  t.false(await store.blobs.has(multi.arm64.layers[0]!.digest as Digest));

  const bundle = join(tempDir('seed-index-bundle-'), 'bundle.tar');
  const exported = await cli(t, root, ['mirror', 'export', '-o', bundle, 'multiarch:v1']);
  t.regex(exported.stderr, /linux\/arm64 .* is not cached; the bundle leaves it out/);
  const listing = execFileSync('tar', ['tf', bundle], { encoding: 'utf8' });
  t.true(listing.includes(multi.digest.slice(7)) && listing.includes(multi.amd64.digest.slice(7)));
  t.false(listing.includes(multi.arm64.digest.slice(7)), 'the arm64 manifest is not cached, so not exported');

  const fresh = tempDir('seed-index-dst-');
  await cli(t, fresh, ['mirror', 'import', bundle]);
  await up.proxy.set({ refuse: true });
  const mirror = await startMirror({ via: 'cli', upstreams: [{ registry: 'docker.io', url: up.url }], storage: fresh });
  t.teardown(() => mirror.close());
  const pull = await skopeoPull(mirror.host, 'library/multiarch:v1', 60_000);
  t.is(pull.code, 0, pull.stderr);
  t.deepEqual(layoutProblems(pull.dir, multi.amd64), []);
  const arm = await runFor(
    'skopeo',
    [
      'copy',
      '--override-arch',
      'arm64',
      '--retry-times',
      '0',
      '--src-tls-verify=false',
      `docker://${mirror.host}/library/multiarch:v1`,
      `oci:${tempDir('seed-arm-')}:x`,
    ],
    60_000,
    { CONTAINERS_REGISTRIES_CONF: '/dev/null' },
  );
  t.not(arm.code, 0, 'arm64 was never cached and the upstream is down');
  await up.proxy.set({ refuse: false });

  const all = await cli(t, root, ['mirror', 'sync', '--mirror', `docker.io=${up.url}`, '--all-platforms', 'multiarch:v1']);
  t.regex(all.stdout, /\[linux\/amd64, linux\/arm64\]/);
  t.true(await store.blobs.has(multi.arm64.layers[0]!.digest as Digest));
});

test('sync -f Dockerfile syncs every base image (ARG defaults expanded; scratch and stages skipped)', async (t) => {
  const up = await upstream(t);
  const dir = tempDir('seed-dockerfile-');
  writeFileSync(
    join(dir, 'Dockerfile'),
    [
      'ARG BASE=library/multi:v1',
      'FROM busybox AS build',
      'RUN true',
      `FROM \${BASE}`,
      'COPY --from=build /bin/sh /sh2',
      'FROM scratch AS empty',
      'FROM build',
      '',
    ].join('\n'),
  );
  const config = join(dir, 'registry.yaml');
  writeFileSync(config, `mirrors:\n  docker.io:\n    url: ${up.url}\n`);
  const root = tempDir('seed-dockerfile-root-');
  const r = await cli(t, root, ['mirror', 'sync', '--config', config, '-f', join(dir, 'Dockerfile')]);
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 2, r.stdout);
  t.regex(lines[0]!, new RegExp(`^busybox:latest: ${up.busybox.digest}`));
  t.regex(lines[1]!, new RegExp(`^multi:v1: ${up.multi.digest}`));
  const other = await cli(t, root, ['mirror', 'sync', '--config', config, '-f', join(dir, 'Dockerfile'), '--build-arg', 'BASE=busybox']);
  t.is(other.stdout.trim().split('\n').length, 1, 'BASE=busybox leaves busybox only');
});

test('sync errors name the image and the upstream; a damaged bundle is refused and tags nothing', async (t) => {
  const up = await upstream(t);
  const root = tempDir('seed-errors-');
  const unknown = await cli(t, root, ['mirror', 'sync', '--mirror', `docker.io=${up.url}`, 'nosuchimage:v9'], 1);
  t.regex(unknown.stderr, new RegExp(`nosuchimage:v9: the upstream ${up.url.replace(/[.]/g, '\\.')} has no such image`));
  const unmirrored = await cli(t, root, ['mirror', 'sync', '--mirror', `docker.io=${up.url}`, 'ghcr.io/org/app:v1'], 1);
  t.regex(unmirrored.stderr, /ghcr\.io\/org\/app:v1: ghcr\.io is not mirrored/);
  const none = await cli(t, root, ['mirror', 'sync', 'busybox'], 2);
  t.regex(none.stderr, /no upstream is mirrored: pass --mirror/);
  const uncached = await cli(t, root, ['mirror', 'export', '-o', join(root, 'x.tar'), 'busybox'], 1);
  t.regex(uncached.stderr, /busybox:latest is not cached in this store .* run tsbuild mirror sync busybox:latest first/);

  await cli(t, root, ['mirror', 'sync', '--mirror', `docker.io=${up.url}`, 'busybox']);
  const bundle = join(tempDir('seed-bad-'), 'bundle.tar');
  await cli(t, root, ['mirror', 'export', '-o', bundle, 'busybox']);
  // Flip one byte inside the big layer's bytes (same size, other digest).
  const layer = up.busybox.layers[0]!;
  const tarBytes = readFileSync(bundle);
  const at = tarBytes.indexOf(layer.bytes.subarray(0, 64));
  t.true(at > 0, 'the layer is stored in the tar as is');
  const fd = openSync(bundle, 'r+');
  const one = Buffer.alloc(1);
  readSync(fd, one, 0, 1, at + 1000);
  writeSync(fd, Buffer.from([one[0]! ^ 0xff]), 0, 1, at + 1000);
  closeSync(fd);
  const fresh = tempDir('seed-bad-dst-');
  const bad = await cli(t, fresh, ['mirror', 'import', bundle], 1);
  t.regex(bad.stderr, new RegExp(`blob ${layer.digest}: digest mismatch`));
  const store = await Store.open(fresh);
  t.is(await store.repositories.resolveTag('docker.io/library/busybox', 'latest'), undefined, 'nothing was tagged');
  t.false(await store.blobs.has(layer.digest as Digest));
});

test('sync into the store a running mirror serves, while it serves a pull of the same image', async (t) => {
  const up = await upstream(t);
  const storage = tempDir('seed-live-');
  const mirror = await startMirror({ via: 'cli', upstreams: [{ registry: 'docker.io', url: up.url }], storage });
  t.teardown(() => mirror.close());
  // Slow the upstream so that the two fetches of the big layer overlap.
  await up.proxy.set({ rateBytesPerSecond: 4 << 20 });
  const [pull, sync, status] = await Promise.all([
    skopeoPull(mirror.host, 'library/multi:v1', 120_000),
    tsbuild(storage, ['mirror', 'sync', '--mirror', `docker.io=${up.url}`, 'library/multi:v1', 'busybox'], { env: env() }),
    new Promise((r) => setTimeout(r, 500)).then(() =>
      tsbuild(storage, ['mirror', 'status', '--format', 'json', '--mirror', `docker.io=${up.url}`], { env: env() }),
    ),
  ]);
  t.is(pull.code, 0, pull.stderr);
  t.deepEqual(layoutProblems(pull.dir, up.multi), []);
  t.is(sync.code, 0, sync.stderr);
  t.is(status.code, 0, status.stderr);
  await up.proxy.set({ rateBytesPerSecond: undefined, refuse: true });
  // What the sync cached, the running mirror serves with the upstream gone.
  const busybox = await skopeoPull(mirror.host, 'library/busybox:latest', 60_000);
  t.is(busybox.code, 0, busybox.stderr);
  t.deepEqual(layoutProblems(busybox.dir, up.busybox), []);
  t.deepEqual(await storeProblems(storage), []);
});
