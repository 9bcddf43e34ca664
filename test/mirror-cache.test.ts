/**
 * The mirror's cache management (issue 12, "Cache management" and "Metrics"): `tsbuild mirror status`
 * counts hits, misses, bytes from upstream and bytes saved, persisted by the server under the store and
 * added up across restarts; `mirror.max-size` evicts the least recently pulled cached images but never a
 * pinned one, nor content a pushed repository or a local image holds, nor anything within the grace
 * period. Upstreams are local distribution instances behind the fault proxy (test/helpers/mirror-upstream.ts).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MediaType, parseNormalized, type Digest } from '../oci/index.js';
import { Store } from '../store/index.js';
import { evictCache, type MirrorStatus } from '../registry/index.js';
import { freePort, waitForHttp } from './helpers/distribution.js';
import {
  layoutProblems,
  pushImageHttp,
  skopeoPull,
  smallImage,
  startMirror,
  startUpstream,
  type SeededImage,
  type Upstream,
} from './helpers/mirror-upstream.js';
import { tsbuild, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';
import type { ExecutionContext } from 'ava';

const test = testWith(['docker-registry', 'skopeo']);

function env(): NodeJS.ProcessEnv {
  const dir = tempDir('mirror-cache-env-');
  return { ...process.env, DOCKER_CONFIG: join(dir, 'docker'), TSBUILD_CONFIG: '/dev/null', TSBUILD_DOCKER_DAEMON_JSON: '/dev/null' };
}

async function status(t: ExecutionContext, storage: string, up: Upstream): Promise<MirrorStatus> {
  const r = await tsbuild(storage, ['mirror', 'status', '--format', 'json', '--mirror', `docker.io=${up.url}`], { env: env() });
  t.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as MirrorStatus;
}

async function upstream(t: ExecutionContext): Promise<Upstream> {
  const up = await startUpstream();
  t.teardown(() => up.stop());
  return up;
}

async function pullOk(t: ExecutionContext, host: string, ref: string, image: SeededImage): Promise<void> {
  const pull = await skopeoPull(host, ref, 60_000);
  t.is(pull.code, 0, `${ref}: ${pull.stderr}`);
  t.deepEqual(layoutProblems(pull.dir, image), [], ref);
}

const blobBytes = (image: SeededImage) => image.blobs.reduce((n, b) => n + b.size, 0);

test('status: hits, misses, bytes from upstream and saved, cache size; written while the server runs and added up across restarts', async (t) => {
  const up = await upstream(t);
  const storage = tempDir('cache-status-');
  const first = await startMirror({ via: 'cli', upstreams: [{ registry: 'docker.io', url: up.url }], storage });
  t.teardown(() => first.close());
  await pullOk(t, first.host, 'library/busybox:latest', up.busybox); // cold
  await pullOk(t, first.host, 'library/busybox:latest', up.busybox); // warm
  // The running server writes its counters every ~10 s.
  let running: MirrorStatus | undefined;
  for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 1000))) {
    running = await status(t, storage, up);
    if (running.upstreams[0]?.bytesServedFromCache === blobBytes(up.busybox)) break;
  }
  t.is(running?.upstreams[0]?.bytesServedFromCache, blobBytes(up.busybox), 'counters written while the server runs');
  await first.close();

  const afterFirst = await status(t, storage, up);
  const docker = afterFirst.upstreams.find((u) => u.registry === 'docker.io')!;
  t.is(docker.url, up.url);
  t.is(docker.upstreamBytes, blobBytes(up.busybox), 'each blob came from upstream once');
  t.is(docker.bytesServedFromCache, blobBytes(up.busybox), 'the warm pull was served from the cache');
  t.true(docker.misses >= 5, `misses ${docker.misses}: tag, manifest and 3 blobs of the cold pull`);
  t.true(docker.hits >= 3, `hits ${docker.hits}: 3 blobs of the warm pull`);
  t.is(docker.upstreamErrors, 0);
  t.is(afterFirst.cache.bytes, up.busybox.totalBytes, 'the cache holds the manifest, config and layers');
  t.is(afterFirst.cache.images, 1);
  t.is(afterFirst.cache.repositories, 1);

  const second = await startMirror({ via: 'cli', upstreams: [{ registry: 'docker.io', url: up.url }], storage });
  t.teardown(() => second.close());
  await pullOk(t, second.host, 'library/busybox:latest', up.busybox);
  await second.close();
  const afterSecond = await status(t, storage, up);
  const again = afterSecond.upstreams.find((u) => u.registry === 'docker.io')!;
  t.is(again.upstreamBytes, blobBytes(up.busybox), 'nothing more from upstream after the restart');
  t.is(again.bytesServedFromCache, 2 * blobBytes(up.busybox), 'the restarted server added to the counts');
  t.true(again.hits >= docker.hits + 3);
  t.is(afterSecond.counters.since, afterFirst.counters.since);

  const text = await tsbuild(storage, ['mirror', 'status', '--mirror', `docker.io=${up.url}`], { env: env() });
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^UPSTREAM\s+URL\s+HITS\s+MISSES\s+COALESCED\s+STALE\s+ERRORS\s+FROM UPSTREAM\s+SAVED$/m);
  t.regex(text.stdout, new RegExp(`^docker\\.io\\s+${up.url.replace(/\./g, '\\.')}\\s+\\d+`, 'm'));
  t.regex(text.stdout, /^Cache: .* in 4 blobs; 1 images in 1 repositories$/m);
});

async function pause(): Promise<void> {
  await new Promise((r) => setTimeout(r, 50));
}

test('eviction: least recently pulled first; pinned images, pushed repositories and local images keep their content; nothing within the grace period', async (t) => {
  const up = await upstream(t);
  const small = await Promise.all([1, 2, 3, 4].map((i) => smallImage(`${up.label}-${i}`, `library/small${i}`, ['v1'])));
  const [s1, s2, s3, s4] = small as [SeededImage, SeededImage, SeededImage, SeededImage];
  for (const s of small) await up.push(s);
  const storage = tempDir('cache-evict-');
  const mirror = await startMirror({ upstreams: [{ registry: 'docker.io', url: up.url }], storage });
  t.teardown(() => mirror.close());
  // A pushed repository beside the mirrored ones, holding s2's blobs (pushed before they were cached).
  await pushImageHttp(mirror.url, { ...s2, repo: 'team/app', tags: ['v1'] });
  await pullOk(t, mirror.host, 'library/busybox:latest', up.busybox);
  for (const [ref, image] of [
    ['library/small1:v1', s1],
    ['library/small2:v1', s2],
    ['library/small4:v1', s4],
    ['library/small3:v1', s3],
    ['library/small1:v1', s1],
  ] as [string, SeededImage][]) {
    await pause();
    await pullOk(t, mirror.host, ref, image);
  }
  // A local image (as `tsbuild pull` into the same root names one) holds s4.
  const store = await Store.open(storage);
  await store.images.set(parseNormalized('docker.io/library/small4:v1'), s4.digest as Digest, MediaType.ociManifest);
  const pin = await tsbuild(storage, ['mirror', 'pin', 'busybox'], { env: env() });
  t.is(pin.code, 0, pin.stderr);
  t.regex(pin.stdout, /busybox:latest: pinned/);
  await mirror.close(); // writes the access times

  const maxBytes = up.busybox.totalBytes + s1.totalBytes + 1000;
  const young = await evictCache(store, { upstreams: ['docker.io'], maxBytes, graceMs: 10 * 60_000 });
  t.deepEqual(young.evicted, [], 'everything was pulled within the grace period');
  t.true(young.stillOver);

  const report = await evictCache(store, { upstreams: ['docker.io'], maxBytes, graceMs: 0 });
  t.deepEqual(
    report.evicted.map((e) => e.repository),
    ['docker.io/library/small2', 'docker.io/library/small4', 'docker.io/library/small3'],
    'least recently pulled first: small1 was pulled again last, busybox is pinned',
  );
  t.true(report.after <= maxBytes, `${report.after} > ${maxBytes}`);
  t.false(report.stillOver);
  t.is(await store.repositories.resolveTag('docker.io/library/busybox', 'latest'), up.busybox.digest as Digest);
  t.is(await store.repositories.resolveTag('docker.io/library/small1', 'v1'), s1.digest as Digest);
  for (const name of ['small2', 'small3', 'small4']) t.is(await store.repositories.resolveTag(`docker.io/library/${name}`, 'v1'), undefined, `${name} evicted`);
  for (const b of [s3.digest, ...s3.blobs.map((x) => x.digest)]) t.false(await store.blobs.has(b as Digest), `s3's ${b} deleted`);
  for (const b of s2.blobs) t.true(await store.blobs.has(b.digest as Digest), `s2's ${b.digest} kept: team/app holds it`);
  for (const b of [s4.digest, ...s4.blobs.map((x) => x.digest)]) t.true(await store.blobs.has(b as Digest), `s4's ${b} kept: a local image holds it`);

  const after = await status(t, storage, up);
  t.is(after.cache.bytes, report.after);
  t.deepEqual(
    after.pins.map((p) => [p.reference, p.cached]),
    [['docker.io/library/busybox:latest', true]],
  );

  // Served with the upstream gone: what was kept pulls; what was evicted does not.
  await up.proxy.set({ refuse: true });
  const offline = await startMirror({ upstreams: [{ registry: 'docker.io', url: up.url }], storage });
  t.teardown(() => offline.close());
  await pullOk(t, offline.host, 'library/busybox:latest', up.busybox);
  await pullOk(t, offline.host, 'library/small1:v1', s1);
  await pullOk(t, offline.host, 'team/app:v1', s2);
  const gone = await skopeoPull(offline.host, 'library/small3:v1', 30_000);
  t.not(gone.code, 0, 'small3 was evicted');

  const unpin = await tsbuild(storage, ['mirror', 'unpin', 'busybox', 'small1'], { env: env() });
  t.is(unpin.code, 1);
  t.regex(unpin.stdout, /busybox:latest: unpinned/);
  t.regex(unpin.stderr, /not pinned: small1:latest/);
});

test('tsbuild registry with mirror.max-size evicts on its own after fetches, least recently pulled first', async (t) => {
  const up = await upstream(t);
  const small = await Promise.all([1, 2, 3].map((i) => smallImage(`${up.label}-${i}`, `library/auto${i}`, ['v1'])));
  for (const s of small) await up.push(s);
  const dir = tempDir('cache-auto-');
  const storage = join(dir, 'store');
  const port = await freePort();
  const maxBytes = small[1]!.totalBytes + small[2]!.totalBytes + 1000;
  writeFileSync(
    join(dir, 'registry.yaml'),
    [
      `listen: 127.0.0.1:${port}`,
      `storage: ${storage}`,
      'log:',
      '  level: info',
      'mirrors:',
      '  docker.io:',
      `    url: ${up.url}`,
      'mirror:',
      `  max-size: ${maxBytes}`,
      '  eviction-grace: 0s',
      '',
    ].join('\n'),
  );
  const logFile = join(dir, 'registry.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [tsbuildBin, 'registry', '--config', join(dir, 'registry.yaml')], { stdio: ['ignore', fd, fd], env: env() });
  closeSync(fd);
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  );
  await waitForHttp(`http://127.0.0.1:${port}/v2/`);
  // The first measurement (of an empty cache) runs at the first 5 s tick; pulling after it, eviction
  // comes from the bytes fetched since, not from the next full measurement (due after 5 minutes).
  await new Promise((r) => setTimeout(r, 7000));
  for (const [i, s] of small.entries()) {
    await pause();
    await pullOk(t, `127.0.0.1:${port}`, `library/auto${i + 1}:v1`, s);
  }
  const store = await Store.open(storage);
  let evicted = false;
  for (const until = Date.now() + 30_000; !evicted && Date.now() < until; await new Promise((r) => setTimeout(r, 500))) {
    evicted = (await store.repositories.resolveTag('docker.io/library/auto1', 'v1')) === undefined;
  }
  t.true(evicted, `auto1 was not evicted: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
  t.is(await store.repositories.resolveTag('docker.io/library/auto2', 'v1'), small[1]!.digest as Digest);
  t.is(await store.repositories.resolveTag('docker.io/library/auto3', 'v1'), small[2]!.digest as Digest);
  t.false(await store.blobs.has(small[0]!.layers[0]!.digest as Digest), 'the evicted layer was deleted');
  t.regex(readFileSync(logFile, 'utf8'), /evicted least recently pulled images/);
});
