/**
 * A GC killed with SIGKILL midway (blobs claimed, some deleted, its lock left behind) leaves a store that
 * verifies: every reachable blob in place under its name with bytes that hash to it. A second GC takes
 * the dead one's lock, puts the claimed blobs back and finishes the job.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { digestHex, MediaType, type Digest } from '../oci/index.js';
import { markReachable, Store } from '../store/index.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { withDeadline } from './helpers/deadline.js';
import { tsbuild, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';

const GARBAGE = 4000;

async function sha256File(path: string): Promise<string> {
  return `sha256:${createHash('sha256')
    .update(await fs.readFile(path))
    .digest('hex')}`;
}

/** Problems of the store: a reachable blob missing from its place, or with bytes of another digest. */
async function verify(root: string, reachable: Iterable<Digest>): Promise<string[]> {
  const problems: string[] = [];
  for (const d of reachable) {
    const file = join(root, 'content', 'blobs', 'sha256', digestHex(d));
    if (!existsSync(file)) problems.push(`${d} is missing`);
    else if ((await sha256File(file)) !== d) problems.push(`${d} does not match its bytes`);
  }
  return problems;
}

function garbageLeft(root: string, garbage: Set<string>): number {
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  const left = [...list(join(root, 'content', 'blobs', 'sha256')), ...list(join(root, 'content', 'gc', 'claimed', 'sha256'))];
  return left.filter((hex) => garbage.has(hex)).length;
}

test('a GC killed with SIGKILL midway leaves a store that verifies; a second GC finishes the job', async (t) => {
  const root = tempDir('gc-crash-');
  const store = await Store.open(root);
  // what must survive: a local image, and a registry repository with a tagged and an untagged manifest
  await makeBusyboxImage(store, 'busybox:latest');
  for (const seed of ['tagged', 'untagged']) {
    const config = await store.blobs.put(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
    const layer = await store.blobs.put(`layer ${seed} ${'x'.repeat(4096)}`);
    const bytes = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
      layers: [{ mediaType: MediaType.ociLayer, digest: layer.digest, size: layer.size }],
    });
    const manifest = await store.blobs.put(bytes);
    await store.repositories.linkBlob('crash/app', config.digest);
    await store.repositories.linkBlob('crash/app', layer.digest);
    await store.repositories.linkManifest('crash/app', { digest: manifest.digest, mediaType: MediaType.ociManifest, size: manifest.size });
    if (seed === 'tagged') await store.repositories.setTag('crash/app', 'v1', manifest.digest);
  }
  // garbage, written two hours ago
  const old = new Date(Date.now() - 2 * 3_600_000);
  const garbage = new Set<string>();
  for (let i = 0; i < GARBAGE; i++) {
    const { digest } = await store.blobs.put(`garbage ${i} ${'g'.repeat(i % 512)}`);
    garbage.add(digestHex(digest));
    await fs.utimes(join(root, 'content', 'blobs', 'sha256', digestHex(digest)), old, old);
  }
  const past = new Date(Date.now() - 2 * 3_600_000);
  await fs.utimes(join(root, 'content', 'repositories', 'crash', 'app', '_layers', 'sha256'), past, past);
  const reachable = (await markReachable(store, { cutoff: Date.now() })).marked;
  t.is(reachable.size, 9, 'busybox (manifest, config, layer) and crash/app (two manifests, two configs, two layers)');
  t.deepEqual(await verify(root, reachable), []);

  // kill the GC once it has claimed blobs
  const claimed = join(root, 'content', 'gc', 'claimed', 'sha256');
  const child = spawn(process.execPath, [tsbuildBin, '--root', root, 'registry', 'garbage-collect', '--grace-period', '1m'], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await withDeadline(
    (async () => {
      while (!(existsSync(claimed) && readdirSync(claimed).length > 0)) {
        if (child.exitCode !== null) throw new Error('the GC finished before it could be killed');
        await new Promise((r) => setTimeout(r, 1));
      }
    })(),
    60_000,
    'the GC claiming blobs',
  );
  child.kill('SIGKILL');
  await exited;
  const left = garbageLeft(root, garbage);
  t.true(left > 0, 'killed midway: garbage is left');
  t.true(existsSync(join(root, 'content', 'gc', 'lock')), 'the killed GC left its lock');
  t.deepEqual(await verify(root, reachable), [], 'every reachable blob in place, with its bytes');

  const second = await withDeadline(tsbuild(root, ['registry', 'garbage-collect', '--grace-period', '1m']), 120_000, 'the second GC');
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /blobs and 0 manifests deleted/);
  t.is(garbageLeft(root, garbage), 0, 'the second GC deleted the rest of the garbage');
  t.deepEqual(await verify(root, reachable), []);
  t.false(existsSync(join(root, 'content', 'gc', 'lock')));
  t.deepEqual(existsSync(claimed) ? readdirSync(claimed) : [], []);
});

test('a second GC while one runs is refused in one line; prune too', async (t) => {
  const root = tempDir('gc-lock-');
  const store = await Store.open(root);
  // a live owner: this test process, as a running registry's online GC would hold it
  await store.driver.putContent(
    'gc/lock',
    JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), startedAt: new Date().toISOString() }),
  );
  for (const args of [
    ['registry', 'garbage-collect'],
    ['prune', '-f'],
  ]) {
    const r = await tsbuild(root, args);
    t.is(r.code, 1, r.stdout);
    // garbage-collect can wait for it (--wait) and says so; prune just stops
    const hint = args[0] === 'registry' ? ' \\(or pass --wait DURATION\\)' : '';
    t.regex(
      r.stderr,
      new RegExp(`^tsbuild: another garbage collection is running on this store \\(pid \\d+ on .* since .*\\); wait for it to finish${hint}\\n$`),
    );
  }
});
