/**
 * What `prune` takes from the build cache (records under <root>/cache/build, as builder/cache/format.ts
 * writes them): without -a only records whose layer no image uses; --filter until= spares young ones;
 * -a takes the rest but never what a named image holds; --keep-storage keeps the newest records that fit.
 * A record holds its layer blob until it is pruned. Also `system df` counting them.
 */
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import test from 'ava';
import { digestHex, type Digest } from '../oci/index.js';
import { Store } from '../store/index.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';

const HOUR = 3_600_000;

/** A cache record for a layer blob of `size` random bytes, its file dated `ageMs` ago. */
async function record(store: Store, ageMs: number, size = 4096, layer?: Digest): Promise<{ file: string; layer: Digest }> {
  const digest = layer ?? (await store.blobs.put(randomBytes(size))).digest;
  const dir = join(store.root, 'cache', 'build');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, createHash('sha256').update(randomBytes(8)).digest('hex'));
  writeFileSync(
    file,
    JSON.stringify({ layer: { descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size }, diffID: digest }, emptyLayer: false }),
  );
  const when = new Date(Date.now() - ageMs);
  utimesSync(file, when, when);
  const blob = join(store.root, 'content', 'blobs', 'sha256', digestHex(digest));
  utimesSync(blob, when, when);
  return { file, layer: digest };
}

const has = (store: Store, d: Digest) => existsSync(join(store.root, 'content', 'blobs', 'sha256', digestHex(d)));

test('prune: dangling records only (until= spares young ones), -a all but what an image holds; their layers go with them', async (t) => {
  const root = join(tempDir('prune-cache-'), 'root');
  const store = await Store.open(root);
  const image = await makeBusyboxImage(store, 'base:v1');
  const baseLayer = image.manifest.layers[0]!.digest as Digest;
  const old = await record(store, 2 * HOUR);
  const young = await record(store, 0);
  const ofImage = await record(store, 2 * HOUR, 0, baseLayer);

  const df = async () => JSON.parse((await tsbuild(root, ['system', 'df', '--format', 'json'])).stdout.split('\n')[1]!) as { Type: string; TotalCount: number };
  t.is((await df()).TotalCount, 3);

  const until = await tsbuild(root, ['prune', '-f', '--filter', 'until=1h']);
  t.is(until.code, 0, until.stderr);
  t.false(existsSync(old.file));
  t.false(has(store, old.layer), "the old dangling record's layer is gone with it");
  t.true(existsSync(young.file) && has(store, young.layer), 'younger than until=1h');
  t.true(existsSync(ofImage.file), "its layer is an image's: not dangling");

  const plain = await tsbuild(root, ['prune', '-f']);
  t.is(plain.code, 0, plain.stderr);
  t.false(existsSync(young.file));
  t.false(has(store, young.layer));
  t.true(existsSync(ofImage.file));

  const all = await tsbuild(root, ['prune', '-a', '-f']);
  t.is(all.code, 0, all.stderr);
  t.false(existsSync(ofImage.file));
  t.true(has(store, baseLayer), 'the named image still holds its layer');
  t.is((await df()).TotalCount, 0);
  t.is((await tsbuild(root, ['images', '-q'])).stdout.trim().split('\n').length, 1);
});

test('prune --keep-storage keeps the newest records that fit and removes the oldest first', async (t) => {
  const root = join(tempDir('prune-keep-'), 'root');
  const store = await Store.open(root);
  const oldest = await record(store, 3 * HOUR, 1 << 20);
  const middle = await record(store, 2 * HOUR, 1 << 20);
  const newest = await record(store, 1 * HOUR, 1 << 20);
  const r = await tsbuild(root, ['prune', '-a', '-f', '--keep-storage', '2.5MB']);
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(oldest.file));
  t.false(has(store, oldest.layer));
  t.true(existsSync(middle.file) && existsSync(newest.file), '2 MiB fits in 2.5 MB');
  t.true(has(store, middle.layer) && has(store, newest.layer));
  t.regex(r.stdout, /Total reclaimed space: 1\.0\dMB/);
});

test('prune deletes a blob nothing holds at once, but not one a registry push linked within the hour (its manifest may follow)', async (t) => {
  const root = join(tempDir('prune-push-'), 'root');
  const store = await Store.open(root);
  const pushed = await store.blobs.put(randomBytes(1000));
  await store.repositories.linkBlob('team/app', pushed.digest);
  const loose = await store.blobs.put(randomBytes(1000));
  const r = await tsbuild(root, ['prune', '-a', '-f']);
  t.is(r.code, 0, r.stderr);
  t.true(has(store, pushed.digest));
  t.false(has(store, loose.digest));
});

test('while a build runs (its lease), prune keeps the build cache and everything written since the build began', async (t) => {
  const root = join(tempDir('prune-lease-'), 'root');
  const store = await Store.open(root);
  const before = await record(store, 2 * HOUR); // an old dangling record and its layer
  const oldLoose = (await store.blobs.put(randomBytes(100))).digest;
  utimesSync(join(root, 'content', 'blobs', 'sha256', digestHex(oldLoose)), new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR));
  // a build in another process: a live pid holding a lease that began a minute ago
  const { spawn } = await import('node:child_process');
  const builder = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => void builder.kill());
  mkdirSync(join(root, 'leases'), { recursive: true });
  writeFileSync(join(root, 'leases', `${builder.pid}-abcd1234`), JSON.stringify({ pid: builder.pid, startedAt: Date.now() - 60_000, purpose: 'build' }));
  const written = (await store.blobs.put(randomBytes(100))).digest; // the build's layer, not named yet

  const r = await tsbuild(root, ['prune', '-a', '-f']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /a build is running: its build cache and unpacked layers were kept/);
  t.true(existsSync(before.file) && has(store, before.layer), 'build cache untouched while a build runs');
  t.true(has(store, written), 'written since the build began');
  t.false(has(store, oldLoose), 'older garbage still goes');

  builder.kill();
  await new Promise((resolve) => builder.once('exit', resolve));
  const after = await tsbuild(root, ['prune', '-a', '-f']);
  t.is(after.code, 0, after.stderr);
  t.false(existsSync(before.file), 'the build gone, its lease counts for nothing');
  t.false(has(store, written));
});
