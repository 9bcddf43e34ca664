/**
 * tsbuild run as a user other than root: a build fails with one sentence saying what it needs (root for
 * overlay mounts and runc; rootless is not supported), not `EPERM ... lchown`; a store the user cannot
 * open is one sentence too; commands on a store the user can read still work.
 */
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { run, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['setpriv', 'runc']);

/** Runs the CLI as nobody:nogroup with no supplementary groups. */
function asNobody(args: string[], env: Record<string, string> = {}) {
  return run('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, tsbuildBin, ...args], {
    env: { ...process.env, HOME: '/nonexistent', XDG_DATA_HOME: '', ...env },
  });
}

/** The compiled CLI must be readable by nobody: make its path traversable. */
async function openPath(): Promise<void> {
  for (let d = dirname(tsbuildBin); d !== '/'; d = dirname(d)) {
    const st = await fs.stat(d);
    if ((st.mode & 0o005) !== 0o005) await fs.chmod(d, st.mode | 0o005);
  }
}

test('a build as a non-root user fails with one sentence naming what it needs', async (t) => {
  await openPath();
  const ctx = tempDir('nonroot-ctx-');
  await fs.chmod(ctx, 0o755);
  await fs.writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN true\n');
  await fs.chmod(join(ctx, 'Dockerfile'), 0o644);
  for (const args of [
    ['build', '-t', 'x', ctx],
    ['-t', 'x', ctx],
    ['build', '--root', tempDir('nonroot-root-'), ctx],
  ]) {
    const r = await asNobody(args);
    t.is(r.code, 1, r.stderr);
    t.is(
      r.stderr,
      'tsbuild: tsbuild build needs root (uid 0) for overlay mounts and runc containers, and runs as uid 65534; rootless builds are not supported: run it as root or with sudo\n',
    );
    t.false(/EPERM|EACCES|lchown/.test(r.stderr));
  }
});

test('a store the user cannot open is one sentence; a readable store can be listed', async (t) => {
  await openPath();
  const r = await asNobody(['images'], { TSBUILD_ROOT: '/root/tsbuild-nonroot-test' });
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /^tsbuild: cannot open the store at \/root\/tsbuild-nonroot-test: permission denied to uid 65534 .*run tsbuild as root, or give --root DIR \(or TSBUILD_ROOT\) a directory you own/,
  );
  t.is(r.stderr.split('\n').length, 2);
  const root = await storeWithBusybox();
  await run('chmod', ['-R', 'o+rX', dirname(root)]);
  for (let d = dirname(root); d !== '/'; d = dirname(d)) await fs.chmod(d, (await fs.stat(d)).mode | 0o005);
  const listed = await asNobody(['--root', root, 'images', '--format', '{{.Repository}}:{{.Tag}}']);
  t.is(listed.stdout, 'busybox:latest\n', listed.stderr);
});
