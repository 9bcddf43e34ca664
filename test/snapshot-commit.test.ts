import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commitUpperDir, openSnapshots, readXattrs, unpackLayer } from '../builder/snapshot/index.js';
import { runOnSnapshot } from '../builder/solver/overlay.js';
import { chainIdOf, Store, type Snapshot } from '../store/index.js';
import { baseSnapshot, listLayer, type FixtureEntry } from './helpers/layers.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

const test = testWith(['runc', 'getfattr', 'zstd']);

const dataLayer: FixtureEntry[] = [
  { name: 'data/' },
  { name: 'data/keep.txt', body: 'keep' },
  { name: 'data/del.txt', body: 'delete me' },
  { name: 'data/dir/' },
  { name: 'data/dir/a', body: 'a' },
  { name: 'data/dir/b', body: 'b' },
  { name: 'data/rename-me/' },
  { name: 'data/rename-me/f', body: 'f' },
  { name: 'data/chmod.txt', body: 'c', mode: 0o644 },
  { name: 'data/sub/' },
  { name: 'data/sub/deep/' },
  { name: 'data/sub/deep/file.txt', body: 'deep' },
];

async function step(store: Store, lower: Snapshot, script: string, after?: (upper: string) => void) {
  const snapshots = await openSnapshots(store);
  const upper = await snapshots.tempDir('upper');
  let output = '';
  const { exitCode } = await runOnSnapshot(store, {
    lowers: lower.chainId,
    upperDir: upper,
    args: ['/bin/sh', '-c', script],
    network: 'none',
    onStdout: (d) => (output += d),
    onStderr: (d) => (output += d),
  });
  if (exitCode !== 0) throw new Error(`step failed (${exitCode}): ${output}`);
  after?.(upper);
  const lowers = (await snapshots.chain(lower.chainId)).map((s) => s.diffDir);
  return { upper, lowers };
}

test('a RUN step becomes exactly the expected layer: whiteouts, opaque dir, hardlink, xattr, no stubs, no unchanged parents', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store, [dataLayer]);
  const script = [
    'echo new > /data/new.txt',
    'rm /data/del.txt',
    'rm -rf /data/dir && mkdir /data/dir && echo c > /data/dir/c',
    'mv /data/rename-me /data/renamed',
    'chmod 600 /data/chmod.txt',
    'ln /data/new.txt /data/new-link',
    'echo more >> /data/sub/deep/file.txt',
    'mkdir -p /fresh/tree && echo x > /fresh/tree/x && rm -rf /fresh/tree',
  ].join(' && ');
  const { upper, lowers } = await step(store, base, script, (u) => execFileSync('setfattr', ['-n', 'user.note', '-v', 'hello', join(u, 'data/new.txt')]));
  const result = await commitUpperDir(store, { upper, lowers, sourceDateEpoch: 1_700_000_000 });
  t.false(result.emptyLayer);
  const entries = await listLayer(store, result.descriptor);
  const names = entries.map((e) => `${e.header.type} ${e.header.name}${e.header.linkname ? ` -> ${e.header.linkname}` : ''}`);
  t.deepEqual(names, [
    'directory data/',
    'file data/chmod.txt',
    'file data/.wh.del.txt',
    'directory data/dir/',
    'file data/dir/.wh..wh..opq',
    'file data/dir/c',
    'file data/new-link',
    'hardlink data/new.txt -> data/new-link',
    'file data/.wh.rename-me',
    'directory data/renamed/',
    'file data/renamed/f',
    'file data/sub/deep/file.txt',
    'directory fresh/',
  ]);
  const byName = new Map(entries.map((e) => [e.header.name, e]));
  t.is(byName.get('data/chmod.txt')!.header.mode, 0o600);
  t.is(byName.get('data/sub/deep/file.txt')!.body, 'deepmore\n');
  t.is(byName.get('data/new-link')!.header.xattrs?.get('user.note')?.toString(), 'hello');
  t.true(
    entries.every((e) => e.header.mtime <= 1_700_000_000),
    'SOURCE_DATE_EPOCH clamps every mtime',
  );
  t.true(entries.every((e) => !e.header.xattrs || [...e.header.xattrs.keys()].every((k) => !k.startsWith('trusted.overlay.'))));
  // GNU tar reads it too
  const listing = execFileSync('tar', ['-tzf', store.blobFile(result.descriptor.digest)!])
    .toString()
    .trim()
    .split('\n');
  t.is(listing.length, names.length);
});

test('the layer applies back onto the lowers to give the merged view', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store, [dataLayer]);
  const { upper, lowers } = await step(
    store,
    base,
    'rm -rf /data/dir && mkdir /data/dir && echo c > /data/dir/c && rm /data/del.txt && ln -s keep.txt /data/sym',
  );
  const result = await commitUpperDir(store, { upper, lowers, compression: 'none' });
  t.is(result.descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  const rootfs = tempDir();
  for (const lower of [...lowers].reverse()) execFileSync('cp', ['-a', `${lower}/.`, rootfs]);
  await unpackLayer(await store.blobs.read(result.descriptor.digest), rootfs, { mode: 'apply', expectedDiffId: result.diffId });
  t.false(existsSync(join(rootfs, 'data/del.txt')));
  t.false(existsSync(join(rootfs, 'data/dir/a')));
  t.is(readFileSync(join(rootfs, 'data/dir/c'), 'utf8'), 'c\n');
  t.is(readFileSync(join(rootfs, 'data/sym'), 'utf8'), 'keep');
});

test('two commits of the same step with SOURCE_DATE_EPOCH give the same digest', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store, [dataLayer]);
  const script = 'mkdir -p /out/a && echo hi > /out/a/f && ln /out/a/f /out/a/g && rm /data/keep.txt && chmod 700 /data/sub';
  const digests: string[] = [];
  for (let i = 0; i < 2; i++) {
    const { upper, lowers } = await step(store, base, script);
    const r = await commitUpperDir(store, { upper, lowers, sourceDateEpoch: 1_000_000 });
    digests.push(`${r.descriptor.digest} ${r.diffId}`);
    await new Promise((r) => setTimeout(r, 1100)); // make the second run's times differ
  }
  t.is(digests[0], digests[1]);
});

test('a step that changes nothing is an empty layer; security.* other than capability is dropped', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store);
  const { upper, lowers } = await step(store, base, 'true');
  const r = await commitUpperDir(store, { upper, lowers });
  t.true(r.emptyLayer);
  const { upper: u2, lowers: l2 } = await step(store, base, 'echo x > /f', (u) => {
    execFileSync('setfattr', ['-n', 'security.capability', '-v', '0x0100000200040000000000000000000000000000', join(u, 'f')]);
    execFileSync('setfattr', ['-n', 'trusted.keep', '-v', 'yes', join(u, 'f')]);
  });
  writeFileSync(join(u2, 'g'), 'plain');
  const r2 = await commitUpperDir(store, { upper: u2, lowers: l2 });
  const entries = await listLayer(store, r2.descriptor);
  const f = entries.find((e) => e.header.name === 'f')!;
  t.deepEqual([...(f.header.xattrs?.keys() ?? [])].sort(), ['security.capability', 'trusted.keep']);
  t.deepEqual(f.header.xattrs?.get('security.capability'), Buffer.from('0100000200040000000000000000000000000000', 'hex'));
  // and they come back on unpack
  const root = tempDir();
  await unpackLayer(await store.blobs.read(r2.descriptor.digest), root);
  const attrs = (await readXattrs([join(root, 'f')])).get(join(root, 'f'));
  t.deepEqual(attrs?.get('security.capability'), Buffer.from('0100000200040000000000000000000000000000', 'hex'));
});

test('a dir deleted in one step and recreated in the next, and hardlinks broken by copy-up, give correct layers', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store, [[...dataLayer, { name: 'data/hl-a', body: 'linked' }, { name: 'data/hl-b', type: 'link', linkname: 'data/hl-a' }]]);
  const snapshots = await openSnapshots(store);
  // step 1 deletes the dir; its upper dir becomes the next snapshot (as the solver does)
  const s1 = await step(store, base, 'rm -rf /data/dir && echo changed >> /data/hl-a');
  const c1 = await commitUpperDir(store, { upper: s1.upper, lowers: s1.lowers });
  const top1 = await snapshots.adopt(chainIdOf(base.chainId, c1.diffId), base.chainId, s1.upper);
  t.deepEqual(
    (await listLayer(store, c1.descriptor)).map((e) => `${e.header.type} ${e.header.name}`),
    ['directory data/', 'file data/.wh.dir', 'file data/hl-a'],
    'copy-up breaks the hardlink: only the written name is in the layer',
  );
  // step 2 recreates it: the whiteout below already hides the old contents, so no opaque marker is needed
  const s2 = await step(store, top1, 'mkdir /data/dir && echo again > /data/dir/new && cat /data/hl-b');
  const c2 = await commitUpperDir(store, { upper: s2.upper, lowers: s2.lowers });
  t.deepEqual(
    (await listLayer(store, c2.descriptor)).map((e) => `${e.header.type} ${e.header.name}`),
    ['directory data/', 'directory data/dir/', 'file data/dir/new'],
  );
  // the three layers applied in order give what the steps saw
  const rootfs = tempDir();
  const baseLayers = (await snapshots.chain(base.chainId)).reverse().map((s) => s.diffDir);
  for (const dir of baseLayers) execFileSync('cp', ['-a', `${dir}/.`, rootfs]);
  for (const c of [c1, c2]) await unpackLayer(await store.blobs.read(c.descriptor.digest), rootfs, { mode: 'apply' });
  t.deepEqual(readdirSync(join(rootfs, 'data/dir')), ['new']);
  t.is(readFileSync(join(rootfs, 'data/hl-a'), 'utf8'), 'linkedchanged\n');
  t.is(readFileSync(join(rootfs, 'data/hl-b'), 'utf8'), 'linked');
});

test('zstd layers unpack (auto-detected) and commit', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store);
  const s = await step(store, base, 'mkdir /z && echo zstd > /z/file');
  const c = await commitUpperDir(store, { upper: s.upper, lowers: s.lowers, compression: 'zstd' });
  t.is(c.descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  const head = readFileSync(store.blobFile(c.descriptor.digest)!).subarray(0, 4);
  t.deepEqual([...head], [0x28, 0xb5, 0x2f, 0xfd]);
  const root = tempDir();
  const r = await unpackLayer(await store.blobs.read(c.descriptor.digest), root);
  t.is(r.diffId, c.diffId);
  t.is(readFileSync(join(root, 'z/file'), 'utf8'), 'zstd\n');
});

test('long and non-ASCII names, long symlink targets and big ids go through PAX that GNU tar reads', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store);
  const deep = `/${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(60)}`;
  const s = await step(
    store,
    base,
    `mkdir -p ${deep} && echo x > ${deep}/${'f'.repeat(120)} && echo y > /grüße.txt && ln -s ${deep}/${'f'.repeat(120)} /long-link && touch /big-owner && chown 3000000:3000001 /big-owner`,
  );
  const c = await commitUpperDir(store, { upper: s.upper, lowers: s.lowers, compression: 'none' });
  const listing = execFileSync('tar', ['--numeric-owner', '-tvf', store.blobFile(c.descriptor.digest)!]).toString();
  t.true(listing.includes(`${deep.slice(1)}/${'f'.repeat(120)}`));
  t.true(listing.includes('grüße.txt'));
  t.true(listing.includes(`long-link -> ${deep}/${'f'.repeat(120)}`));
  t.regex(listing, /3000000\/3000001 .* big-owner/);
  const root = tempDir();
  await unpackLayer(await store.blobs.read(c.descriptor.digest), root);
  t.is(readFileSync(join(root, 'grüße.txt'), 'utf8'), 'y\n');
  t.is(readFileSync(join(root, deep.slice(1), 'f'.repeat(120)), 'utf8'), 'x\n');
});
