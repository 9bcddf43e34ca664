/** Remembered content hashes of the context (TreeChecksummer.persistent): trusted only while a file's stat fingerprint holds, rewritten only when they change. */
import test from 'ava';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { TreeChecksummer } from '../builder/context/index.js';
import { tempDir } from './helpers/temp.js';

async function makeTree(dir: string, files: number): Promise<void> {
  for (let d = 0; d < Math.ceil(files / 100); d++) {
    await fs.mkdir(join(dir, 'files', `d${d}`), { recursive: true });
    for (let f = 0; f < 100 && d * 100 + f < files; f++) await fs.writeFile(join(dir, 'files', `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`.repeat(1 + f));
  }
}

/** The one remembered-hashes file under `dir` and its inode, size and mtime. */
async function rememberedFile(dir: string): Promise<{ path: string; id: string; text: string }> {
  // `.tree`: the walk start's checksum memo beside it (checked first, by one find)
  const names = (await fs.readdir(dir)).filter((n) => !n.includes('.tmp-') && !n.endsWith('.tree'));
  if (names.length !== 1) throw new Error(`expected one remembered file, found ${names.join(', ')}`);
  const path = join(dir, names[0]!);
  const st = await fs.stat(path);
  return { path, id: `${st.ino}:${st.size}:${st.mtimeMs}`, text: await fs.readFile(path, 'utf8') };
}

test('remembered hashes give the checksums of a fresh walk, are left alone when nothing changed, and are not trusted once a file changed', async (t) => {
  const ctx = tempDir('ctx-remember-');
  const hashes = join(tempDir('ctx-remember-state-'), 'hashes');
  // more than the bytes held in memory before a temp file is opened (1 MiB of lines)
  await makeTree(ctx, 7000);
  const fresh = () => new TreeChecksummer().checksum(ctx, ['files']);
  const remembering = async () => (await TreeChecksummer.persistent(hashes)).checksum(ctx, ['files']);

  const first = await remembering();
  t.is(first, await fresh());
  const written = await rememberedFile(hashes);
  t.is(written.text.trimEnd().split('\n').length, 7000, 'a line per file');

  t.is(await remembering(), first);
  t.is((await rememberedFile(hashes)).id, written.id, 'an unchanged context writes nothing');
  t.deepEqual(
    (await fs.readdir(hashes)).filter((n) => n.includes('.tmp-')),
    [],
    'no temp file left behind',
  );

  // same size and mtime, new bytes: the ctime moved, so the remembered hash is not trusted
  const victim = join(ctx, 'files', 'd3', 'f7.txt');
  const before = await fs.stat(victim);
  await fs.writeFile(victim, (await fs.readFile(victim, 'utf8')).replace('file', 'FILE'));
  await fs.utimes(victim, before.atime, before.mtime);
  const changed = await remembering();
  t.not(changed, first);
  t.is(changed, await fresh());
  t.not((await rememberedFile(hashes)).id, written.id, 'a changed file rewrites the hashes');

  // a file gone from the end of the walk is a change too
  const rewritten = await rememberedFile(hashes);
  await fs.rm(join(ctx, 'files', 'd69', 'f99.txt'));
  t.is(await remembering(), await fresh());
  const shorter = await rememberedFile(hashes);
  t.not(shorter.id, rewritten.id);
  t.is(shorter.text.trimEnd().split('\n').length, 6999);

  // a damaged file is read as far as it makes sense and replaced; while the tree is as it was, its
  // checksum comes from the memo beside it and the hashes are not read
  await fs.writeFile(shorter.path, 'not a line\n' + shorter.text.slice(0, 1000));
  t.is(await remembering(), await fresh());
  t.not((await rememberedFile(hashes)).text, shorter.text, 'answered from the tree memo');
  await fs.rm(`${shorter.path}.tree`);
  t.is(await remembering(), await fresh());
  t.is((await rememberedFile(hashes)).text, shorter.text);
});
