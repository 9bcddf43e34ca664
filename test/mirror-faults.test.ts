/**
 * The mirror against a misbehaving upstream (issue 12, "Behaviour" and "Done when"): a local distribution
 * behind test/helpers/fault-proxy.ts. Corrupt and cut transfers are never cached and the client sees a
 * failed transfer; an interrupted transfer resumes with Range; cached content keeps being served when
 * the upstream refuses, errors or answers after 15 s; a cold 8 MiB layer streams behind a 1 MiB/s link;
 * an image never seen fails within seconds. Each test has its own upstream, proxy and mirror. Serial:
 * the 2 s bounds are behaviour bounds (a stale tag answered at once, a cold blob streamed at once), not
 * speed targets, and should not share two cores with each other.
 */
import { Store } from '../store/index.js';
import {
  BIG_LAYER_BYTES,
  getManifest,
  MIRROR_IMPL,
  layoutProblems,
  mirrorOf,
  skopeoInspectRaw,
  skopeoPull,
  smallImage,
  startUpstream,
  timedGet,
  type RunningMirror,
  type Upstream,
} from './helpers/mirror-upstream.js';
import { testWith } from './helpers/tools.js';
import type { ExecutionContext } from 'ava';

const test = testWith(['docker-registry', 'skopeo']);
const tsbuildOnly = MIRROR_IMPL === 'tsbuild' ? test.serial : test.skip;

async function world(t: ExecutionContext, options: { tagTtlMs?: number } = {}): Promise<{ up: Upstream; mirror: RunningMirror }> {
  const up = await startUpstream();
  t.teardown(() => up.stop());
  const mirror = await mirrorOf(up, options);
  t.teardown(() => mirror.close());
  return { up, mirror };
}

/** The big layer of multi:v1 (8 MiB of random bytes). */
const big = (up: Upstream) => up.multi.layers[1]!;
const blobPath = (up: Upstream, digest: string) => `/v2/library/multi/blobs/${digest}`;

async function warm(t: ExecutionContext, up: Upstream, mirror: RunningMirror): Promise<void> {
  const pull = await skopeoPull(mirror.host, 'library/multi:v1');
  t.is(pull.code, 0, `warming pull: ${pull.stderr}`);
  t.deepEqual(layoutProblems(pull.dir, up.multi), []);
}

/** In the mirror's store (tsbuild only; the store is read beside the running server). */
async function cachedInStore(mirror: RunningMirror, digest: string): Promise<boolean> {
  const store = await Store.open(mirror.storage);
  return store.blobs.has(digest as never);
}

test.serial('corrupt upstream bytes: the client sees a failed transfer, nothing is cached, the next pull is clean', async (t) => {
  const { up, mirror } = await world(t);
  await up.proxy.set({ corruptBlobs: true, faultDigests: [big(up).digest] });
  const read = await timedGet(mirror.url, blobPath(up, big(up).digest));
  t.log(`cold GET through a corrupting upstream: status ${read.status}, ${read.bytes} bytes, failed=${read.failed} (${read.error ?? ''})`);
  t.false(read.status === 200 && !read.failed && read.digest !== big(up).digest, 'the mirror delivered a complete body of wrong bytes');
  t.true(read.failed || read.status >= 400, `a failed transfer was expected, got a complete ${read.status} with the right digest`);
  const pull = await skopeoPull(mirror.host, 'library/multi:v1');
  t.not(pull.code, 0, 'a pull through a corrupting upstream must fail');
  if (MIRROR_IMPL === 'tsbuild') t.false(await cachedInStore(mirror, big(up).digest), 'the corrupt blob was committed to the store');
  // Nothing cached: with the upstream gone, the mirror has nothing to serve for that blob.
  await up.proxy.set({ refuse: true });
  const gone = await timedGet(mirror.url, blobPath(up, big(up).digest), {}, 20_000);
  t.false(gone.status === 200 && !gone.failed, `after a corrupt fetch the blob was served from the cache (${gone.digest})`);
  await up.proxy.set({ refuse: false, corruptBlobs: false });
  const before = up.proxy.blobGets(big(up).digest);
  const clean = await skopeoPull(mirror.host, 'library/multi:v1');
  t.is(clean.code, 0, clean.stderr);
  t.deepEqual(layoutProblems(clean.dir, up.multi), []);
  t.true(up.proxy.blobGets(big(up).digest) > before, 'the clean pull fetched the blob again from upstream');
});

test.serial('a transfer the upstream always cuts is never cached; the client sees a failed transfer; the next pull is clean', async (t) => {
  const { up, mirror } = await world(t);
  // Every GET of the big layer stops at 3 MiB (a Range resume from there is cut at once): it cannot complete.
  await up.proxy.set({ cutBlobAfter: 3 << 20, cutEveryBlob: true, faultDigests: [big(up).digest] });
  const read = await timedGet(mirror.url, blobPath(up, big(up).digest), {}, 60_000);
  t.log(
    `cold GET through a cutting upstream: status ${read.status}, ${read.bytes} bytes in ${read.totalMs.toFixed(0)} ms, failed=${read.failed} (${read.error ?? ''})`,
  );
  t.false(read.error?.startsWith('no complete answer'), 'the mirror hung on a cut upstream');
  t.true(read.failed || read.status >= 400, `expected a failed transfer, got a complete ${read.status} of ${read.bytes} bytes`);
  t.true(read.bytes < big(up).size, 'the client got the whole blob although the upstream never sent it');
  const pull = await skopeoPull(mirror.host, 'library/multi:v1', 90_000);
  t.not(pull.code, 0, 'a pull through a cutting upstream must fail');
  if (MIRROR_IMPL === 'tsbuild') t.false(await cachedInStore(mirror, big(up).digest), 'the truncated blob was committed to the store');
  await up.proxy.set({ cutBlobAfter: undefined, cutEveryBlob: false });
  const clean = await skopeoPull(mirror.host, 'library/multi:v1');
  t.is(clean.code, 0, clean.stderr);
  t.deepEqual(layoutProblems(clean.dir, up.multi), []);
});

test.serial('an interrupted upstream transfer resumes with Range; the client gets the whole blob and it is cached', async (t) => {
  const { up, mirror } = await world(t);
  await up.proxy.set({ cutBlobAfter: 3 << 20, faultDigests: [big(up).digest] });
  const read = await timedGet(mirror.url, blobPath(up, big(up).digest), {}, 60_000);
  t.is(read.status, 200);
  t.false(read.failed, read.error);
  t.is(read.digest, big(up).digest);
  const ranges = up.proxy.requests.filter((r) => r.url.includes(big(up).digest) && r.method === 'GET').map((r) => r.range ?? 'whole');
  t.log(`upstream GETs of the big layer: ${ranges.join(', ')}`);
  t.true(
    ranges.some((r) => r.startsWith(`bytes=${3 << 20}-`)),
    `expected a resume with Range from ${3 << 20}, saw: ${ranges.join(', ')}`,
  );
  t.false(ranges.slice(1).includes('whole'), 'the mirror started over instead of resuming');
  await up.proxy.set({ refuse: true });
  const cached = await timedGet(mirror.url, blobPath(up, big(up).digest), {}, 20_000);
  t.is(cached.status, 200);
  t.is(cached.digest, big(up).digest, 'the resumed blob is served from the cache with the upstream gone');
});

test.serial('upstream refusing connections: cached tags and digests still pull with skopeo; an uncached image fails within seconds', async (t) => {
  const { up, mirror } = await world(t, { tagTtlMs: 0 });
  await warm(t, up, mirror);
  await up.proxy.set({ refuse: true });
  const byTag = await skopeoPull(mirror.host, 'library/multi:v1', 60_000);
  t.is(byTag.code, 0, `cached tag with the upstream refusing: ${byTag.stderr}`);
  t.deepEqual(layoutProblems(byTag.dir, up.multi), []);
  const byDigest = await skopeoPull(mirror.host, `library/multi@${up.multi.digest}`, 60_000);
  t.is(byDigest.code, 0, `cached digest with the upstream refusing: ${byDigest.stderr}`);
  t.deepEqual(layoutProblems(byDigest.dir, up.multi), []);
  // An image the mirror never saw (it is on the upstream, which cannot be reached).
  const never = await smallImage(up.label, 'library/never');
  await up.push(never);
  const manifest = await getManifest(mirror.url, '/v2/library/never/manifests/v1', 20_000);
  const took = manifest.ms;
  t.log(`uncached manifest with the upstream refusing: ${manifest.status} ${manifest.body.toString().slice(0, 300)} in ${took.toFixed(0)} ms`);
  t.true(took < 5000, `the uncached manifest took ${took.toFixed(0)} ms`);
  t.true(manifest.status >= 400, `status ${manifest.status}`);
  t.truthy(manifest.code, 'the answer is a spec error body');
  if (MIRROR_IMPL === 'tsbuild')
    t.regex(manifest.body.toString(), /upstream|docker\.io|127\.0\.0\.1|refused|unreachable/i, 'the error says the upstream could not be reached');
  const pull = await skopeoPull(mirror.host, 'library/never:v1', 30_000);
  t.not(pull.code, 0);
  t.true(pull.ms < 10_000, `skopeo's pull of an uncached image took ${pull.ms.toFixed(0)} ms`);
  t.log(`skopeo: ${pull.stderr.trim()}`);
});

test.serial('upstream answering after 15 s: a cached tag (revalidated every time) pulls in under 2 s', async (t) => {
  const { up, mirror } = await world(t, { tagTtlMs: 0 });
  await warm(t, up, mirror);
  await up.proxy.set({ delayMs: 15_000 });
  const pull = await skopeoPull(mirror.host, 'library/multi:v1', 60_000);
  t.is(pull.code, 0, pull.stderr);
  t.deepEqual(layoutProblems(pull.dir, up.multi), []);
  t.log(`cached tag behind a 15 s upstream: ${pull.ms.toFixed(0)} ms`);
  t.true(pull.ms < 2000, `the cached tag took ${pull.ms.toFixed(0)} ms behind a 15 s upstream`);
  const inspect = await skopeoInspectRaw(mirror.host, 'library/multi:v1', 30_000);
  t.is(inspect.code, 0, inspect.stderr);
  t.true(inspect.ms < 2000, `skopeo inspect took ${inspect.ms.toFixed(0)} ms`);
  if (MIRROR_IMPL === 'tsbuild') t.true((await mirror.metric('tsbuild_mirror_requests_total', { result: 'stale' })) >= 1, 'stale serves are counted');
});

test.serial('an uncached image fails within seconds when the upstream does not answer (upstream timeout 10 s)', async (t) => {
  const { up, mirror } = await world(t);
  await up.proxy.set({ delayMs: 60_000 });
  const manifest = await getManifest(mirror.url, '/v2/library/busybox/manifests/latest', 30_000);
  const took = manifest.ms;
  t.log(`uncached manifest behind a silent upstream: ${manifest.status} ${manifest.body.toString().slice(0, 300)} in ${took.toFixed(0)} ms`);
  t.true(took < 15_000, `took ${took.toFixed(0)} ms with upstreamTimeoutMs 10000`);
  t.true(manifest.status >= 400);
  t.truthy(manifest.code, 'the answer is a spec error body');
});

test.serial('upstream answering 503: the cached tag is served stale; errors and stale serves are counted', async (t) => {
  const { up, mirror } = await world(t, { tagTtlMs: 0 });
  await warm(t, up, mirror);
  await up.proxy.set({ errorStatus: 503 });
  const pull = await skopeoPull(mirror.host, 'library/multi:v1', 60_000);
  t.is(pull.code, 0, pull.stderr);
  t.deepEqual(layoutProblems(pull.dir, up.multi), []);
  if (MIRROR_IMPL === 'tsbuild') {
    t.true((await mirror.metric('tsbuild_mirror_requests_total', { upstream: 'docker.io', result: 'stale' })) >= 1, 'a stale serve is counted');
    t.true((await mirror.metric('tsbuild_mirror_upstream_errors_total', { upstream: 'docker.io' })) >= 1, 'the upstream error is counted');
  }
});

test.serial('behind a 1 MiB/s link the first byte of a cold 8 MiB layer reaches the client within 2 s, and the bytes are right', async (t) => {
  const { up, mirror } = await world(t);
  await up.proxy.set({ rateBytesPerSecond: 1 << 20 });
  const manifest = await getManifest(mirror.url, '/v2/library/multi/manifests/v1');
  t.is(manifest.status, 200);
  t.true(big(up).size >= BIG_LAYER_BYTES);
  const read = await timedGet(mirror.url, blobPath(up, big(up).digest), {}, 60_000);
  t.log(
    `cold 8 MiB layer at 1 MiB/s: headers ${read.headersMs.toFixed(0)} ms, first byte ${read.firstByteMs?.toFixed(0)} ms, done ${read.totalMs.toFixed(0)} ms`,
  );
  t.is(read.status, 200);
  t.false(read.failed, read.error);
  t.is(read.digest, big(up).digest);
  t.true(read.firstByteMs !== undefined && read.firstByteMs < 2000, `first byte after ${read.firstByteMs?.toFixed(0)} ms`);
  t.is(up.proxy.blobGets(big(up).digest), 1);
});

test.serial('manifests by digest and cached blobs are served without asking the upstream', async (t) => {
  const { up, mirror } = await world(t, { tagTtlMs: 0 });
  await warm(t, up, mirror);
  up.proxy.reset();
  const byDigest = await getManifest(mirror.url, `/v2/library/multi/manifests/${up.multi.digest}`);
  t.is(byDigest.status, 200);
  t.true(byDigest.body.equals(up.multi.manifest), 'the exact manifest bytes');
  for (const b of up.multi.blobs) t.is((await timedGet(mirror.url, blobPath(up, b.digest))).digest, b.digest);
  t.deepEqual(
    up.proxy.requests.map((r) => `${r.method} ${r.url}`),
    [],
    'the upstream was asked',
  );
});

test.serial('a tag older than its TTL (0: every request) is revalidated with a HEAD, not a GET', async (t) => {
  const { up, mirror } = await world(t, { tagTtlMs: 0 });
  await warm(t, up, mirror);
  up.proxy.reset();
  const byTag = await getManifest(mirror.url, '/v2/library/multi/manifests/v1');
  t.is(byTag.status, 200);
  const asked = up.proxy.requests.filter((r) => r.url.includes('/manifests/')).map((r) => `${r.method} ${r.url}`);
  t.log(`revalidating a tag (TTL 0) asked the upstream: ${asked.join(', ')}`);
  t.true(
    asked.some((r) => r.startsWith('HEAD /v2/library/multi/manifests/v1')),
    'a HEAD revalidates the tag',
  );
  t.false(
    asked.some((r) => r.startsWith('GET ')),
    'an unchanged tag is revalidated with HEAD, not GET',
  );
});

test.serial('a tag moved upstream is followed once its TTL has passed, and not before', async (t) => {
  const { up, mirror } = await world(t, { tagTtlMs: 3000 });
  const first = await getManifest(mirror.url, '/v2/library/busybox/manifests/latest');
  t.is(first.headers['docker-content-digest'], up.busybox.digest);
  const moved = await smallImage(`${up.label}-moved`, 'library/busybox', ['latest']);
  await up.push(moved);
  up.proxy.reset();
  const fresh = await getManifest(mirror.url, '/v2/library/busybox/manifests/latest');
  t.is(fresh.headers['docker-content-digest'], up.busybox.digest, 'within the TTL the cached tag answers');
  if (MIRROR_IMPL === 'tsbuild')
    t.deepEqual(
      up.proxy.requests.map((r) => `${r.method} ${r.url}`),
      [],
      'within the TTL the upstream is not asked',
    );
  await new Promise((r) => setTimeout(r, 3500));
  const after = await getManifest(mirror.url, '/v2/library/busybox/manifests/latest');
  t.is(after.status, 200);
  t.is(after.headers['docker-content-digest'], moved.digest, 'after the TTL the moved tag is followed');
  t.true(after.body.equals(moved.manifest));
});

tsbuildOnly('a restarted mirror serves its cache from the store with the upstream down', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.stop());
  const first = await mirrorOf(up);
  await warm(t, up, first);
  await first.close();
  await up.proxy.set({ refuse: true });
  const second = await mirrorOf(up, { storage: first.storage });
  t.teardown(() => second.close());
  const pull = await skopeoPull(second.host, 'library/multi:v1', 60_000);
  t.is(pull.code, 0, pull.stderr);
  t.deepEqual(layoutProblems(pull.dir, up.multi), []);
});
