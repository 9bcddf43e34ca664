/**
 * Single flight (issue 12): concurrent cold pulls of one image share one upstream fetch per blob, every
 * client streamed from the bytes already there, and a client that leaves does not cancel the fetch for
 * the others. Upstream fetches are counted at the fault proxy in front of the upstream distribution.
 */
import http from 'node:http';
import {
  getManifest,
  layoutProblems,
  mirrorOf,
  MIRROR_IMPL,
  skopeoPull,
  startUpstream,
  timedGet,
  type RunningMirror,
  type Upstream,
} from './helpers/mirror-upstream.js';
import { testWith } from './helpers/tools.js';
import type { ExecutionContext } from 'ava';

const test = testWith(['docker-registry', 'skopeo']);
const PULLS = 8;

async function world(t: ExecutionContext): Promise<{ up: Upstream; mirror: RunningMirror }> {
  const up = await startUpstream();
  t.teardown(() => up.stop());
  const mirror = await mirrorOf(up);
  t.teardown(() => mirror.close());
  return { up, mirror };
}

test.serial(`${PULLS} concurrent cold skopeo pulls of a 4-layer image all succeed and fetch each blob from upstream exactly once`, async (t) => {
  const { up, mirror } = await world(t);
  // A 4 MiB/s link: the cold fetches take ~2.5 s, so the pulls overlap them (a fetch finished before the
  // next pull starts would make coalescing untested).
  await up.proxy.set({ rateBytesPerSecond: 4 << 20 });
  const pulls = await Promise.all(Array.from({ length: PULLS }, () => skopeoPull(mirror.host, 'library/multi:v1', 120_000)));
  pulls.forEach((p, i) => {
    t.is(p.code, 0, `pull ${i}: ${p.stderr}`);
    if (p.code === 0) t.deepEqual(layoutProblems(p.dir, up.multi), [], `pull ${i}`);
  });
  const fetches = up.multi.blobs.map((b) => `${b.digest.slice(7, 19)} (${b.size} B): ${up.proxy.blobGets(b.digest)}`);
  t.log(`upstream GETs per blob: ${fetches.join(', ')}; pull times ${pulls.map((p) => (p.ms / 1000).toFixed(1)).join(' ')} s`);
  for (const b of up.multi.blobs)
    t.is(up.proxy.blobGets(b.digest), 1, `blob ${b.digest} (${b.size} bytes) fetched from upstream ${up.proxy.blobGets(b.digest)} times`);
  const blobBytes = up.multi.blobs.reduce((a, b) => a + b.size, 0);
  const moved = up.multi.blobs.reduce((a, b) => a + up.proxy.bytesOut(b.digest), 0);
  t.is(moved, blobBytes, `upstream blob bytes ${moved}, the image's blobs are ${blobBytes}`);
  if (MIRROR_IMPL === 'tsbuild') {
    const coalesced = await mirror.metric('tsbuild_mirror_requests_total', { upstream: 'docker.io', result: 'coalesced' });
    const misses = await mirror.metric('tsbuild_mirror_requests_total', { upstream: 'docker.io', result: 'miss' });
    const upstreamBytes = await mirror.metric('tsbuild_mirror_upstream_bytes_total', { upstream: 'docker.io' });
    t.log(`metrics: miss ${misses}, coalesced ${coalesced}, upstream bytes ${upstreamBytes}`);
    t.true(coalesced >= 1, 'coalesced requests are counted');
    t.true(upstreamBytes >= blobBytes, `tsbuild_mirror_upstream_bytes_total ${upstreamBytes} < ${blobBytes}`);
  }
  // Warm now: another pull asks the upstream for no blob.
  const again = await skopeoPull(mirror.host, 'library/multi:v1');
  t.is(again.code, 0, again.stderr);
  for (const b of up.multi.blobs) t.is(up.proxy.blobGets(b.digest), 1, `a warm pull fetched ${b.digest} again`);
  if (MIRROR_IMPL === 'tsbuild')
    t.true((await mirror.metric('tsbuild_mirror_requests_total', { upstream: 'docker.io', result: 'hit' })) >= 1, 'hits are counted');
});

test.serial(`${PULLS} concurrent GETs of a cold 8 MiB layer behind a 1 MiB/s link: all streamed at once, all right, one upstream fetch`, async (t) => {
  const { up, mirror } = await world(t);
  const big = up.multi.layers[1]!;
  t.is((await getManifest(mirror.url, '/v2/library/multi/manifests/v1')).status, 200);
  await up.proxy.set({ rateBytesPerSecond: 1 << 20 });
  const reads = await Promise.all(
    Array.from({ length: PULLS }, async (_, i) => {
      // Staggered over the first 2 s: late clients join a fetch under way and get its bytes from the start.
      await new Promise((r) => setTimeout(r, i * 250));
      return timedGet(mirror.url, `/v2/library/multi/blobs/${big.digest}`, {}, 60_000);
    }),
  );
  t.log(
    `first bytes after ${reads.map((r) => r.firstByteMs?.toFixed(0)).join(', ')} ms; done after ${reads.map((r) => (r.totalMs / 1000).toFixed(1)).join(', ')} s`,
  );
  reads.forEach((r, i) => {
    t.is(r.status, 200, `client ${i}`);
    t.false(r.failed, `client ${i}: ${r.error}`);
    t.is(r.digest, big.digest, `client ${i} got wrong bytes`);
    t.true(
      r.firstByteMs !== undefined && r.firstByteMs < 2000,
      `client ${i}: first byte after ${r.firstByteMs?.toFixed(0)} ms (streamed from the bytes already there, not after the fetch)`,
    );
  });
  t.is(up.proxy.blobGets(big.digest), 1, 'one upstream fetch for all clients');
});

test.serial('a client that disconnects does not cancel the fetch for the others', async (t) => {
  const { up, mirror } = await world(t);
  const big = up.multi.layers[1]!;
  t.is((await getManifest(mirror.url, '/v2/library/multi/manifests/v1')).status, 200);
  await up.proxy.set({ rateBytesPerSecond: 2 << 20 });
  const url = new URL(mirror.url);
  // The first client leaves after its first bytes.
  const leaver = new Promise<number>((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port, path: `/v2/library/multi/blobs/${big.digest}`, agent: false }, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 256 * 1024) {
          req.destroy();
          resolve(got);
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', (e) => (/socket hang up|aborted/.test(e.message) ? undefined : reject(e)));
    setTimeout(() => reject(new Error('the leaving client got no bytes within 20 s')), 20_000).unref();
  });
  await new Promise((r) => setTimeout(r, 300));
  const stayer = timedGet(mirror.url, `/v2/library/multi/blobs/${big.digest}`, {}, 60_000);
  t.true((await leaver) > 0);
  const read = await stayer;
  t.is(read.status, 200);
  t.false(read.failed, read.error);
  t.is(read.digest, big.digest);
  t.is(up.proxy.blobGets(big.digest), 1, 'the fetch went on once, for the staying client');
  // And it was committed: served with the upstream gone.
  await up.proxy.set({ refuse: true, rateBytesPerSecond: undefined });
  const cached = await timedGet(mirror.url, `/v2/library/multi/blobs/${big.digest}`, {}, 20_000);
  t.is(cached.digest, big.digest);
});
