/**
 * Interrupts and crashes: Ctrl-C ends the build only once its RUN processes are gone and says the step
 * was cancelled; a SIGKILLed build takes its RUN containers with it; and any command that opens the store
 * sweeps the mounts, containers and run dirs a crashed build left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { listContainers, mountPoints } from '../builder/exec/index.js';
import { testWith } from './helpers/tools.js';
import { tsbuild, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc']);

/** Pids of processes running `sleep <marker>` (a marker per test, so concurrent tests do not see each other's). */
function sleepers(marker: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1') === `sleep\0${marker}\0`) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** What a build with `pid` left under `root`: mounts, runc containers, run and temp dirs. */
async function leftovers(root: string, pid: number): Promise<string[]> {
  const real = realpathSync(root);
  const found = (await mountPoints()).filter((m) => m.startsWith(real + '/')).map((m) => `mount ${m}`);
  for (const c of await listContainers()) if (c.id.startsWith(`tsbuild-${pid}-`)) found.push(`container ${c.id}`);
  for (const d of ['tmp', 'snapshots']) {
    for (const n of await fs.readdir(join(real, d)).catch(() => [] as string[])) if (/^(run|tmp-[a-z]+)-\d+-/.test(n)) found.push(`${d}/${n}`);
  }
  return found;
}

/** A build whose RUN starts two sleeps and waits; resolves once they run. */
async function longBuild(
  marker: number,
): Promise<{ root: string; child: ChildProcess; stderr: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }> {
  const root = await storeWithBusybox();
  const ctx = tempDir('interrupt-ctx-');
  await fs.writeFile(join(ctx, 'Dockerfile'), `FROM busybox\nRUN sleep ${marker} & sleep ${marker} & echo started; wait\n`);
  // its own process group, as a shell gives a foreground job: Ctrl-C is a SIGINT to that group
  const child = spawn(process.execPath, [tsbuildBin, '--root', root, 'build', '--progress', 'plain', ctx], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      stderr += d;
      if (/#\d+ [\d.]+ started/.test(stderr)) resolve();
    });
    void exited.then(() => reject(new Error(`the build ended before its RUN started:\n${stderr}`)));
  });
  for (let i = 0; i < 50 && sleepers(marker).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  return { root, child, stderr: () => stderr, exited };
}

test('Ctrl-C: the build exits only when its RUN processes are gone, and says the step was cancelled', async (t) => {
  const marker = 3101;
  const { root, child, stderr, exited } = await longBuild(marker);
  t.is(sleepers(marker).length, 2);
  process.kill(-child.pid!, 'SIGINT');
  const end = await exited;
  const alive = sleepers(marker); // at the moment the build has exited
  t.deepEqual(alive, [], 'no RUN process outlives the build');
  t.is(end.signal, 'SIGINT', 'it ends the way SIGINT ends a process, after cleaning up');
  // the RUN's number (#3: BuildKit's `[internal] load metadata` and FROM steps come first)
  t.regex(stderr(), /^#3 \[2\/2\] RUN [^\n]*\n(#3 [^\n]*\n)*#3 CANCELED$/m, 'the step shows as cancelled, as BuildKit shows it');
  t.regex(stderr(), /^tsbuild: Dockerfile:2: RUN sleep .*: cancelled by SIGINT$/m);
  t.notRegex(stderr(), /exit code: 137/);
  t.deepEqual(await leftovers(root, child.pid!), []);
});

test('SIGKILL: a killed build takes its RUN containers with it; the next command that opens the store sweeps the rest', async (t) => {
  const marker = 3102;
  const { root, child, exited } = await longBuild(marker);
  child.kill('SIGKILL');
  await exited;
  let alive = sleepers(marker);
  for (let i = 0; i < 100 && alive.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    alive = sleepers(marker);
  }
  t.deepEqual(alive, [], 'the RUN processes died with the build');
  const left = await leftovers(root, child.pid!);
  t.true(
    left.some((l) => l.startsWith('mount ')),
    'a crash leaves the mounts for the sweep',
  );
  // not a build: any command that opens the store sweeps
  const images = await tsbuild(root, ['images']);
  t.is(images.code, 0, images.stderr);
  t.deepEqual(await leftovers(root, child.pid!), []);
});
