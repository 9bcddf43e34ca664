import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sweepLeftovers } from '../builder/exec/index.js';
import { Store } from '../store/index.js';
import { baseSnapshot, leftovers } from './helpers/layers.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

const test = testWith(['runc', 'ip']);
const dist = fileURLToPath(new URL('../', import.meta.url));

/** A separate tsbuild-like process running a long RUN step; resolves once the step printed "started". */
function longRun(root: string, chainId: string): Promise<{ child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }> {
  const script = join(tempDir(), 'child.mjs');
  writeFileSync(
    script,
    `import { Store } from '${dist}store/index.js';
import { trackDir } from '${dist}builder/exec/index.js';
import { runOnSnapshot } from '${dist}builder/solver/overlay.js';
import { openSnapshots } from '${dist}builder/snapshot/index.js';
const store = await Store.open(process.argv[2]);
const upper = await (await openSnapshots(store)).tempDir('upper');
trackDir(upper);
await runOnSnapshot(store, { lowers: process.argv[3], upperDir: upper, args: ['/bin/sh', '-c', 'echo started; sleep 300'], network: 'none', onStdout: (d) => process.stdout.write(d) });
`,
  );
  const child = spawn(process.execPath, [script, root, chainId], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('started')) resolve({ child, exited });
    });
    void exited.then(() => reject(new Error('the child exited before its step started')));
  });
}

test('SIGINT during a long RUN leaves no mount, container or temp dir behind', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store);
  const { child, exited } = await longRun(store.root, base.chainId);
  const during = await leftovers(store.root, child.pid);
  t.is(during.mounts.length, 1, 'the step had its overlay mounted');
  t.is(during.containers.length, 1, 'and its container running');
  t.is(during.networks.length, 1, 'in its own network namespace');
  child.kill('SIGINT');
  const end = await exited;
  t.is(end.signal, 'SIGINT', 'the process ends the way SIGINT ends it, after cleaning up');
  t.deepEqual(await leftovers(store.root, child.pid), { mounts: [], containers: [], dirs: [], networks: [] });
});

test('SIGTERM cleans up the same way', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store);
  const { child, exited } = await longRun(store.root, base.chainId);
  child.kill('SIGTERM');
  t.is((await exited).signal, 'SIGTERM');
  t.deepEqual(await leftovers(store.root, child.pid), { mounts: [], containers: [], dirs: [], networks: [] });
});

test('a crashed (SIGKILLed) build is swept at the next start', async (t) => {
  const store = await Store.open(tempDir());
  const base = await baseSnapshot(store);
  const { child, exited } = await longRun(store.root, base.chainId);
  child.kill('SIGKILL');
  await exited;
  const before = await leftovers(store.root, child.pid);
  t.is(before.mounts.length, 1);
  t.true(before.containers.length <= 1, "at most our container (a concurrent test's sweep may already have taken it)");
  t.true(before.dirs.length >= 2, 'run dir, work dir and upper dir remain after a crash');
  const report = await sweepLeftovers(store);
  // containers and network namespaces are machine-wide: another tsbuild process sweeping at the same
  // moment may take them first, and this sweep also takes those of other crashed processes (concurrent
  // tests kill theirs too); of this build's, it takes only what was there. Mounts and dirs under this
  // store root are ours to sweep.
  const ours = report.containers.filter((c) => c.startsWith(`tsbuild-${child.pid}-`));
  t.true(ours.every((c) => before.containers.includes(c)));
  t.deepEqual(report.mounts, before.mounts);
  t.deepEqual(await leftovers(store.root, child.pid), { mounts: [], containers: [], dirs: [], networks: [] });
  // the snapshots the crashed build used are intact
  t.true((await (await import('../builder/snapshot/index.js')).openSnapshots(store).then((s) => s.chain(base.chainId))).length === 1);
});
