import test from 'ava';
import { promises as fs, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { digestOf, parseDigest } from '../oci/index.js';
import { BlobNotFoundError, DigestMismatchError, IngestNotFoundError, IngestOffsetError, SizeMismatchError, Store, warmHashThread } from '../store/index.js';
import { tempDir } from './helpers/temp.js';

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(dir);
  return out;
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('writes a stream, verifies it and reads it back whole and by range', async (t) => {
  const store = await Store.open(tempDir());
  const data = randomBytes(3 << 20);
  const info = await store.blobs.write(Readable.from([data.subarray(0, 100), data.subarray(100)]), { digest: digestOf(data), size: data.length });
  t.is(info.digest, digestOf(data));
  t.is(info.size, data.length);
  t.true((await readAll(await store.blobs.read(info.digest))).equals(data));
  t.true((await readAll(await store.blobs.read(info.digest, { start: 10, end: 19 }))).equals(data.subarray(10, 20)));
  t.is((await store.blobs.stat(info.digest))?.size, data.length);
  t.deepEqual(await store.ingests.list(), [], 'no ingest left after commit');
});

test('a digest mismatch stores nothing and says which digests differ', async (t) => {
  const store = await Store.open(tempDir());
  const wrong = digestOf('something else');
  const err = await t.throwsAsync(store.blobs.write(Readable.from([Buffer.from('hello')]), { digest: wrong }), { instanceOf: DigestMismatchError });
  t.regex(err!.message, /expected sha256:[0-9a-f]{64}, content has sha256:/);
  t.false(await store.blobs.has(wrong));
  t.false(await store.blobs.has(digestOf('hello')));
  t.deepEqual(await store.ingests.list(), []);
  await t.throwsAsync(store.blobs.put('abc', { digest: wrong }), { instanceOf: DigestMismatchError });
  await t.throwsAsync(store.blobs.write(Readable.from([Buffer.from('abc')]), { size: 4 }), { instanceOf: SizeMismatchError });
});

test('a stream that breaks midway leaves no visible blob', async (t) => {
  const store = await Store.open(tempDir());
  const data = randomBytes(1 << 20);
  async function* broken() {
    yield data.subarray(0, 1000);
    throw new Error('connection reset');
  }
  await t.throwsAsync(store.blobs.write(Readable.from(broken()), { digest: digestOf(data) }), { message: /connection reset/ });
  t.false(await store.blobs.has(digestOf(data)));
  t.false(await store.blobs.has(digestOf(data.subarray(0, 1000))));
  const visible = [];
  for await (const d of store.blobs.list()) visible.push(d);
  t.deepEqual(visible, []);
});

test('reading a missing blob is a clear not-found error', async (t) => {
  const store = await Store.open(tempDir());
  const d = digestOf('nope');
  await t.throwsAsync(store.blobs.read(d), { instanceOf: BlobNotFoundError, message: `blob not found: ${d}` });
  await t.throwsAsync(store.blobs.delete(d), { instanceOf: BlobNotFoundError });
});

test('concurrent writers of the same digest in one process all succeed with one blob', async (t) => {
  const store = await Store.open(tempDir());
  const data = randomBytes(2 << 20);
  const results = await Promise.all(Array.from({ length: 8 }, () => store.blobs.write(Readable.from([data]), { digest: digestOf(data) })));
  t.true(results.every((r) => r.digest === digestOf(data)));
  t.true((await readAll(await store.blobs.read(digestOf(data)))).equals(data));
  t.deepEqual(await store.ingests.list(), []);
});

test('two processes writing the same blob both succeed and the blob is intact', async (t) => {
  const root = tempDir();
  const src = join(tempDir(), 'data');
  const data = randomBytes(16 << 20);
  writeFileSync(src, data);
  const storeModule = new URL('../store/index.js', import.meta.url).href;
  const script = `
    import { createReadStream } from 'node:fs';
    const { Store } = await import(${JSON.stringify(storeModule)});
    const store = await Store.open(process.argv[1]);
    const info = await store.blobs.write(createReadStream(process.argv[2]), { digest: process.argv[3] });
    console.log(info.digest);`;
  const runOne = () =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, root, src, digestOf(data)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      // 'close', not 'exit': the exit can come before the last of stdout is read
      child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`writer exited ${code}`))));
    });
  const [a, b] = await Promise.all([runOne(), runOne()]);
  t.is(a, digestOf(data));
  t.is(b, digestOf(data));
  const store = await Store.open(root);
  t.true((await readAll(await store.blobs.read(digestOf(data)))).equals(data));
});

test('resumable ingest: appends at offsets, refuses a wrong offset, survives a restart', async (t) => {
  const root = tempDir();
  const data = randomBytes(5 << 20);
  const first = await Store.open(root);
  const ingest = await first.ingests.create();
  t.is(await ingest.size(), 0);
  t.is(await ingest.append(Readable.from([data.subarray(0, 1 << 20)]), { offset: 0 }), 1 << 20);
  const err = await t.throwsAsync(ingest.append(Readable.from([data.subarray(3 << 20)]), { offset: 3 << 20 }), { instanceOf: IngestOffsetError });
  t.regex(err!.message, /offset 3145728 does not match current size 1048576/);
  t.is(await ingest.append(Readable.from([data.subarray(1 << 20, 2 << 20)])), 2 << 20);

  // a new process: digest state is gone, bytes are not
  const second = await Store.open(root);
  const again = await second.ingests.open(ingest.id);
  t.is(await again.size(), 2 << 20);
  t.is(await again.append(Readable.from([data.subarray(2 << 20)]), { offset: 2 << 20 }), data.length);
  t.false(await second.blobs.has(digestOf(data)), 'not visible before commit');
  const info = await again.commit(digestOf(data), data.length);
  t.is(info.digest, digestOf(data));
  t.true((await readAll(await second.blobs.read(info.digest))).equals(data));
  await t.throwsAsync(second.ingests.open(ingest.id), { instanceOf: IngestNotFoundError });
});

test('handed-over chunks are written and hashed on the hashing thread; chunks sharing memory are copied', async (t) => {
  const store = await Store.open(tempDir());
  await warmHashThread();
  // slices of one buffer: handing them over must not take the memory from under their owner
  const shared = randomBytes(3 << 20);
  const slices = [shared.subarray(0, 1 << 20), shared.subarray(1 << 20, 2 << 20), shared.subarray(2 << 20)];
  const ingest = await store.ingests.create();
  t.is(await ingest.append(Readable.from(slices), { handOver: true }), shared.length);
  t.is(shared.length, 3 << 20, 'the owner still has its bytes');
  t.is((await ingest.commit(digestOf(shared), shared.length)).digest, digestOf(shared));

  // chunks that own their memory move without a copy and are unusable afterwards
  const owned = Array.from({ length: 40 }, () => randomBytes(64 << 10));
  const expected = digestOf(Buffer.concat(owned));
  const second = await store.ingests.create();
  t.is(await second.append(Readable.from(owned), { handOver: true }), 40 * (64 << 10));
  t.true(
    owned.every((c) => c.byteLength === 0),
    'moved to the hashing thread',
  );
  t.is((await second.commit(expected)).digest, expected);
  t.true((await readAll(await store.blobs.read(expected))).length === 40 * (64 << 10));

  // one buffer yielded twice moves once and is copied the second time
  const twice = randomBytes(64 << 10);
  const both = digestOf(Buffer.concat([twice, twice]));
  const third = await store.ingests.create();
  t.is(await third.append(Readable.from([twice, twice]), { handOver: true }), 2 * (64 << 10));
  t.is((await third.commit(both)).digest, both);
});

test('a full disk fails the append with its error; the bytes that arrived stay resumable', async (t) => {
  const dir = tempDir();
  // the batch that fills the disk is the one a background flush of the file waits on (at 8 MiB)
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir]);
  if (mounted.status !== 0) return t.pass(`skipped: cannot mount a tmpfs here (${mounted.stderr.toString().trim()})`);
  t.teardown(() => spawnSync('umount', ['-l', dir]));
  const store = await Store.open(dir);
  const ingest = await store.ingests.create();
  const data = randomBytes(16 << 20);
  const chunks = Array.from({ length: 256 }, (_, i) => Buffer.from(data.subarray(i << 16, (i + 1) << 16)));
  const err = await t.throwsAsync(ingest.append(Readable.from(chunks), { handOver: true }));
  t.regex(`${(err as NodeJS.ErrnoException).code} ${err!.message}`, /ENOSPC|no space/i);
  const size = await ingest.size();
  t.true(size < data.length, `${size} bytes kept`);
  // the session is still there and reports what it holds; committing it cannot pass verification
  t.is(await (await store.ingests.open(ingest.id)).size(), size);
  await t.throwsAsync(ingest.commit(digestOf(data)), { instanceOf: DigestMismatchError });
  t.false(await store.blobs.has(digestOf(data)));
});

test('committing bytes that are already a blob keeps the blob file in place and removes the ingest', async (t) => {
  const store = await Store.open(tempDir());
  const data = randomBytes(1 << 20);
  const first = await store.blobs.write(Readable.from([data]));
  const file = store.blobFile(first.digest)!;
  const before = await fs.stat(file);
  const again = await store.ingests.create();
  await again.append(Readable.from([Buffer.from(data)]), { handOver: true });
  t.deepEqual(await again.commit(first.digest), { digest: first.digest, size: data.length });
  t.is((await fs.stat(file)).ino, before.ino, 'readers of the blob keep their file');
  t.deepEqual(await store.ingests.list(), []);
  t.true((await readAll(await store.blobs.read(first.digest))).equals(data));
});

test('committing an ingest under the wrong digest removes it and stores nothing', async (t) => {
  const store = await Store.open(tempDir());
  const ingest = await store.ingests.create();
  await ingest.append(Readable.from([Buffer.from('partial')]));
  await t.throwsAsync(ingest.commit(digestOf('other')), { instanceOf: DigestMismatchError });
  t.false(await store.blobs.has(digestOf('partial')));
  await t.throwsAsync(store.ingests.open(ingest.id), { instanceOf: IngestNotFoundError });
});

test('an empty blob can be written and committed', async (t) => {
  const store = await Store.open(tempDir());
  const info = await store.blobs.write(Readable.from([]), { digest: digestOf('') });
  t.is(info.size, 0);
  t.true(await store.blobs.has(digestOf('')));
});

test('unknown and hostile ingest ids are not found', async (t) => {
  const store = await Store.open(tempDir());
  for (const id of ['../../etc', 'nope', '00000000-0000-0000-0000-000000000000', '']) {
    await t.throwsAsync(store.ingests.open(id), { instanceOf: IngestNotFoundError });
  }
});

test('idle ingests expire, active ones stay', async (t) => {
  const store = await Store.open(tempDir());
  const old = await store.ingests.create();
  await old.append(Readable.from([Buffer.from('x')]));
  const fresh = await store.ingests.create();
  const later = Date.now() + 60_000;
  await fresh.append(Readable.from([Buffer.from('y')]));
  const localData = store.driver.localPath!(`ingest/${fresh.id}/data`);
  await fs.utimes(localData, new Date(later), new Date(later));
  const removed = await store.ingests.expire(30_000, later);
  t.deepEqual(removed, [old.id]);
  t.deepEqual(await store.ingests.list(), [fresh.id]);
});

test('a session receiving bytes, or still being created, is never expired; an old broken one is', async (t) => {
  const store = await Store.open(tempDir());
  const later = Date.now() + 60_000;
  // An append that started but has not received a byte yet (a PATCH waiting for its body).
  const waiting = await store.ingests.create();
  const body = new PassThrough();
  const appending = waiting.append(body);
  // A session whose files are not all written yet, and one broken long ago.
  const root = store.driver.localPath!('ingest');
  mkdirSync(join(root, '0123456789abcdef0123456789abcdef'), { recursive: true });
  mkdirSync(join(root, 'fedcba9876543210fedcba9876543210'), { recursive: true });
  const old = new Date(Date.now() - 120_000);
  await fs.utimes(join(root, 'fedcba9876543210fedcba9876543210'), old, old);
  t.deepEqual(await store.ingests.expire(30_000, Date.now() + 1), ['fedcba9876543210fedcba9876543210']);
  // A minute on, the half-made one counts as broken; the session still receiving stays.
  t.deepEqual(await store.ingests.expire(30_000, later), ['0123456789abcdef0123456789abcdef']);
  t.true((await store.ingests.list()).includes(waiting.id));
  body.end(Buffer.from('late bytes'));
  t.is(await appending, 10);
  // Once the append is over, the same session expires when idle.
  t.true((await store.ingests.expire(30_000, later)).includes(waiting.id));
});

test('start-up sweep removes temp files of dead writers and keeps live ones', async (t) => {
  const root = tempDir();
  const store = await Store.open(root);
  await store.blobs.put('x');
  const dir = join(root, 'content', 'blobs', 'sha256');
  const dead = join(dir, `${'b'.repeat(64)}.tmp-999999-0123456789ab`);
  const live = join(dir, `${'c'.repeat(64)}.tmp-${process.pid}-0123456789ab`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(dead, 'partial');
  writeFileSync(live, 'in progress');
  const reopened = await Store.open(root);
  t.false(existsSync(dead));
  t.true(existsSync(live));
  const blobs = [];
  for await (const d of reopened.blobs.list()) blobs.push(d);
  t.deepEqual(blobs, [digestOf('x')], 'temp files are never listed as blobs');
  t.true((await listFiles(root)).every((f) => !f.includes('999999')));
  t.truthy(parseDigest(blobs[0]!));
});
