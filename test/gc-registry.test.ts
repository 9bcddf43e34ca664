/**
 * Registry garbage collection: two images sharing a base, one deleted through the API; `tsbuild registry
 * garbage-collect` run beside the serving registry deletes exactly the deleted image's own blobs, and the
 * other image still pulls with skopeo. Also: --dry-run changes nothing, a tag deleted through the API
 * with --delete-untagged, pins, the periodic online GC and its metrics.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { digestHex, type Digest } from '../oci/index.js';
import { Store } from '../store/index.js';
import { withDeadline } from './helpers/deadline.js';
import { busyboxImage, layoutProblems, metricValue, pushImageHttp, skopeoPull, type SeededImage } from './helpers/mirror-upstream.js';
import { startTestRegistry, type TestRegistry } from './helpers/registry-http.js';
import { tsbuild } from './helpers/run.js';
import { testWith } from './helpers/tools.js';

const test = testWith(['skopeo']);

const blobFile = (root: string, digest: string) => join(root, 'content', 'blobs', 'sha256', digestHex(digest as Digest));

/** Two images pushed to `reg`: both share the busybox rootfs layer; each has its own config, label layer and manifest. */
async function twoImages(reg: TestRegistry, label: string): Promise<{ one: SeededImage; two: SeededImage; shared: string; ownOfOne: string[] }> {
  const one = await busyboxImage(`${label}-one`, 'gc/one', ['v1']);
  const two = await busyboxImage(`${label}-two`, 'gc/two', ['v1']);
  await pushImageHttp(reg.url, one);
  await pushImageHttp(reg.url, two);
  const shared = one.layers[0]!.digest;
  if (shared !== two.layers[0]!.digest) throw new Error('the fixtures should share their base layer');
  return { one, two, shared, ownOfOne: [one.digest, one.config.digest, one.layers[1]!.digest] };
}

test('a manifest deleted through the API: garbage-collect beside the running registry removes exactly its own blobs; the other image still pulls', async (t) => {
  const reg = await startTestRegistry();
  t.teardown(() => reg.close());
  const root = reg.server.store.root;
  const { one, two, shared, ownOfOne } = await twoImages(reg, 'delete');
  const del = await reg.call('DELETE', `/v2/gc/one/manifests/${one.digest}`);
  t.is(del.status, 202);

  const dry = await withDeadline(
    tsbuild(root, ['registry', 'garbage-collect', '--storage', root, '--grace-period', '0s', '--dry-run']),
    60_000,
    'gc --dry-run',
  );
  t.is(dry.code, 0, dry.stderr);
  t.deepEqual(
    dry.stdout
      .split('\n')
      .filter((l) => l.startsWith('blob eligible'))
      .map((l) => l.split(': ')[1])
      .sort(),
    [...ownOfOne].sort(),
  );
  for (const d of ownOfOne) t.true(existsSync(blobFile(root, d)), `a dry run deletes nothing (${d})`);

  const gc = await withDeadline(tsbuild(root, ['registry', 'garbage-collect', '--storage', root, '--grace-period', '0s']), 60_000, 'gc');
  t.is(gc.code, 0, gc.stderr);
  t.regex(gc.stdout, /3 blobs and 0 manifests deleted/);
  for (const d of ownOfOne) t.false(existsSync(blobFile(root, d)), `the deleted image's own blob ${d} is gone`);
  for (const d of [shared, two.digest, ...two.blobs.map((b) => b.digest)]) t.true(existsSync(blobFile(root, d)), `${d} stays`);

  const pull = await skopeoPull(reg.host, 'gc/two:v1', 60_000);
  t.is(pull.code, 0, pull.stderr);
  t.deepEqual(layoutProblems(pull.dir, two), []);
  t.is((await reg.call('GET', `/v2/gc/one/blobs/${one.config.digest}`)).status, 404);
});

test('a tag deleted through the API: with --delete-untagged its manifest and own blobs go; without it they stay', async (t) => {
  const reg = await startTestRegistry();
  t.teardown(() => reg.close());
  const root = reg.server.store.root;
  const { one, two, ownOfOne } = await twoImages(reg, 'untag');
  const del = await reg.call('DELETE', `/v2/gc/one/manifests/v1`);
  t.is(del.status, 202, del.body.toString());

  const keep = await tsbuild(root, ['registry', 'garbage-collect', '--storage', root, '--grace-period', '0s']);
  t.is(keep.code, 0, keep.stderr);
  for (const d of ownOfOne) t.true(existsSync(blobFile(root, d)), 'an untagged manifest is still a root without --delete-untagged');

  const gc = await tsbuild(root, ['registry', 'garbage-collect', '--storage', root, '--grace-period', '0s', '--delete-untagged']);
  t.is(gc.code, 0, gc.stderr);
  t.regex(gc.stdout, new RegExp(`manifest deleted: gc/one@${one.digest}`));
  for (const d of ownOfOne) t.false(existsSync(blobFile(root, d)));
  t.is(await reg.server.store.repositories.getManifestLink('gc/one', one.digest as Digest), undefined);
  // the registry's manifest cache (cache.manifest-ttl, 5 s) may answer a little longer, never past its TTL
  await withDeadline(
    (async () => {
      while ((await reg.call('GET', `/v2/gc/one/manifests/${one.digest}`)).status !== 404) await new Promise((r) => setTimeout(r, 200));
    })(),
    10_000,
    'the unlinked manifest answering 404',
  );
  const pull = await skopeoPull(reg.host, 'gc/two:v1', 60_000);
  t.is(pull.code, 0, pull.stderr);
  t.deepEqual(layoutProblems(pull.dir, two), []);
});

test('the grace period spares a deleted image deleted just now; a pin holds an untagged manifest', async (t) => {
  const reg = await startTestRegistry();
  t.teardown(() => reg.close());
  const root = reg.server.store.root;
  const { one, ownOfOne } = await twoImages(reg, 'grace');
  t.is((await reg.call('DELETE', `/v2/gc/one/manifests/v1`)).status, 202);
  const young = await tsbuild(root, ['registry', 'garbage-collect', '--storage', root, '--grace-period', '1h', '--delete-untagged']);
  t.is(young.code, 0, young.stderr);
  for (const d of ownOfOne) t.true(existsSync(blobFile(root, d)), 'linked within the grace period');

  const store = await Store.open(root, { noSweep: true });
  // a digest pin, as `tsbuild mirror pin` writes it (registry/mirror/pins.ts)
  await store.driver.putContent(
    'mirror/pins.json',
    JSON.stringify({ version: 1, pins: [{ reference: `gc/one@${one.digest}`, repository: 'gc/one', digest: one.digest, pinned: new Date().toISOString() }] }),
  );
  const pinned = await tsbuild(root, ['registry', 'garbage-collect', '--storage', root, '--grace-period', '0s', '--delete-untagged']);
  t.is(pinned.code, 0, pinned.stderr);
  for (const d of ownOfOne) t.true(existsSync(blobFile(root, d)), `a pinned manifest holds ${d}`);
});

test('the periodic online GC (gc.interval) collects a deleted image; /metrics shows bytes reclaimed, duration and objects swept', async (t) => {
  // a grace period longer than a push (blob uploads → manifest): with none, a GC between them takes the blobs
  const reg = await startTestRegistry({ gc: { intervalMs: 150, graceMs: 1500 } });
  t.teardown(() => reg.close());
  const root = reg.server.store.root;
  const { one, ownOfOne } = await twoImages(reg, 'online');
  t.is((await reg.call('DELETE', `/v2/gc/one/manifests/${one.digest}`)).status, 202);
  const bytes = one.manifest.length + one.config.size + one.layers[1]!.size;
  await withDeadline(
    (async () => {
      while (ownOfOne.some((d) => existsSync(blobFile(root, d)))) await new Promise((r) => setTimeout(r, 50));
    })(),
    20_000,
    'the online GC deleting the image',
  );
  let metrics = '';
  await withDeadline(
    (async () => {
      for (;;) {
        metrics = (await reg.call('GET', '/metrics')).body.toString();
        if (metricValue(metrics, 'tsbuild_gc_bytes_reclaimed_total') >= bytes) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    })(),
    10_000,
    'the metrics',
  );
  t.is(metricValue(metrics, 'tsbuild_gc_bytes_reclaimed_total'), bytes);
  t.is(metricValue(metrics, 'tsbuild_gc_objects_swept_total', { kind: 'blob' }), 3);
  t.true(metricValue(metrics, 'tsbuild_gc_last_duration_seconds') > 0);
  t.true(metricValue(metrics, 'tsbuild_gc_last_run_timestamp_seconds') > 0);
  t.true(metricValue(metrics, 'tsbuild_gc_runs_total', { result: 'ok' }) >= 1);
});
