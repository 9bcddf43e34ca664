/**
 * The registry's manifest cache: least recently used entries go first when it is full (by entries or by
 * bytes), a full cache never empties itself, the TTL bounds staleness without being extended by reads,
 * and dropping a manifest drops that repository's cached tags only.
 */
import test from 'ava';
import { digestOf, MediaType, type Digest } from '../oci/index.js';
import { ManifestCache, type CachedManifest } from '../registry/index.js';

function manifest(seed: string, size = 100): CachedManifest {
  const bytes = Buffer.alloc(size, seed);
  return { digest: digestOf(bytes), mediaType: MediaType.ociManifest, bytes };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('over capacity, the least recently used entries go and recently used ones stay', (t) => {
  const cache = new ManifestCache(60, { maxEntries: 10 });
  const ms = Array.from({ length: 15 }, (_, i) => manifest(`m${i}`));
  for (const m of ms.slice(0, 10)) cache.setManifest('app', m);
  t.is(cache.size, 10);
  // touch the first five: the other five become the least recently used
  for (const m of ms.slice(0, 5)) t.is(cache.manifest('app', m.digest)?.digest, m.digest);
  for (const m of ms.slice(10)) cache.setManifest('app', m);
  t.is(cache.size, 10);
  for (const m of [...ms.slice(0, 5), ...ms.slice(10)]) t.truthy(cache.manifest('app', m.digest), `${m.digest} kept`);
  for (const m of ms.slice(5, 10)) t.is(cache.manifest('app', m.digest), undefined, `${m.digest} evicted`);
});

test('a full cache takes a new entry by evicting one, not by emptying itself', (t) => {
  const cache = new ManifestCache(60, { maxEntries: 1000 });
  const m = manifest('full', 50);
  for (let i = 0; i < 1000; i++) cache.setTag('app', `t${i}`, m.digest);
  t.is(cache.size, 1000);
  cache.setManifest('app', m);
  t.is(cache.size, 1000);
  t.truthy(cache.manifest('app', m.digest));
  // only the least recently used tag went
  t.is(cache.tag('app', 't0'), undefined);
  let hits = 0;
  for (let i = 1; i < 1000; i++) if (cache.tag('app', `t${i}`) === m.digest) hits++;
  t.is(hits, 999);
});

test('the byte bound evicts least recently used manifests; manifests over 64 KiB are not kept', (t) => {
  const cache = new ManifestCache(60, { maxBytes: 20 * 1024 });
  const ms = Array.from({ length: 30 }, (_, i) => manifest(`b${i}`, 1024));
  for (const m of ms) {
    cache.setManifest('app', m);
    t.truthy(cache.manifest('app', ms[0]!.digest), 'the first one is read after each set, so it stays');
  }
  t.true(cache.bytes <= 20 * 1024);
  t.true(cache.size >= 15 && cache.size < 30, `${cache.size} entries`);
  t.truthy(cache.manifest('app', ms[29]!.digest));
  t.is(cache.manifest('app', ms[1]!.digest), undefined);

  const big = manifest('big', 64 * 1024 + 1);
  const unbounded = new ManifestCache(60);
  unbounded.setManifest('app', big);
  t.is(unbounded.manifest('app', big.digest), undefined);
  const limit = manifest('limit', 64 * 1024);
  unbounded.setManifest('app', limit);
  t.deepEqual(unbounded.manifest('app', limit.digest)?.bytes, limit.bytes);
});

test('dropManifest drops the manifest and the repository’s cached tags, not other repositories’', (t) => {
  const cache = new ManifestCache(60, { maxEntries: 100 });
  const a = manifest('a');
  const b = manifest('b');
  for (const name of ['app', 'app/sub', 'other']) {
    cache.setManifest(name, a);
    cache.setManifest(name, b);
    cache.setTag(name, 'v1', a.digest);
    cache.setTag(name, 'v2', b.digest);
  }
  cache.dropManifest('app', a.digest);
  t.is(cache.manifest('app', a.digest), undefined);
  t.is(cache.tag('app', 'v1'), undefined);
  t.is(cache.tag('app', 'v2'), undefined);
  t.truthy(cache.manifest('app', b.digest));
  for (const name of ['app/sub', 'other']) {
    t.is(cache.tag(name, 'v1'), a.digest, name);
    t.truthy(cache.manifest(name, a.digest), name);
  }
  // tags set again after the drop are dropped again by the next one
  cache.setTag('app', 'v3', b.digest);
  cache.dropManifest('app', b.digest);
  t.is(cache.tag('app', 'v3'), undefined);
  cache.dropTag('other', 'v2');
  t.is(cache.tag('other', 'v2'), undefined);
  t.is(cache.tag('other', 'v1'), a.digest);
});

test('tags evicted or expired leave the cache consistent for later drops', (t) => {
  const cache = new ManifestCache(60, { maxEntries: 5 });
  const m = manifest('x');
  for (let i = 0; i < 20; i++) cache.setTag('app', `t${i}`, m.digest as Digest);
  t.is(cache.size, 5);
  cache.dropManifest('app', m.digest);
  t.is(cache.size, 0);
  cache.setTag('app', 'again', m.digest);
  t.is(cache.tag('app', 'again'), m.digest);
});

test('entries expire after the TTL; reads do not extend it; TTL 0 disables the cache', async (t) => {
  const cache = new ManifestCache(0.2);
  const m = manifest('ttl');
  cache.setManifest('app', m);
  cache.setTag('app', 'v1', m.digest);
  await sleep(120);
  t.truthy(cache.manifest('app', m.digest));
  t.is(cache.tag('app', 'v1'), m.digest);
  await sleep(120);
  t.is(cache.manifest('app', m.digest), undefined);
  t.is(cache.tag('app', 'v1'), undefined);

  const off = new ManifestCache(0);
  t.false(off.enabled);
  off.setManifest('app', m);
  off.setTag('app', 'v1', m.digest);
  t.is(off.manifest('app', m.digest), undefined);
  t.is(off.tag('app', 'v1'), undefined);
  off.dropManifest('app', m.digest);
  off.close();
  t.true(cache.enabled);
  cache.close();
  t.is(cache.size, 0);
});
