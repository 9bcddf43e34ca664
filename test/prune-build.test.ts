/**
 * Disk lifecycle of the local store, measured with du: a build, then `rmi`, then `prune -a` gives back
 * at least 90% of what the build added; `system df` adds up to `du -sb` of the store; `rmi` deletes an
 * image's content once its last name goes, unless something else holds it (docker semantics).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { digestHex, type Digest } from '../oci/index.js';
import { Store } from '../store/index.js';
import { storeWithBusybox } from './helpers/build-compare.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { withDeadline } from './helpers/deadline.js';
import { tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

const withRunc = testWith(['runc']);

function du(path: string): number {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);
}

interface DfRow {
  Type: string;
  TotalCount: number;
  Size: number;
  Reclaimable: number;
}

async function df(root: string): Promise<DfRow[]> {
  const r = await tsbuild(root, ['system', 'df', '--format', 'json']);
  if (r.code !== 0) throw new Error(`system df: ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as DfRow);
}

/** df's total against du's: within 2% plus 256 KiB (directories and small metadata files du counts). */
function close(dfTotal: number, duTotal: number): boolean {
  return Math.abs(duTotal - dfTotal) <= duTotal * 0.02 + 256 * 1024;
}

const blobFile = (root: string, digest: string) => join(root, 'content', 'blobs', 'sha256', digestHex(digest as Digest));

withRunc('a build, rmi, prune -a: at least 90% of what the build added is given back; system df matches du along the way', async (t) => {
  const root = await storeWithBusybox();
  const context = tempDir('prune-ctx-');
  writeFileSync(join(context, 'file.txt'), 'x'.repeat(100_000));
  writeFileSync(
    join(context, 'Dockerfile'),
    [
      'FROM busybox',
      'RUN dd if=/dev/urandom of=/big bs=1M count=12 2>/dev/null && echo done > /small',
      'RUN --mount=type=cache,target=/cache dd if=/dev/urandom of=/cache/c bs=1M count=2 2>/dev/null',
      'COPY file.txt /file.txt',
      'RUN rm /small && dd if=/dev/urandom of=/more bs=1M count=3 2>/dev/null',
      '',
    ].join('\n'),
  );
  await tsbuild(root, ['images']); // the store as a fresh install leaves it (dirs made)
  const before = du(root);
  const built = await withDeadline(tsbuild(root, ['build', '--progress', 'plain', '-t', 'app:v1', context]), 180_000, 'the build');
  t.is(built.code, 0, built.stderr);
  const afterBuild = du(root);
  const added = afterBuild - before;
  t.true(added > 30 << 20, `the build added ${added} bytes (layers and unpacked layers)`);

  const rows = await df(root);
  const total = rows.reduce((n, r) => n + r.Size, 0);
  t.true(close(total, afterBuild), `system df ${total} vs du ${afterBuild}`);
  const images = rows.find((r) => r.Type === 'Images')!;
  const cache = rows.find((r) => r.Type === 'Build Cache')!;
  t.is(images.TotalCount, 2, 'busybox and app:v1');
  t.true(cache.Size > 0 && cache.Reclaimable === cache.Size);

  const rmi = await tsbuild(root, ['rmi', 'app:v1']);
  t.is(rmi.code, 0, rmi.stderr);
  t.regex(rmi.stdout, /Untagged: app:v1/);
  const afterRmi = du(root);
  t.true(
    close(
      (await df(root)).reduce((n, r) => n + r.Size, 0),
      afterRmi,
    ),
    'system df still matches du',
  );

  const prune = await withDeadline(tsbuild(root, ['prune', '-a', '-f']), 120_000, 'prune -a');
  t.is(prune.code, 0, prune.stderr);
  t.regex(prune.stdout, /Total reclaimed space: /);
  const afterPrune = du(root);
  const freed = afterBuild - afterPrune;
  t.log(`du: ${before} before, ${afterBuild} after the build, ${afterRmi} after rmi, ${afterPrune} after prune -a; system df after the build: ${total}`);
  t.true(freed >= 0.9 * added, `prune gave back ${freed} of the ${added} bytes the build added (${Math.round((freed / added) * 100)}%)`);
  t.true(
    close(
      (await df(root)).reduce((n, r) => n + r.Size, 0),
      afterPrune,
    ),
    'system df matches du after prune',
  );

  // the base image is untouched and still builds
  const images2 = await tsbuild(root, ['images', '-q']);
  t.is(images2.stdout.trim().split('\n').length, 1);
  const again = await withDeadline(tsbuild(root, ['build', '-q', '-t', 'app:v2', context]), 180_000, 'the build after prune');
  t.is(again.code, 0, again.stderr);
});

test("rmi deletes an image's content once its last name goes, keeping what another image or a repository holds", async (t) => {
  const root = join(tempDir('rmi-'), 'root');
  const store = await Store.open(root);
  const fixture = await makeBusyboxImage(store, 'one:v1');
  const manifest = fixture.digest as string;
  const configDigest = fixture.manifest.config.digest as string;
  const own = [manifest, configDigest];
  const layer = fixture.manifest.layers[0]!.digest as string;
  // the layer is also in a registry repository, held there by a manifest
  const other = await store.blobs.put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: 1 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 1 }],
    }),
  );
  await store.repositories.linkManifest('repo/keep', { digest: other.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: other.size });
  t.is((await tsbuild(root, ['tag', 'one:v1', 'two:v1'])).code, 0);

  const first = await tsbuild(root, ['rmi', 'one:v1']);
  t.is(first.code, 0, first.stderr);
  t.notRegex(first.stdout, /Deleted/);
  for (const d of [...own, layer]) t.true(existsSync(blobFile(root, d)), 'another name still points at the image');

  const second = await tsbuild(root, ['rmi', 'two:v1']);
  t.is(second.code, 0, second.stderr);
  // docker's lines: the name, then the image id (the config digest), not the manifest digest
  t.regex(second.stdout, new RegExp(`Untagged: two:v1\\nDeleted: ${configDigest}`));
  t.false(existsSync(blobFile(root, manifest)), 'the manifest nothing else holds is gone');
  t.true(existsSync(blobFile(root, layer)), 'the layer a repository manifest holds stays');
  t.true(existsSync(blobFile(root, configDigest)), 'so does the config it references');
});

test('prune refuses what it cannot do in one line: an unknown filter, a bad size, a bad duration', async (t) => {
  const root = join(tempDir('prune-flags-'), 'root');
  mkdirSync(root, { recursive: true });
  for (const [args, message] of [
    [['--filter', 'label=x'], /--filter "label=x" is not supported: use --filter until=DURATION/],
    [['--keep-storage', 'lots'], /--keep-storage "lots" is not a size/],
    [['--filter', 'until=soon'], /--filter until "soon" is not a duration/],
  ] as const) {
    const r = await tsbuild(root, ['prune', '-f', ...args]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
});
