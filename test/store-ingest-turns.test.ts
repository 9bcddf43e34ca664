/**
 * One operation at a time per ingest, the newest winning: an append waiting on a silent source never
 * holds its ingest, and every way an append can stop leaves the ingest consistent.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { digestOf } from '../oci/index.js';
import { IngestNotFoundError, IngestSupersededError, SourceError, SourceIdleError, Store } from '../store/index.js';
import { withDeadline } from './helpers/deadline.js';
import { tempDir } from './helpers/temp.js';

const DEADLINE_MS = 20_000;
const settle = () => new Promise((r) => setTimeout(r, 100));

test('a newer append takes over from one waiting on a silent source; bytes it had not written are dropped', async (t) => {
  const store = await Store.open(tempDir());
  const ingest = await store.ingests.create();
  const data = randomBytes(3 << 20);
  t.is(await ingest.append(Readable.from([data.subarray(0, 2 << 20)]), { handOver: true }), 2 << 20);
  const silent = new PassThrough();
  const stale = ingest.append(silent, { leaveSourceOpen: true });
  silent.write(data.subarray(2 << 20, (2 << 20) + 1000)); // gathered, not written: the source then says nothing
  await settle();
  const resumed = ingest.append(Readable.from([data.subarray(2 << 20)]), { offset: 2 << 20 });
  await t.throwsAsync(withDeadline(stale, DEADLINE_MS, 'the stale append'), { instanceOf: IngestSupersededError });
  t.false(silent.destroyed, "leaveSourceOpen: the source is its owner's to answer on");
  t.is(await withDeadline(resumed, DEADLINE_MS, 'the newer append'), data.length);
  t.is((await ingest.commit(digestOf(data))).digest, digestOf(data));
});

test('an append at another offset after a takeover is refused with the stored size; by default a failed append destroys its source', async (t) => {
  const store = await Store.open(tempDir());
  const ingest = await store.ingests.create();
  await ingest.append(Readable.from([Buffer.from('0123456789')]));
  const silent = new PassThrough();
  const stale = ingest.append(silent);
  await settle();
  const err = await t.throwsAsync(ingest.append(Readable.from([Buffer.from('x')]), { offset: 3 }));
  t.like(err, { expected: 10, given: 3 });
  await t.throwsAsync(stale, { instanceOf: IngestSupersededError });
  t.true(silent.destroyed);
});

test('cancel while an append streams: the append fails with IngestNotFoundError and nothing is left', async (t) => {
  const store = await Store.open(tempDir());
  const ingest = await store.ingests.create();
  const body = new PassThrough();
  const appending = ingest.append(body, { handOver: true });
  body.write(randomBytes(3 << 20));
  await settle();
  await withDeadline(ingest.cancel(), DEADLINE_MS, 'the cancel');
  await t.throwsAsync(appending, { instanceOf: IngestNotFoundError });
  await t.throwsAsync(store.ingests.open(ingest.id), { instanceOf: IngestNotFoundError });
  const root = store.driver.localPath!('ingest');
  t.deepEqual(existsSync(root) ? readdirSync(root) : [], []);
});

test('a source silent for the idle time is cut; what arrived is kept and the upload completes from there', async (t) => {
  const store = await Store.open(tempDir());
  const ingest = await store.ingests.create();
  const data = randomBytes((1 << 20) + 12345);
  const body = new PassThrough();
  const appending = ingest.append(body, { idleTimeoutMs: 300, leaveSourceOpen: true });
  body.write(data.subarray(0, 70_000));
  const err = await t.throwsAsync(withDeadline(appending, DEADLINE_MS, 'the idle append'), { instanceOf: SourceIdleError });
  t.true(err instanceof SourceError);
  t.is(await ingest.size(), 70_000);
  t.is(await ingest.append(Readable.from([data.subarray(70_000)]), { offset: 70_000 }), data.length);
  t.is((await ingest.commit(digestOf(data))).digest, digestOf(data));
});

test('a source that closes early keeps what arrived; the ingest resumes from there', async (t) => {
  const store = await Store.open(tempDir());
  const ingest = await store.ingests.create();
  const data = randomBytes(3 << 20);
  const body = new PassThrough();
  const appending = ingest.append(body, { handOver: true });
  body.write(data.subarray(0, 1500_000));
  await settle();
  body.destroy();
  await t.throwsAsync(appending, { instanceOf: SourceError });
  t.is(await ingest.size(), 1500_000);
  await ingest.append(Readable.from([data.subarray(1500_000)]), { offset: 1500_000 });
  t.is((await ingest.commit(digestOf(data))).digest, digestOf(data));
});

test('a full disk refuses an ingest start and leaves neither its directory nor a temp file', async (t) => {
  const dir = tempDir();
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  if (mounted.status !== 0) return t.pass(`skipped: cannot mount a tmpfs here (${mounted.stderr.toString().trim()})`);
  t.teardown(() => spawnSync('umount', ['-l', dir]));
  const store = await Store.open(dir);
  const kept = await store.ingests.create();
  const filler = await store.ingests.create();
  await t.throwsAsync(filler.append(Readable.from([randomBytes(2 << 20)])), { message: /ENOSPC|no space/i });
  for (let i = 0; i < 3; i++) await t.throwsAsync(store.ingests.create(), { code: 'ENOSPC' });
  t.deepEqual((await store.ingests.list()).sort(), [kept.id, filler.id].sort());
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [e.name]));
  t.deepEqual(
    walk(dir).filter((n) => n.includes('.tmp-')),
    [],
  );
});

test('hashing threads never keep the process alive once nothing waits on them', (t) => {
  const script = `import { OffThreadDigester, warmHashThread } from ${JSON.stringify(new URL('../store/off-thread-digester.js', import.meta.url).href)};
import { openSync, closeSync } from 'node:fs';
await warmHashThread();
const a = new OffThreadDigester('sha256');
new OffThreadDigester('sha256'); // made, never used
const fd = openSync(${JSON.stringify(join(tempDir(), 'f'))}, 'a');
await a.write(fd, [new Uint8Array(3 << 20), new Uint8Array(17)], true);
closeSync(fd);
console.log(await a.digest());`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  t.is(r.signal, null, 'exited by itself');
  t.is(
    r.stdout.trim(),
    `sha256:${createHash('sha256')
      .update(new Uint8Array((3 << 20) + 17))
      .digest('hex')}`,
    r.stderr,
  );
});

test('blobs written before a hashing thread runs are written and hashed by their caller; a large one starts the thread for the next', (t) => {
  // a fresh process: no thread was asked for yet (a build's small COPY layers, a server's first start)
  const script = `import { Readable } from 'node:stream';
import { Store } from ${JSON.stringify(new URL('../store/index.js', import.meta.url).href)};
const store = await Store.open(${JSON.stringify(tempDir())});
const out = [];
const write = async (chunks) => {
  const ingest = await store.ingests.create();
  await ingest.append(Readable.from(chunks), { handOver: true });
  out.push({ digest: (await ingest.commit()).digest, moved: chunks.every((c) => c.byteLength === 0) });
};
const mk = (n, size, seed) => Array.from({ length: n }, (_, i) => new Uint8Array(size).fill((seed + i) & 255));
await write(mk(4, 64 << 10, 1)); // small: in place
await write(mk(160, 64 << 10, 2)); // 10 MiB, still in place: the thread starts for what follows
await new Promise((r) => setTimeout(r, 1500));
await write(mk(4, 64 << 10, 3)); // on the thread now: handed-over chunks move to it
console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  t.is(r.signal, null, 'exited by itself');
  const out = JSON.parse(r.stdout.trim() || '[]') as Array<{ digest: string; moved: boolean }>;
  const expect = (n: number, size: number, seed: number) => {
    const h = createHash('sha256');
    for (let i = 0; i < n; i++) h.update(new Uint8Array(size).fill((seed + i) & 255));
    return `sha256:${h.digest('hex')}`;
  };
  t.deepEqual(
    out,
    [
      { digest: expect(4, 64 << 10, 1), moved: false },
      { digest: expect(160, 64 << 10, 2), moved: false },
      { digest: expect(4, 64 << 10, 3), moved: true },
    ],
    r.stderr,
  );
});
