import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { encodeHeader, openSnapshots, readXattrs, unpackImageLayers, unpackLayer, type TarHeader } from '../builder/snapshot/index.js';
import { chainIdOf, Store } from '../store/index.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { layerTar, putLayer, type FixtureEntry } from './helpers/layers.js';
import { tempDir } from './helpers/temp.js';

/** A root dir to unpack into next to a sentinel dir that nothing may touch. */
function arena(): { root: string; sentinel: string; snapshot: string } {
  const base = tempDir('tsbuild-unpack-');
  const sentinel = join(base, 'sentinel');
  mkdirSync(sentinel);
  writeFileSync(join(sentinel, 'secret'), 'do not touch');
  const root = join(base, 'snap');
  mkdirSync(root);
  return { root, sentinel, snapshot: base };
}

function sentinelUntouched(
  t: { deepEqual: (a: unknown, b: unknown, m?: string) => void; is: (a: unknown, b: unknown, m?: string) => void },
  sentinel: string,
): void {
  t.deepEqual(readdirSync(sentinel), ['secret'], 'nothing was written next to the secret');
  t.is(readFileSync(join(sentinel, 'secret'), 'utf8'), 'do not touch');
  t.is(statSync(join(sentinel, 'secret')).nlink, 1, 'no hardlink to the secret was made');
}

async function unpack(root: string, entries: FixtureEntry[], mode: 'overlay' | 'apply' = 'overlay') {
  return unpackLayer(Readable.from([await layerTar(entries)]), root, { mode });
}

test('the busybox base layer unpacks with modes, symlinks and its diffID', async (t) => {
  const store = await Store.open(tempDir());
  const img = await makeBusyboxImage(store);
  const root = tempDir();
  const [layer] = img.manifest.layers;
  if (!layer) return t.fail('the busybox image has no layer');
  const r = await unpackLayer(await store.blobs.read(layer.digest), root, { expectedDiffId: img.diffId });
  t.is(r.diffId, img.diffId);
  t.is(readlinkSync(join(root, 'bin/sh')), 'busybox');
  t.is(statSync(join(root, 'tmp')).mode & 0o7777, 0o1777);
  t.is(statSync(join(root, 'root')).mode & 0o7777, 0o700);
  t.is(execFileSync(join(root, 'bin/busybox'), ['echo', 'ok']).toString().trim(), 'ok');
});

test('a layer whose bytes do not match the expected diffID is rejected', async (t) => {
  const root = tempDir();
  const bytes = await layerTar([{ name: 'a', body: 'x' }]);
  await t.throwsAsync(unpackLayer(Readable.from([bytes]), root, { expectedDiffId: `sha256:${'0'.repeat(64)}` as never }), {
    message: /does not match its diffID/,
  });
});

test('hostile layer: ../../etc/x lands inside the root', async (t) => {
  const { root, sentinel } = arena();
  await unpack(root, [
    { name: '../../etc/x', body: 'escaped?' },
    { name: '../sentinel/planted', body: 'escaped?' },
    { name: '/abs/file', body: 'abs' },
  ]);
  t.is(readFileSync(join(root, 'etc/x'), 'utf8'), 'escaped?');
  t.is(readFileSync(join(root, 'sentinel/planted'), 'utf8'), 'escaped?');
  t.is(readFileSync(join(root, 'abs/file'), 'utf8'), 'abs');
  sentinelUntouched(t, sentinel);
});

test('hostile layer: a symlink to / followed by a file through it stays inside the root', async (t) => {
  const { root, sentinel, snapshot } = arena();
  await unpack(root, [
    { name: 'evil', type: 'symlink', linkname: '/' },
    { name: `evil${sentinel}/planted`, body: 'through absolute link' },
    { name: 'evil/etc/x', body: 'etc' },
    { name: 'up', type: 'symlink', linkname: '../../../../../..' },
    { name: `up${snapshot}/sentinel/planted2`, body: 'through relative link' },
  ]);
  t.is(readlinkSync(join(root, 'evil')), '/', 'the symlink itself is kept');
  t.is(readFileSync(join(root, 'etc/x'), 'utf8'), 'etc');
  t.is(readFileSync(join(root, sentinel.slice(1), 'planted'), 'utf8'), 'through absolute link');
  t.is(readFileSync(join(root, snapshot.slice(1), 'sentinel/planted2'), 'utf8'), 'through relative link');
  sentinelUntouched(t, sentinel);
});

test('hostile layer: a hardlink to a file outside the root is refused', async (t) => {
  const { root, sentinel } = arena();
  await t.throwsAsync(unpack(root, [{ name: 'steal', type: 'link', linkname: `${sentinel}/secret` }]), { message: /refusing/ });
  await t.throwsAsync(unpack(root, [{ name: 'steal2', type: 'link', linkname: '../sentinel/secret' }]), { message: /refusing/ });
  await t.throwsAsync(
    unpack(root, [
      { name: 'evil', type: 'symlink', linkname: '/' },
      { name: 'steal3', type: 'link', linkname: `evil${sentinel}/secret` },
    ]),
    { message: /refusing/ },
  );
  sentinelUntouched(t, sentinel);
  // a hardlink to a file inside the layer is fine
  const ok = tempDir();
  await unpack(ok, [
    { name: 'a', body: 'shared' },
    { name: 'b', type: 'link', linkname: 'a' },
  ]);
  t.is(statSync(join(ok, 'a')).ino, statSync(join(ok, 'b')).ino);
});

test('overlay mode turns whiteouts into char devices 0/0 and opaque markers into trusted.overlay.opaque', async (t) => {
  const root = tempDir();
  await unpack(root, [{ name: 'etc/' }, { name: 'etc/.wh.passwd' }, { name: 'var/' }, { name: 'var/.wh..wh..opq' }, { name: 'var/new', body: 'n' }]);
  const wh = lstatSync(join(root, 'etc/passwd'));
  t.true(wh.isCharacterDevice());
  t.is(wh.rdev, 0);
  t.false(existsSync(join(root, 'var/.wh..wh..opq')));
  const attrs = await readXattrs([join(root, 'var')]);
  t.is(attrs.get(join(root, 'var'))?.get('trusted.overlay.opaque')?.toString(), 'y');
});

test('apply mode deletes what whiteouts name and empties opaque dirs', async (t) => {
  const root = tempDir();
  await unpack(
    root,
    [
      { name: 'etc/passwd', body: 'p' },
      { name: 'var/old', body: 'o' },
      { name: 'keep', body: 'k' },
    ],
    'apply',
  );
  await unpack(root, [{ name: 'etc/.wh.passwd' }, { name: 'var/' }, { name: 'var/.wh..wh..opq' }, { name: 'var/new', body: 'n' }], 'apply');
  t.false(existsSync(join(root, 'etc/passwd')));
  t.deepEqual(readdirSync(join(root, 'var')), ['new']);
  t.true(existsSync(join(root, 'keep')));
});

test('ownership, modes, times, devices, fifos, binary xattrs and long names are kept', async (t) => {
  const root = tempDir();
  const longName = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // bytes ≥ 0x80 too
  cap[4] = 0xff;
  const headers: TarHeader[] = [
    { name: 'bin/', type: 'directory', mode: 0o751, uid: 0, gid: 0, size: 0, mtime: 1_000_000 },
    {
      name: 'bin/ping',
      type: 'file',
      mode: 0o4755,
      uid: 0,
      gid: 0,
      size: 4,
      mtime: 1_000_001,
      xattrs: new Map([
        ['security.capability', cap],
        ['user.note', Buffer.from('hi')],
      ]),
    },
    { name: 'home/app/', type: 'directory', mode: 0o700, uid: 1000, gid: 1001, size: 0, mtime: 1_000_002 },
    { name: 'dev/null', type: 'char', mode: 0o666, uid: 0, gid: 0, size: 0, mtime: 1, devmajor: 1, devminor: 3 },
    { name: 'pipe', type: 'fifo', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 1 },
    { name: longName, type: 'file', mode: 0o644, uid: 5_000_000, gid: 0, size: 1, mtime: 1 },
  ];
  const parts: Buffer[] = [];
  for (const h of headers) {
    parts.push(encodeHeader(h));
    if (h.size) parts.push(Buffer.alloc(h.size, 'x'), Buffer.alloc(512 - h.size));
  }
  parts.push(Buffer.alloc(1024));
  await unpackLayer(Readable.from([Buffer.concat(parts)]), root);
  const ping = statSync(join(root, 'bin/ping'));
  t.is(ping.mode & 0o7777, 0o4755, 'setuid survives chown');
  t.is(statSync(join(root, 'bin')).mode & 0o7777, 0o751);
  t.is(statSync(join(root, 'bin')).mtimeMs, 1_000_000_000, 'dir mtime set after its children');
  const home = statSync(join(root, 'home/app'));
  t.deepEqual([home.uid, home.gid, home.mode & 0o7777], [1000, 1001, 0o700]);
  const dev = statSync(join(root, 'dev/null'));
  t.true(dev.isCharacterDevice());
  t.is(dev.rdev, (1 << 8) | 3);
  t.true(lstatSync(join(root, 'pipe')).isFIFO());
  t.is(statSync(join(root, longName)).uid, 5_000_000, 'PAX uid');
  const attrs = (await readXattrs([join(root, 'bin/ping')])).get(join(root, 'bin/ping'));
  t.deepEqual(attrs?.get('security.capability'), cap);
  t.is(attrs?.get('user.note')?.toString(), 'hi');
});

test('snapshots: each chain is unpacked once, concurrent requests share it, short links resolve', async (t) => {
  const store = await Store.open(tempDir());
  const snapshots = await openSnapshots(store);
  const l1 = await putLayer(store, await layerTar([{ name: 'one', body: '1' }]));
  const l2 = await putLayer(store, await layerTar([{ name: 'two', body: '2' }]));
  const [a, b] = await Promise.all([unpackImageLayers(store, snapshots, [l1, l2]), unpackImageLayers(store, snapshots, [l1, l2])]);
  t.deepEqual(a, b);
  t.is(a!.chainId, chainIdOf(chainIdOf(undefined, l1.diffId), l2.diffId));
  t.true(existsSync(join(snapshots.root, a!.link, 'two')), 'short link points at the diff dir');
  const chain = await snapshots.chain(a!.chainId);
  t.deepEqual(
    chain.map((s) => s.chainId),
    [a!.chainId, l1.diffId],
  );
  t.regex(a!.link, /^l\/[A-Z2-7]{12}$/);
  // a second store handle (another process) finds it and does not unpack again
  const again = await unpackImageLayers(store, await openSnapshots(store), [l1, l2]);
  t.is(again!.link, a!.link);
  t.deepEqual(
    readdirSync(snapshots.root).filter((n) => n.startsWith('tmp-')),
    [],
    'no temp dirs left',
  );
});

test('hostile layer: a dir swapped for a symlink after its whiteouts, xattrs and times were queued stays inside', async (t) => {
  const { root, sentinel } = arena();
  writeFileSync(join(sentinel, 'x'), 'keep');
  const before = statSync(sentinel).mtimeMs;
  await unpack(root, [{ name: 'a/', mtime: new Date(0) }, { name: 'a/.wh.x' }, { name: 'a/.wh..wh..opq' }, { name: 'a', type: 'symlink', linkname: sentinel }]);
  t.deepEqual(readdirSync(sentinel).sort(), ['secret', 'x']);
  t.is(readFileSync(join(sentinel, 'x'), 'utf8'), 'keep', 'the whiteout was not made through the symlink');
  t.is(statSync(sentinel).mtimeMs, before, 'no times were set through the symlink');
  t.deepEqual(await readXattrs([sentinel]), new Map(), 'no opaque marker on the outside dir');
  t.true(lstatSync(join(root, sentinel.slice(1), 'x')).isCharacterDevice(), 'the whiteout landed where the symlink points inside the root');
});
