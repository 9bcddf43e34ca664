/**
 * A COPY's layer is committed reading only the xattrs of directories that exist below (overlay copied them
 * up with theirs; COPY itself sets none): the layer is byte for byte the one a full xattr dump gives.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allXattrFree, commitUpperDir, openSnapshots } from '../builder/snapshot/index.js';
import { mountWritable } from '../builder/solver/overlay.js';
import { Store } from '../store/index.js';
import { baseSnapshot, listLayer } from './helpers/layers.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

const test = testWith(['getfattr', 'setfattr']);

test('a COPY layer keeps the xattrs of copied-up directories and equals the layer of a full xattr read', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store, [[{ name: 'data/' }, { name: 'data/old.txt', body: 'old' }, { name: 'plain/' }]]);
  execFileSync('setfattr', ['-n', 'user.keep', '-v', 'kept', join(base.diffDir, 'data')]);
  const snapshots = await openSnapshots(store);
  const rootfs = await mountWritable(snapshots, base.chainId);
  try {
    // what a COPY does through the merged view: files into a directory from below, and a new tree
    writeFileSync(join(rootfs.merged, 'data', 'new.txt'), 'new');
    mkdirSync(join(rootfs.merged, 'app', 'files'), { recursive: true });
    writeFileSync(join(rootfs.merged, 'app', 'files', 'a.txt'), 'a');
    await rootfs.release();
    const partial = await commitUpperDir(store, { upper: rootfs.upper, lowers: rootfs.lowers, compression: 'none', xattrsOnCopiedUpDirsOnly: true });
    const full = await commitUpperDir(store, { upper: rootfs.upper, lowers: rootfs.lowers, compression: 'none' });
    t.is(partial.descriptor.digest, full.descriptor.digest);
    const entries = await listLayer(store, partial.descriptor);
    t.deepEqual(
      entries.map((e) => e.header.name),
      ['app/', 'app/files/', 'app/files/a.txt', 'data/', 'data/new.txt'],
    );
    t.is(
      entries
        .find((e) => e.header.name === 'data/')
        ?.header.xattrs?.get('user.keep')
        ?.toString(),
      'kept',
    );
  } finally {
    await rootfs.discard();
  }
});

test('snapshots are marked xattr-free only when they hold no kept xattr and no opaque marker', async (t) => {
  const store = await Store.open(tempDir());
  const top = await baseSnapshot(store, [
    [{ name: 'data/' }, { name: 'data/a.txt', body: 'a' }],
    [{ name: 'data/' }, { name: 'data/.wh..wh..opq' }, { name: 'data/b.txt', body: 'b' }],
  ]);
  const snapshots = await openSnapshots(store);
  const chain = (await snapshots.chain(top.chainId)).map((s) => s.chainId);
  t.is(chain.length, 3);
  t.true(await allXattrFree(store, chain.slice(1)), 'the base and the plain layer');
  t.false(await allXattrFree(store, chain), 'the layer with an opaque directory');
  t.true(await allXattrFree(store, []));

  // a commit says whether its upper dir holds anything that matters as a lower
  const plain = await mountWritable(snapshots, top.chainId);
  const marked = await mountWritable(snapshots, top.chainId);
  try {
    writeFileSync(join(plain.merged, 'data', 'c.txt'), 'c');
    writeFileSync(join(marked.merged, 'data', 'c.txt'), 'c');
    await plain.release();
    await marked.release();
    execFileSync('setfattr', ['-n', 'user.note', '-v', 'x', join(marked.upper, 'data', 'c.txt')]);
    t.true((await commitUpperDir(store, { upper: plain.upper, lowers: plain.lowers, compression: 'none' })).xattrFree);
    t.false((await commitUpperDir(store, { upper: marked.upper, lowers: marked.lowers, compression: 'none' })).xattrFree);
  } finally {
    await plain.discard();
    await marked.discard();
  }
});
