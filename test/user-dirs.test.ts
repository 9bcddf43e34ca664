/**
 * Directories a person names (a cache or output dest, --root, save -o, --iidfile) are created like
 * `mkdir -p`, and where that cannot work — below /proc, where Node's recursive mkdir spins forever at
 * full CPU — the command ends at once with one line naming the directory or file.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { makeDirs } from '../store/index.js';
import { testWith } from './helpers/tools.js';
import { tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { withDeadline } from './helpers/deadline.js';
import { storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc']);

test('makeDirs makes missing parents, accepts an existing directory, and fails in one line below /proc and on a file', async (t) => {
  const dir = tempDir('dirs-');
  await makeDirs(join(dir, 'a', 'b', 'c'));
  t.true((await fs.stat(join(dir, 'a', 'b', 'c'))).isDirectory());
  await makeDirs(join(dir, 'a', 'b', 'c'));
  await fs.writeFile(join(dir, 'file'), 'x');
  await t.throwsAsync(makeDirs(join(dir, 'file', 'sub')), { message: `cannot create directory ${join(dir, 'file', 'sub')}: not a directory` });
  await t.throwsAsync(makeDirs(join(dir, 'file')), { message: `cannot create directory ${join(dir, 'file')}: a file of that name exists` });
  await t.throwsAsync(withDeadline(makeDirs('/proc/tsbuild-nope/blobs/sha256'), 5000, 'makeDirs under /proc'), {
    message: 'cannot create directory /proc/tsbuild-nope: no such file or directory',
  });
});

test('a build whose cache or output dest, --root, --iidfile or save -o is below /proc fails at once in one line', async (t) => {
  const root = await storeWithBusybox();
  const ctx = tempDir('dirs-ctx-');
  await fs.writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo x > /x\n');
  const cases: Array<[string, string[], string]> = [
    [
      root,
      ['build', '-q', '--cache-to', 'type=local,dest=/proc/tsbuild-nope/cache', ctx],
      'cannot create directory /proc/tsbuild-nope: no such file or directory',
    ],
    [
      root,
      ['build', '-q', '-o', 'type=oci,tar=false,dest=/proc/tsbuild-nope/out', ctx],
      'cannot create directory /proc/tsbuild-nope: no such file or directory',
    ],
    [root, ['build', '-q', '-o', 'type=oci,dest=/proc/tsbuild-nope/out.tar', ctx], 'cannot write /proc/tsbuild-nope/out.tar: no such file or directory'],
    [root, ['build', '-q', '-o', 'type=local,dest=/proc/tsbuild-nope/fs', ctx], 'cannot create directory /proc/tsbuild-nope: no such file or directory'],
    [root, ['build', '-q', '-o', 'type=tar,dest=/proc/tsbuild-nope/fs.tar', ctx], 'cannot write /proc/tsbuild-nope/fs.tar: no such file or directory'],
    [root, ['build', '-q', '--iidfile', '/proc/tsbuild-nope/iid', ctx], 'cannot write --iidfile /proc/tsbuild-nope/iid: no such file or directory'],
    [root, ['save', '-o', '/proc/tsbuild-nope/x.tar', 'busybox'], 'cannot write /proc/tsbuild-nope/x.tar: no such file or directory'],
    ['/proc', ['images'], 'cannot create directory /proc/tmp: no such file or directory'],
    ['/proc/tsbuild-nope/root', ['images'], 'cannot create directory /proc/tsbuild-nope: no such file or directory'],
  ];
  for (const [r, args, message] of cases) {
    const out = await tsbuild(r, args, { timeout: 60_000 });
    t.is(out.code, 1, `${args.join(' ')}: ${out.stderr}`);
    const lines = out.stderr.trim().split('\n');
    t.is(lines.length, 1, out.stderr);
    t.true(lines[0]!.startsWith('tsbuild: ') && lines[0]!.endsWith(message), `${args.join(' ')}: ${lines[0]}`);
  }
});
