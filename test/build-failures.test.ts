/**
 * Failures: a failing RUN reports its exit code, the Dockerfile line and the tail of its output and
 * exits non-zero; Ctrl-C (SIGINT) in the middle of a RUN stops the build. Neither leaves mounts, runc
 * containers or temp dirs behind.
 */
import { spawn } from 'node:child_process';
import { promises as fs, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { projectRoot, run, tsbuild, tsbuildBin } from './helpers/run.js';
import { storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc']);
const fixture = (name: string) => join(projectRoot, 'fixtures', name);

/** What a build process with `pid` left under `root`: mounts, runc containers, temp dirs. */
async function leftovers(root: string, pid: number): Promise<string[]> {
  const real = realpathSync(root);
  const found: string[] = [];
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  for (const line of mountinfo.split('\n')) {
    const point = line.split(' ')[4];
    if (point && point.startsWith(real + '/')) found.push(`mount ${point}`);
  }
  const list = await run('/usr/sbin/runc', ['--root', '/run/tsbuild-runc', 'list', '-q']);
  for (const id of list.stdout.split('\n')) if (id.startsWith(`tsbuild-${pid}-`)) found.push(`container ${id}`);
  for (const name of await fs.readdir(join(root, 'tmp')).catch(() => [] as string[])) found.push(`tmp/${name}`);
  for (const name of await fs.readdir(join(root, 'snapshots')).catch(() => [] as string[])) if (name.startsWith('tmp-')) found.push(`snapshots/${name}`);
  return found;
}

test('a failing RUN reports exit code, Dockerfile line and output tail, exits non-zero, leaves nothing behind', async (t) => {
  const root = await storeWithBusybox();
  const child = spawn(process.execPath, [tsbuildBin, '--root', root, 'build', '--progress', 'plain', '-t', 'failing:v1', fixture('failing-run')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  t.is(code, 1);
  t.regex(stderr, /exit code: 3/);
  t.regex(stderr, /Dockerfile:3/, 'points at the RUN line');
  t.regex(stderr, /\s+3 \| >>> RUN echo "some output"; \\/, 'quotes the instruction');
  t.regex(stderr, /error text on stderr/, 'shows the tail of the output');
  t.regex(stderr, /^tsbuild: Dockerfile:3: RUN .*exit code: 3$/m, 'one-line summary');
  t.notRegex(stderr, /\[4\/4\]/, 'later steps did not run');
  t.deepEqual(await leftovers(root, child.pid!), []);
  const images = await tsbuild(root, ['images', '--format', 'json']);
  t.false(images.stdout.includes('failing'), 'no image was tagged');
});

test('Ctrl-C during a long RUN stops the build and leaves no mounts, containers or temp dirs', async (t) => {
  const root = await storeWithBusybox();
  const child = spawn(process.execPath, [tsbuildBin, '--root', root, 'build', '--progress', 'plain', '-t', 'long:v1', fixture('long-run')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const started = new Promise<void>((resolve) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/#\d+ [\d.]+ started/.test(stderr)) resolve();
    });
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  await started;
  // The container is running now: there is a mount and a runc container to clean up.
  t.true((await leftovers(root, child.pid!)).some((l) => l.startsWith('mount ')));
  const t0 = Date.now();
  child.kill('SIGINT');
  const { code, signal } = await closed;
  t.true(signal === 'SIGINT' || (code !== null && code !== 0), `exit: code ${code} signal ${signal}`);
  t.true(Date.now() - t0 < 30_000, 'stopped without waiting for the sleep');
  t.notRegex(stderr, /#\d+ [\d.]+ finished/);
  t.deepEqual(await leftovers(root, child.pid!), []);
  const ps = await run('ps', ['-eo', 'args']);
  t.false(
    ps.stdout.split('\n').some((l) => l.startsWith('sleep 120')),
    'the RUN process was killed',
  );
});
