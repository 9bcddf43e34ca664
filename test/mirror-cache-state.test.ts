/**
 * The mirror's state files under the store (mirror/stats.json, access.json, pins.json) are shared by
 * every process on the store — a registry, `mirror sync`, `mirror pin` — so each change is a locked
 * read-modify-write: counters from processes flushing at the same moment add up, access times merge
 * (the later wins), pins are idempotent.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseNormalized, type Digest } from '../oci/index.js';
import { Store } from '../store/index.js';
import { AccessLog, addPin, readAccess, readPins, readStats, removePin, StatsRecorder, type MirrorMetrics, type UpstreamTotals } from '../registry/index.js';
import { tempDir } from './helpers/temp.js';

const registryModule = fileURLToPath(new URL('../registry/index.js', import.meta.url));
const storeModule = fileURLToPath(new URL('../store/index.js', import.meta.url));

function totals(): UpstreamTotals {
  return { hits: 0, misses: 0, coalesced: 0, stale: 0, upstreamBytes: 0, upstreamErrors: 0, bytesServedFromCache: 0 };
}

/**
 * A process that counts `rounds` hits and 1000 upstream bytes per round, flushing after each; all start
 * counting at `startAt` (ms since the epoch), so their flushes overlap.
 */
function counter(root: string, rounds: number, startAt: number): Promise<number | null> {
  const script = `
    const { StatsRecorder } = await import(${JSON.stringify(registryModule)});
    const { Store } = await import(${JSON.stringify(storeModule)});
    const store = await Store.open(${JSON.stringify(root)}, { noSweep: true });
    const t = { hits: 0, misses: 0, coalesced: 0, stale: 0, upstreamBytes: 0, upstreamErrors: 0, bytesServedFromCache: 0 };
    const recorder = new StatsRecorder(store.driver, { totals: new Map([['docker.io', t]]) });
    await new Promise((r) => setTimeout(r, Math.max(0, ${startAt} - Date.now())));
    for (let i = 0; i < ${rounds}; i++) { t.hits++; t.upstreamBytes += 1000; await recorder.flush(); }
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

test('counters flushed by several processes at once add up', async (t) => {
  const root = tempDir('mirror-state-');
  await Store.open(root);
  const startAt = Date.now() + 2000;
  const codes = await Promise.all([counter(root, 150, startAt), counter(root, 150, startAt), counter(root, 150, startAt)]);
  t.deepEqual(codes, [0, 0, 0]);
  const stats = await readStats((await Store.open(root)).driver);
  t.is(stats.upstreams['docker.io']?.hits, 450);
  t.is(stats.upstreams['docker.io']?.upstreamBytes, 450_000);
});

test('a recorder adds only what was counted since its last flush; concurrent flushes count once', async (t) => {
  const store = await Store.open(tempDir('mirror-state-'));
  const mine = totals();
  const recorder = new StatsRecorder(store.driver, { totals: new Map([['ghcr.io', mine]]) } as unknown as MirrorMetrics);
  mine.misses = 3;
  mine.bytesServedFromCache = 500;
  await Promise.all([recorder.flush(), recorder.flush(), recorder.flush()]);
  mine.misses = 5;
  await recorder.close();
  const stats = await readStats(store.driver);
  t.is(stats.upstreams['ghcr.io']?.misses, 5);
  t.is(stats.upstreams['ghcr.io']?.bytesServedFromCache, 500);
});

test('access times from two logs merge, the later time winning', async (t) => {
  const store = await Store.open(tempDir('mirror-state-'));
  const a = new AccessLog(store);
  const b = new AccessLog(store);
  const d1 = `sha256:${'1'.repeat(64)}` as Digest;
  const d2 = `sha256:${'2'.repeat(64)}` as Digest;
  a.touch('docker.io/library/busybox', d1);
  await a.flush();
  const first = (await readAccess(store.driver)).manifests['docker.io/library/busybox']?.[d1];
  await new Promise((r) => setTimeout(r, 20));
  b.touch('docker.io/library/busybox', d1);
  b.touch('docker.io/library/busybox', d2);
  await Promise.all([b.close(), a.close()]);
  const doc = await readAccess(store.driver);
  t.truthy(first);
  t.true(doc.manifests['docker.io/library/busybox']![d1]! > first!);
  t.truthy(doc.manifests['docker.io/library/busybox']![d2]);
});

test('pins: normalized, idempotent, removable; a digest wins over a tag', async (t) => {
  const store = await Store.open(tempDir('mirror-state-'));
  t.true(await addPin(store.driver, parseNormalized('busybox')));
  t.false(await addPin(store.driver, parseNormalized('docker.io/library/busybox:latest')), 'the same image pinned twice');
  const digest = `sha256:${'a'.repeat(64)}`;
  t.true(await addPin(store.driver, parseNormalized(`localhost:5000/app:v1@${digest}`)));
  t.deepEqual(
    (await readPins(store.driver)).map((p) => [p.reference, p.repository, p.tag ?? p.digest]),
    [
      ['docker.io/library/busybox:latest', 'docker.io/library/busybox', 'latest'],
      [`localhost:5000/app@${digest}`, 'localhost-5000/app', digest],
    ],
  );
  t.true(await removePin(store.driver, parseNormalized('busybox:latest')));
  t.false(await removePin(store.driver, parseNormalized('busybox:latest')));
  t.is((await readPins(store.driver)).length, 1);
});
