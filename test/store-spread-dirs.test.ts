/**
 * The snapshots dir carries ext4's `T` attribute (store/spread-dirs.ts), so that each snapshot and step
 * dir gets a block group of its own; filesystems without it (tmpfs) open as before.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SnapshotStore, Store } from '../store/index.js';
import { otherCacheEntries } from '../store/local-state.js';
import { SPREAD_MARKER } from '../store/spread-dirs.js';
import { tempDir } from './helpers/temp.js';

function fsType(dir: string): string {
  return spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim();
}

function attributes(dir: string): string {
  return spawnSync('lsattr', ['-d', dir], { encoding: 'utf8' }).stdout.split(' ')[0] ?? '';
}

test('on ext4 the snapshots dir is marked T once; snapshots made under it read back', async (t) => {
  const root = join(tempDir(), 'snapshots');
  if (fsType(join(root, '..')) !== 'ext2/ext3') return t.pass(`skipped: ${fsType(join(root, '..'))} is not ext4 (the attribute is ext4's)`);
  const store = await SnapshotStore.open(root);
  t.true(attributes(root).includes('T'), `lsattr: ${attributes(root)}`);
  t.true(existsSync(join(root, SPREAD_MARKER)), 'the attempt is recorded');
  const snap = await store.prepare(('sha256:' + 'a'.repeat(64)) as never, undefined, async (diff) => {
    mkdirSync(join(diff, 'etc'));
  });
  t.deepEqual(readdirSync(snap.diffDir), ['etc']);
  // the marker is not a snapshot, and the T attribute is not inherited by snapshots
  t.false(attributes(join(root, 'a'.repeat(64))).includes('T'));
  await SnapshotStore.open(root);
  t.true(attributes(root).includes('T'));
});

test('a filesystem without the attribute (tmpfs) opens the same', async (t) => {
  const dir = tempDir();
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir]);
  if (mounted.status !== 0) return t.pass(`skipped: cannot mount a tmpfs here (${mounted.stderr.toString().trim()})`);
  t.teardown(() => spawnSync('umount', ['-l', dir]));
  const store = await SnapshotStore.open(join(dir, 'snapshots'));
  const snap = await store.prepare(('sha256:' + 'b'.repeat(64)) as never, undefined, async () => undefined);
  t.true(existsSync(snap.diffDir));
  t.false(attributes(join(dir, 'snapshots')).includes('T'));
});

test('the store marks its cache dir T too (RUN cache mounts, records); the marker is no cache entry', async (t) => {
  const root = tempDir();
  if (fsType(root) !== 'ext2/ext3') return t.pass(`skipped: ${fsType(root)} is not ext4 (the attribute is ext4's)`);
  const store = await Store.open(root);
  for (const name of ['snapshots', 'cache']) {
    const dir = await store.localDir(name);
    t.true(attributes(dir).includes('T'), `${name}: ${attributes(dir)}`);
  }
  t.false((await otherCacheEntries(store)).some((e) => e.path.endsWith(SPREAD_MARKER)));
});
