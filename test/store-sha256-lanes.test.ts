import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { digestOf } from '../oci/index.js';
import { DigestMismatchError, Store } from '../store/index.js';
import { hashingStats } from '../store/off-thread-digester.js';
import { LANES, Sha256Lanes } from '../store/sha256-lanes.js';
import { tempDir } from './helpers/temp.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

test.serial('each lane hashes its own stream, whatever the lengths and chunking, with other lanes busy or idle', (t) => {
  const lanes = Sha256Lanes.create();
  if (!lanes) return t.fail('WebAssembly SIMD is unavailable in this Node');
  // Lengths around the padding edges (55/56/63/64 bytes) and slices longer than a lane's buffer.
  const lengths = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, (64 << 10) - 1, (64 << 10) + 7, (200 << 10) + 33];
  let seed = 1;
  const random = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) % n;
  for (let round = 0; round < 12; round++) {
    const count = 1 + (round % LANES);
    const datas = Array.from({ length: count }, (_, i) => randomBytes(lengths[(round * 5 + i * 3) % lengths.length]!));
    const streams = datas.map(() => lanes.open()!);
    const offsets = datas.map(() => 0);
    // Feed in random pieces, stepping the lanes in between, until everything is fed.
    for (;;) {
      const open = offsets.flatMap((o, i) => (o < datas[i]!.length ? [i] : []));
      if (open.length === 0) break;
      const i = open[random(open.length)]!;
      const take = Math.min(datas[i]!.length - offsets[i]!, 1 + random(90_000));
      lanes.feed(streams[i]!, datas[i]!.subarray(offsets[i]!, offsets[i]! + take));
      offsets[i]! += take;
      if (random(3) === 0) lanes.step();
    }
    // Finish in a shuffled order: a finished lane's neighbours must keep their states.
    const order = datas.map((_, i) => i).sort(() => random(3) - 1);
    for (const i of order) t.is(hex(lanes.finish(streams[i]!)), sha256(datas[i]!), `round ${round}, stream ${i} of ${datas[i]!.length} bytes`);
    t.is(lanes.free, LANES);
  }
});

test.serial('a lane stream counts the bytes it took, and a fifth stream gets no lane', (t) => {
  const lanes = Sha256Lanes.create()!;
  const streams = Array.from({ length: LANES }, () => lanes.open()!);
  t.is(lanes.open(), undefined);
  const data = randomBytes(300_000);
  lanes.feed(streams[0]!, data);
  t.is(lanes.ready, 1);
  while (lanes.step());
  t.is(streams[0]!.consumed, data.length);
  t.is(hex(lanes.finish(streams[0]!)), sha256(data));
  for (const s of streams.slice(1)) lanes.close(s);
  t.is(lanes.free, LANES);
});

// The hashing threads are per process, and ava runs each test file in its own: the counts below see only
// this file's uploads. Serial, so one test's streams are not another's company.
const chunked = (data: Buffer) => Array.from({ length: Math.ceil(data.length / (64 << 10)) }, (_, i) => Buffer.from(data.subarray(i << 16, (i + 1) << 16)));

test.serial('uploads arriving together share the SIMD lanes; each is verified against its own digest', async (t) => {
  const store = await Store.open(tempDir());
  const before = await hashingStats();
  const datas = Array.from({ length: 8 }, (_, i) => randomBytes((3 << 20) + 4093 * i));
  const ingests = await Promise.all(datas.map(() => store.ingests.create()));
  const sizes = await Promise.all(ingests.map((ingest, i) => ingest.append(Readable.from(chunked(datas[i]!)), { handOver: true })));
  t.deepEqual(sizes, datas.map((d) => d.length));
  // One is committed under another's digest: refused, and nothing becomes visible.
  await t.throwsAsync(ingests[7]!.commit(digestOf(datas[0]!)), { instanceOf: DigestMismatchError });
  for (let i = 0; i < 7; i++) t.is((await ingests[i]!.commit(digestOf(datas[i]!), datas[i]!.length)).digest, digestOf(datas[i]!));
  t.false(await store.blobs.has(digestOf(datas[7]!)));
  for (let i = 0; i < 7; i++) t.true(Buffer.concat(await (await store.blobs.read(digestOf(datas[i]!))).toArray()).equals(datas[i]!));
  const after = await hashingStats();
  t.true(after.lanes - before.lanes >= 4, `streams hashed in lanes: ${after.lanes - before.lanes} (OpenSSL: ${after.openssl - before.openssl})`);
});

test.serial('an upload alone hashes with OpenSSL at once, without waiting for company', async (t) => {
  const store = await Store.open(tempDir());
  await new Promise((r) => setTimeout(r, 200)); // the previous test's uploads no longer count as coming
  const before = await hashingStats();
  const data = randomBytes(8 << 20);
  const ingest = await store.ingests.create();
  await ingest.append(Readable.from(chunked(data)), { handOver: true });
  t.is((await ingest.commit(digestOf(data))).digest, digestOf(data));
  const after = await hashingStats();
  t.deepEqual({ lanes: after.lanes - before.lanes, openssl: after.openssl - before.openssl }, { lanes: 0, openssl: 1 });
});

test.serial('hashing threads never keep the process alive once nothing waits on them', (t) => {
  // Two digesters start both threads (one only announced, never fed); the process must still exit.
  const script = `import { OffThreadDigester } from ${JSON.stringify(new URL('../store/off-thread-digester.js', import.meta.url).href)};
const a = new OffThreadDigester('sha256');
new OffThreadDigester('sha256').announce();
a.update(new Uint8Array(3 << 20));
console.log(await a.digest());`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  t.is(r.signal, null, 'exited by itself');
  t.is(r.stdout.trim(), `sha256:${createHash('sha256').update(new Uint8Array(3 << 20)).digest('hex')}`, r.stderr);
});

test.serial('a disk filling up under uploads sharing the lanes fails those appends with ENOSPC and loses nothing else', async (t) => {
  const dir = tempDir();
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=10m', 'tmpfs', dir]);
  if (mounted.status !== 0) return t.pass(`skipped: cannot mount a tmpfs here (${mounted.stderr.toString().trim()})`);
  t.teardown(() => spawnSync('umount', ['-l', dir]));
  const store = await Store.open(dir);
  const before = await hashingStats();
  const datas = Array.from({ length: 8 }, () => randomBytes(3 << 20));
  const ingests = await Promise.all(datas.map(() => store.ingests.create()));
  const results = await Promise.allSettled(ingests.map((ingest, i) => ingest.append(Readable.from(chunked(datas[i]!)), { handOver: true })));
  const failed = results.filter((r) => r.status === 'rejected');
  t.true(failed.length > 0, 'the disk filled');
  for (const r of failed) t.regex(`${(r.reason as NodeJS.ErrnoException).code} ${(r.reason as Error).message}`, /ENOSPC|no space/i);
  t.true((await hashingStats()).lanes - before.lanes >= 4, 'the uploads shared lanes');
  // Every session is still there; the complete ones verify, the cut ones keep what arrived and fail verification.
  for (let i = 0; i < ingests.length; i++) {
    const size = await (await store.ingests.open(ingests[i]!.id)).size();
    if (results[i]!.status === 'fulfilled') {
      t.is(size, datas[i]!.length);
      t.is((await ingests[i]!.commit(digestOf(datas[i]!))).digest, digestOf(datas[i]!));
    } else {
      t.true(size < datas[i]!.length);
      await t.throwsAsync(ingests[i]!.commit(digestOf(datas[i]!)), { instanceOf: DigestMismatchError });
    }
  }
});
