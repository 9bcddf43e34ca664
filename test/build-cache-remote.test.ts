/**
 * Remote build caches: --cache-to on one root, --cache-from on a fresh root. With SOURCE_DATE_EPOCH every
 * step is CACHED there and the image digest is the original's — through tsbuild's registry and
 * distribution (type=registry), an OCI layout (type=local) and an image's inline cache. Cache mounts
 * travel with mode=max (and not with min). An unreadable cache is a warning.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { run, tsbuild, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { freePort, startDistribution, waitForHttp, type RunningRegistry } from './helpers/distribution.js';
import { storeWithBusybox } from './helpers/build-compare.js';
import { allCached, outcomes } from './helpers/cache-progress.js';
import { MediaType, parseNormalized, type ImageManifest } from '../oci/index.js';
import { Store } from '../store/index.js';

const test = testWith(['runc', 'docker-registry', 'skopeo']);
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };

async function ok(root: string, args: string[], env: Record<string, string> = {}) {
  const r = await tsbuild(root, args, { env: { ...process.env, ...env } });
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

async function manifestDigest(root: string, ref: string): Promise<string> {
  return (JSON.parse((await ok(root, ['inspect', ref])).stdout) as { Digest: string }).Digest;
}

const DOCKERFILE = `FROM busybox:latest AS deps
RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs echo "$STAMP" >> /var/cache/pkgs/log && cp /var/cache/pkgs/log /deps
ARG STAMP=one
RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs echo "$STAMP" >> /var/cache/pkgs/log && cat /var/cache/pkgs/log && cp /var/cache/pkgs/log /seen

FROM busybox:latest
COPY app/ /app/
RUN head -c 300000 /dev/urandom > /blob && echo made > /made
COPY --from=deps /deps /deps
CMD ["sh"]
`;

async function context(): Promise<string> {
  const dir = tempDir('remote-ctx-');
  await fs.mkdir(join(dir, 'app'), { recursive: true });
  for (let i = 0; i < 20; i++) await fs.writeFile(join(dir, 'app', `f${i}.txt`), `file ${i}\n`);
  await fs.writeFile(join(dir, 'Dockerfile'), DOCKERFILE);
  return dir;
}

/** `tsbuild registry` on a free port, with its own store. */
async function startTsbuildRegistry(): Promise<RunningRegistry> {
  const dir = tempDir('ts-registry-');
  const port = await freePort();
  const child = spawn(process.execPath, [tsbuildBin, '--root', join(dir, 'root'), 'registry', '--listen', `127.0.0.1:${port}`, '--log-level', 'silent'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`);
  return {
    host: `127.0.0.1:${port}`,
    url,
    dir,
    logs: () => log,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

let distribution: RunningRegistry;
let ours: RunningRegistry;
test.before(async () => {
  [distribution, ours] = await Promise.all([startDistribution(), startTsbuildRegistry()]);
});
test.after.always(async () => {
  await Promise.all([distribution?.stop(), ours?.stop()]);
});

/** Builds on root A exporting the cache, then on a fresh root B importing it; checks B hit everything. */
async function roundTrip(t: import('ava').ExecutionContext, cacheTo: string[], cacheFrom: string[], extra: string[] = []) {
  const ctx = await context();
  const a = await storeWithBusybox();
  const first = await ok(a, ['build', '--progress', 'plain', '-t', 'app:v1', ...extra, ...cacheTo.flatMap((c) => ['--cache-to', c]), ctx], EPOCH);
  t.regex(first.stderr, /exporting cache|preparing layers for inline cache/);
  const b = await storeWithBusybox();
  const second = await ok(b, ['build', '--progress', 'plain', '-t', 'app:v1', ...cacheFrom.flatMap((c) => ['--cache-from', c]), ctx], EPOCH);
  const o = outcomes(second.stderr);
  t.true(allCached(o), `every step is CACHED on the fresh root:\n${second.stderr}`);
  t.is(await manifestDigest(b, 'app:v1'), await manifestDigest(a, 'app:v1'), 'the same image digest');
  return { a, b, ctx, first, second };
}

test.serial('type=registry through distribution and tsbuild registry: a fresh root hits every step, same digest', async (t) => {
  for (const registry of [distribution, ours]) {
    const ref = `${registry.host}/cache/app:buildcache`;
    await roundTrip(t, [`type=registry,ref=${ref},mode=max`], [`type=registry,ref=${ref}`]);
    // the cache is an OCI manifest whose config is BuildKit's cache config
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    t.is(raw.code, 0, raw.stderr);
    const manifest = JSON.parse(raw.stdout) as { config: { mediaType: string }; layers: { mediaType: string; annotations: Record<string, string> }[] };
    t.is(manifest.config.mediaType, 'application/vnd.buildkit.cacheconfig.v0');
    t.true(manifest.layers.every((l) => l.mediaType.endsWith('+gzip') && /^sha256:/.test(l.annotations['containerd.io/uncompressed']!)));
  }
});

test.serial('cache layers and pushed image layers are the same blobs', async (t) => {
  const ctx = await context();
  const a = await storeWithBusybox();
  const image = `${distribution.host}/shared/app:v1`;
  const cache = `${distribution.host}/shared/app:cache`;
  await ok(a, ['build', '-q', '-t', image, '--push', '--cache-to', `type=registry,ref=${cache}`, ctx], EPOCH);
  const layersOf = async (ref: string) =>
    (JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout) as { layers: { digest: string }[] }).layers.map(
      (l) => l.digest,
    );
  const imageLayers = await layersOf(image);
  const cacheLayers = await layersOf(cache);
  t.true(cacheLayers.length >= 2);
  t.true(
    cacheLayers.every((d) => imageLayers.includes(d)),
    'mode=min: the cache holds the image own layers, as pushed',
  );
});

test.serial('type=local (an OCI layout) round trip; mode=min leaves other stages and cache mounts out', async (t) => {
  const dir = tempDir('local-cache-');
  const { b } = await roundTrip(t, [`type=local,dest=${join(dir, 'max')},mode=max`], [`type=local,src=${join(dir, 'max')}`]);
  t.truthy(await fs.stat(join(dir, 'max', 'index.json')));
  // skopeo reads the layout (it is a plain OCI layout)
  const raw = await run('skopeo', ['inspect', '--raw', `oci:${join(dir, 'max')}:latest`]);
  t.is(raw.code, 0, raw.stderr);
  const max = JSON.parse(raw.stdout) as { layers: unknown[] };
  void b;
  const ctx = await context();
  const a = await storeWithBusybox();
  await ok(a, ['build', '-q', '-t', 'app:v1', '--cache-to', `type=local,dest=${join(dir, 'min')}`, ctx], EPOCH);
  const min = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${join(dir, 'min')}:latest`])).stdout) as { layers: unknown[] };
  t.true(min.layers.length < max.layers.length, 'min exports fewer blobs than max');
  const fresh = await storeWithBusybox();
  const r = await ok(fresh, ['build', '--progress', 'plain', '-t', 'app:v1', '--cache-from', `type=local,src=${join(dir, 'min')}`, ctx], EPOCH);
  const o = outcomes(r.stderr);
  t.is(o.get('COPY app/ /app/'), 'CACHED', r.stderr);
  t.is(o.get('RUN head -c 300000 /dev/urandom > /blob && echo made > /made'), 'CACHED');
  t.regex(
    [...o.keys()].find((k) => k.includes('cat /var/cache/pkgs/log')) ? o.get([...o.keys()].find((k) => k.includes('cat /var/cache/pkgs/log'))!)! : '',
    /DONE/,
    'the deps stage is not in a min cache',
  );
  t.is(await manifestDigest(fresh, 'app:v1'), await manifestDigest(a, 'app:v1'), 'the deps stage rebuilt to the same bytes');
});

test.serial('type=inline: the pushed image carries its cache; --cache-from of the image hits on a fresh root', async (t) => {
  const image = `${distribution.host}/inline/app:v1`;
  const ctx = await context();
  const a = await storeWithBusybox();
  await ok(a, ['build', '-q', '-t', image, '--push', '--cache-to', 'type=inline', ctx], EPOCH);
  const config = await run('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${image}`]);
  t.is(config.code, 0, config.stderr);
  t.truthy((JSON.parse(config.stdout) as Record<string, unknown>)['moby.buildkit.cache.v0'], 'the config holds the inline cache');
  const b = await storeWithBusybox();
  // pushed again from B (gzip layers, as A's local name has them since its --push)
  const r = await ok(
    b,
    ['build', '--progress', 'plain', '-t', image, '--push', '--cache-to', 'type=inline', '--cache-from', `type=registry,ref=${image}`, ctx],
    EPOCH,
  );
  const o = outcomes(r.stderr);
  t.is(o.get('COPY app/ /app/'), 'CACHED', r.stderr);
  t.is(o.get('RUN head -c 300000 /dev/urandom > /blob && echo made > /made'), 'CACHED');
  t.is(await manifestDigest(b, image), await manifestDigest(a, image));
});

test.serial('a cache mount written on root A is visible to the same RUN on a fresh root B (mode=max)', async (t) => {
  const ref = `${ours.host}/mounts/app:cache`;
  const ctx = await context();
  const a = await storeWithBusybox();
  const first = await ok(a, ['build', '--progress', 'plain', '--target', 'deps', '-t', 'deps:v1', '--cache-to', `type=registry,ref=${ref},mode=max`, ctx]);
  t.regex(first.stderr, /#\d+ [\d.]+ one\n/);
  const b = await storeWithBusybox();
  // a changed build arg makes the RUN run again on B; the mount holds what A's RUNs wrote
  const second = await ok(b, ['build', '--progress', 'plain', '--target', 'deps', '--build-arg', 'STAMP=two', '--cache-from', `type=registry,ref=${ref}`, ctx]);
  const o = outcomes(second.stderr);
  t.is(
    o.get('RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs echo "$STAMP" >> /var/cache/pkgs/log && cp /var/cache/pkgs/log /deps'),
    'CACHED',
    second.stderr,
  );
  t.regex(second.stderr, /#\d+ [\d.]+ \n#\d+ [\d.]+ one\n#\d+ [\d.]+ two\n/, 'A wrote an empty line and "one"; B appends "two" to them');
  // mode=min carries no mounts
  const minRef = `${ours.host}/mounts/app:min`;
  await ok(a, ['build', '-q', '--target', 'deps', '--cache-to', `type=registry,ref=${minRef},mode=min`, ctx]);
  const c = await storeWithBusybox();
  const third = await ok(c, [
    'build',
    '--progress',
    'plain',
    '--target',
    'deps',
    '--build-arg',
    'STAMP=three',
    '--cache-from',
    `type=registry,ref=${minRef}`,
    ctx,
  ]);
  t.regex(third.stderr, /#\d+ [\d.]+ three\n/);
  t.notRegex(third.stderr, /#\d+ [\d.]+ one\n/, 'nothing of A in the mount');
});

test.serial('a missing or unreadable cache is a warning, never a failed build', async (t) => {
  const ctx = await context();
  const root = await storeWithBusybox();
  const notLayout = tempDir('not-a-layout-');
  const r = await tsbuild(root, [
    'build',
    '--progress',
    'plain',
    '-t',
    'app:v1',
    '--cache-from',
    `type=registry,ref=${distribution.host}/nothing/here:cache`,
    '--cache-from',
    `type=local,src=${notLayout}`,
    '--cache-from',
    'type=registry,ref=127.0.0.1:1/closed:cache',
    ctx,
  ]);
  t.is(r.code, 0, r.stderr);
  t.is((r.stderr.match(/\[Warning\] --cache-from /g) ?? []).length, 3, r.stderr);
  t.regex(r.stderr, /nothing\/here:cache: /);
  const bad = await tsbuild(root, ['build', '--cache-to', 'type=s3,bucket=x', ctx]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^tsbuild: --cache-to "type=s3,bucket=x": type must be registry, local or inline\n$/);
});

test.serial(
  "--cache-to options change what is written as BuildKit's do: compression=zstd round trips, digest= picks a manifest, ignore-error=true makes a failed export a warning; options tsbuild cannot honour are refused",
  async (t) => {
    const dir = tempDir('cache-options-');
    const dest = join(dir, 'zstd');
    await roundTrip(
      t,
      [`type=local,dest=${dest},mode=max,compression=zstd,compression-level=5,oci-mediatypes=true,image-manifest=true`],
      [`type=local,src=${dest}`],
    );
    const raw = await run('skopeo', ['inspect', '--raw', `oci:${dest}:latest`]);
    const manifest = JSON.parse(raw.stdout) as { layers: { mediaType: string }[] };
    t.true(manifest.layers.length > 0 && manifest.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+zstd'), raw.stdout);
    // digest= reads that manifest even when the tag names another
    const index = JSON.parse(await fs.readFile(join(dest, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const ctx = await context();
    const b = await storeWithBusybox();
    const picked = await ok(
      b,
      ['build', '--progress', 'plain', '-t', 'app:v1', '--cache-from', `type=local,src=${dest},tag=nosuch,digest=${index.manifests[0]!.digest}`, ctx],
      EPOCH,
    );
    t.true(allCached(outcomes(picked.stderr)), picked.stderr);
    // an export that fails: an error, or with ignore-error=true a warning and the image is built
    const root = await storeWithBusybox();
    const failing = await tsbuild(root, ['build', '-q', '--cache-to', 'type=local,dest=/proc/tsbuild-nope', ctx]);
    t.is(failing.code, 1);
    const ignored = await tsbuild(root, [
      'build',
      '--progress',
      'plain',
      '-t',
      'ignored:v1',
      '--cache-to',
      'type=local,dest=/proc/tsbuild-nope,ignore-error=true',
      ctx,
    ]);
    t.is(ignored.code, 0, ignored.stderr);
    t.regex(ignored.stderr, /\[Warning\] exporting the cache to \/proc\/tsbuild-nope failed: cannot create directory/);
    t.regex(ignored.stdout, /^sha256:[a-f0-9]{64}\n$/);
    for (const [spec, message] of [
      [`type=local,dest=${dir}/x,oci-mediatypes=false`, 'oci-mediatypes=false is not supported'],
      [`type=local,dest=${dir}/x,image-manifest=false`, 'image-manifest=false is not supported'],
      [`type=local,dest=${dir}/x,compression=brotli`, 'compression must be gzip, zstd or uncompressed, not "brotli"'],
      [`type=local,dest=${dir}/x,ignore-error=maybe`, 'ignore-error must be true or false'],
      [`type=local,dest=${dir}/x,shiny=yes`, 'unknown option "shiny"'],
    ]) {
      const refused = await tsbuild(root, ['build', '--cache-to', spec!, ctx]);
      t.is(refused.code, 2, spec);
      t.true(
        refused.stderr.startsWith(`tsbuild: --cache-to "${spec}": `) && refused.stderr.includes(message!) && refused.stderr.split('\n').length === 2,
        refused.stderr,
      );
    }
  },
);

test.serial(
  'the same base image packaged otherwise (docker media types, an annotation: as a docker push or a registry re-publishes it) hits a --cache-from made against the original: FROM is keyed by the image id, not the manifest digest',
  async (t) => {
    const ctx = await context();
    const dest = join(tempDir('repackaged-cache-'), 'cache');
    const a = await storeWithBusybox();
    await ok(a, ['build', '-q', '-t', 'app:v1', '--cache-to', `type=local,dest=${dest},mode=max`, ctx], EPOCH);
    for (const repackage of [
      (m: ImageManifest): ImageManifest => ({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { ...m.config, mediaType: MediaType.dockerConfig },
        layers: m.layers.map((l) => ({ ...l, mediaType: MediaType.dockerLayerGzip })),
      }),
      (m: ImageManifest): ImageManifest => ({ ...m, annotations: { 'org.opencontainers.image.created': '2025-01-01T00:00:00Z' } }),
    ]) {
      const b = await storeWithBusybox();
      const store = await Store.open(b);
      const original = await store.images.get('busybox:latest');
      const manifest = JSON.parse((await store.blobs.readBuffer(original.digest)).toString()) as ImageManifest;
      const other = repackage(manifest);
      const put = await store.blobs.put(JSON.stringify(other));
      t.not(put.digest, original.digest);
      await store.images.set(parseNormalized('busybox:latest'), put.digest, other.mediaType!);
      const r = await ok(b, ['build', '--progress', 'plain', '-t', 'app:v1', '--cache-from', `type=local,src=${dest}`, ctx], EPOCH);
      t.true(allCached(outcomes(r.stderr)), `every step is CACHED against the repackaged base:\n${r.stderr}`);
    }
  },
);
