/**
 * The metadata listing of a tree by find(1) (builder/context/tree-stats.ts) that large contexts and
 * COPY sources are checked with, and the no-op memo's fingerprint built on it.
 */
import test from 'ava';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { contextFingerprint } from '../builder/cache/noop.js';
import { treeStats } from '../builder/context/tree-stats.js';
import { tempDir } from './helpers/temp.js';

function tree(files: number): string {
  const dir = tempDir('tree-stats-');
  mkdirSync(join(dir, 'sub'));
  for (let i = 0; i < files; i++) writeFileSync(join(dir, 'sub', `${i}.txt`), `${i}\n`);
  return dir;
}

test('treeStats counts every entry and changes with any rewrite, added file or mode, not with nothing', async (t) => {
  const dir = tree(10);
  const first = await treeStats(dir);
  t.is(first.entries, 12, 'the start, sub and 10 files');
  t.deepEqual(await treeStats(dir), first);
  writeFileSync(join(dir, 'sub', '3.txt'), '9\n'); // same size, other bytes
  const rewritten = await treeStats(dir);
  t.not(rewritten.hex, first.hex);
  writeFileSync(join(dir, 'new'), '');
  const added = await treeStats(dir);
  t.is(added.entries, 13);
  t.not(added.hex, rewritten.hex);
  chmodSync(join(dir, 'new'), 0o600);
  t.not((await treeStats(dir)).hex, added.hex);
});

test('treeStats leaves a pruned directory out, and refuses a path that is not UTF-8', async (t) => {
  const dir = tree(3);
  mkdirSync(join(dir, 'state[1]'));
  const before = await treeStats(dir, join(dir, 'state[1]'));
  t.is(before.entries, 5, 'the pruned dir (a name with glob characters) is not listed');
  writeFileSync(join(dir, 'state[1]', 'x'), 'x');
  t.deepEqual(await treeStats(dir, join(dir, 'state[1]')), before);
  await t.throwsAsync(treeStats(`${dir}/\udc80`), { message: /not a UTF-8 path/ });
});

test('a relative path that looks like an option is a path to find, never an expression', async (t) => {
  const dir = tree(1);
  writeFileSync(join(dir, '-delete'), 'kept');
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const r = await treeStats('-delete');
    t.is(r.entries, 1);
  } finally {
    process.chdir(cwd);
  }
  t.is(readFileSync(join(dir, '-delete'), 'utf8'), 'kept');
  t.is(readFileSync(join(dir, 'sub', '0.txt'), 'utf8'), '0\n');
});

test('the no-op fingerprint by lstat or by find, each leaving the state root out', async (t) => {
  const dir = tree(300);
  const root = join(dir, 'root');
  mkdirSync(root);
  const byLstat = await contextFingerprint(dir, root, 'lstat');
  t.regex(byLstat.context, /^lstat:/);
  t.is(byLstat.entries, 302);
  const byFind = await contextFingerprint(dir, root, 'find');
  t.regex(byFind.context, /^find:/);
  t.is(byFind.entries, 302);
  writeFileSync(join(root, 'state'), 'changes of the state root are not the context');
  t.deepEqual(await contextFingerprint(dir, root, 'find'), byFind);
  t.deepEqual(await contextFingerprint(dir, root, 'lstat'), byLstat);
  writeFileSync(join(dir, 'sub', '7.txt'), '8\n');
  t.not((await contextFingerprint(dir, root, 'find')).context, byFind.context);
  t.not((await contextFingerprint(dir, root, 'lstat')).context, byLstat.context);
});
