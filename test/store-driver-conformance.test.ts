/**
 * The StorageDriver contract (store/driver/storage-driver.ts), run against every driver: the filesystem,
 * and S3 on Ceph RGW started by scripts/scaleout.sh (skipped with a message when it is absent; failing
 * under CI=true). Each case gets a fresh root (a temp dir, or a fresh key prefix in the bucket).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { FilesystemDriver } from '../store/driver/filesystem-driver.js';
import { S3Driver } from '../store/driver/s3-driver.js';
import type { StorageDriver } from '../store/driver/storage-driver.js';
import { PathNotFoundError, SourceError, SourceIdleError } from '../store/errors.js';
import { testWithScaleout } from './helpers/scaleout.js';
import { tempDir } from './helpers/temp.js';

const { test, peers } = await testWithScaleout();
const made: S3Driver[] = [];
test.after.always(async () => {
  for (const d of made) {
    await d.delete('').catch(() => undefined);
    d.client.destroy();
  }
});

type Maker = () => StorageDriver;
const drivers: [string, Maker][] = [
  ['filesystem', () => new FilesystemDriver(tempDir('tsbuild-driver-'))],
  [
    's3',
    () => {
      const d = new S3Driver({ ...peers!.s3, rootDirectory: `conformance-${randomUUID()}` });
      made.push(d);
      return d;
    },
  ],
];

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function chunked(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

for (const [kind, make] of drivers) {
  // The filesystem needs no peers: run it even when S3 is absent.
  const run = kind === 'filesystem' ? (await import('ava')).default : test;
  const t = (title: string, fn: (t: ExecutionContext, d: StorageDriver) => Promise<void>) => run(`${kind}: ${title}`, (ctx) => fn(ctx, make()));

  t('small files: put, get, replace; a missing file is PathNotFoundError', async (ctx, d) => {
    await ctx.throwsAsync(d.getContent('a/b/c'), { instanceOf: PathNotFoundError });
    await d.putContent('a/b/c', 'one');
    ctx.is((await d.getContent('a/b/c')).toString(), 'one');
    await d.putContent('a/b/c', new Uint8Array(Buffer.from('two!')));
    ctx.is((await d.getContent('a/b/c')).toString(), 'two!');
    await d.putContent('a/empty', '');
    ctx.is((await d.getContent('a/empty')).length, 0);
  });

  t('reader: whole file and byte ranges (inclusive ends); from past the end gives no bytes', async (ctx, d) => {
    const bytes = randomBytes(100_000);
    await d.putContent('r/f', bytes);
    ctx.true((await readAll(await d.reader('r/f'))).equals(bytes));
    ctx.true((await readAll(await d.reader('r/f', { start: 10, end: 19 }))).equals(bytes.subarray(10, 20)));
    ctx.true((await readAll(await d.reader('r/f', { start: 99_990 }))).equals(bytes.subarray(99_990)));
    ctx.is((await readAll(await d.reader('r/f', { start: 100_000 }))).length, 0);
    await ctx.throwsAsync(d.reader('r/missing'), { instanceOf: PathNotFoundError });
  });

  t('stat: files, directories, missing paths', async (ctx, d) => {
    await d.putContent('s/dir/file', '12345');
    const f = await d.stat('s/dir/file');
    ctx.is(f.size, 5);
    ctx.false(f.isDir);
    ctx.true(Math.abs(f.modTime.getTime() - Date.now()) < 60_000);
    ctx.true((await d.stat('s/dir')).isDir);
    await ctx.throwsAsync(d.stat('s/nothing'), { instanceOf: PathNotFoundError });
  });

  t('a new file appears only at commit; cancel leaves nothing', async (ctx, d) => {
    const w = await d.writer('w/new');
    await w.write([Buffer.from('hello '), Buffer.from('world')], 11);
    ctx.is(w.size, 11);
    await ctx.throwsAsync(d.getContent('w/new'), { instanceOf: PathNotFoundError });
    ctx.is(await w.commit(), 11);
    ctx.is((await d.getContent('w/new')).toString(), 'hello world');
    const c = await d.writer('w/cancelled');
    await c.write([Buffer.from('nope')], 4);
    await c.cancel();
    await ctx.throwsAsync(d.getContent('w/cancelled'), { instanceOf: PathNotFoundError });
    ctx.deepEqual(await d.list('w'), ['new']);
  });

  t('a 21 MiB file written in 64 KiB chunks (several multipart parts) keeps its exact bytes', async (ctx, d) => {
    const bytes = randomBytes(21 << 20);
    const w = await d.writer('big/file');
    for (const batch of chunked(bytes, 1 << 20)) await w.write(chunked(batch, 64 << 10), batch.length);
    ctx.is(await w.commit(), bytes.length);
    ctx.is((await d.stat('big/file')).size, bytes.length);
    ctx.is(sha(await readAll(await d.reader('big/file'))), sha(bytes));
    ctx.true((await readAll(await d.reader('big/file', { start: (5 << 20) - 3, end: (5 << 20) + 3 }))).equals(bytes.subarray((5 << 20) - 3, (5 << 20) + 4)));
  });

  t('sender (drivers that have one): exact bytes of large ranges to fast and slow sockets; a sink that closes midway stops it', async (ctx, d) => {
    if (!d.sender) {
      ctx.pass(`${kind} has no sender`);
      return;
    }
    const bytes = randomBytes(9 << 20);
    await d.putContent('s/file', bytes);
    // A sink keeps copies: the sender reuses a buffer once its write was called back.
    const collect = async (range: { start: number; end?: number }, delayMs: number, closeAfter = Infinity) => {
      const sender = await d.sender!('s/file', range);
      if (!sender) throw new Error('no sender for a large range');
      ctx.is(sender.length, (range.end ?? bytes.length - 1) - range.start + 1);
      const parts: Buffer[] = [];
      let got = 0;
      const sink = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          parts.push(Buffer.from(chunk));
          got += chunk.length;
          if (got > closeAfter) return sink.destroy();
          setTimeout(callback, delayMs);
        },
      });
      await sender.writeTo(sink);
      return Buffer.concat(parts);
    };
    ctx.true((await collect({ start: 0, end: bytes.length - 1 }, 0)).equals(bytes));
    ctx.true((await collect({ start: 3, end: (6 << 20) + 5 }, 0)).equals(bytes.subarray(3, (6 << 20) + 6)));
    ctx.true((await collect({ start: 1 << 20, end: bytes.length - 1 }, 5)).equals(bytes.subarray(1 << 20)));
    await ctx.throwsAsync(collect({ start: 0, end: bytes.length - 1 }, 0, 2 << 20), { message: /closed/ });
    ctx.true((await collect({ start: 7, end: bytes.length - 2 }, 0)).equals(bytes.subarray(7, bytes.length - 1)));
    // to the end: the length comes from the storage's answer
    ctx.true((await collect({ start: 0 }, 0)).equals(bytes));
    ctx.true((await collect({ start: 5 }, 0)).equals(bytes.subarray(5)));
    await ctx.throwsAsync(d.sender('s/missing', { start: 0, end: 2 << 20 }), { instanceOf: PathNotFoundError });
    await ctx.throwsAsync(d.sender('s/missing', { start: 0 }), { instanceOf: PathNotFoundError });
    // a small file to its end comes whole too
    await d.putContent('s/small', 'hello');
    const small = await d.sender('s/small', { start: 0 });
    if (small) {
      const parts: Buffer[] = [];
      const sink = new Writable({
        write(c: Buffer, _encoding, callback) {
          parts.push(Buffer.from(c));
          callback();
        },
      });
      await small.writeTo(sink);
      ctx.is(Buffer.concat(parts).toString(), 'hello');
    }
  });

  t('appends continue small and large files (≥ 5 MiB: an object store copies them server-side)', async (ctx, d) => {
    const small = randomBytes(1000);
    const large = randomBytes((5 << 20) + 17);
    const more = randomBytes(300_000);
    ctx.is(await d.appendFrom('ap/small', Readable.from([small])), small.length);
    ctx.is(await d.appendFrom('ap/small', Readable.from([more])), small.length + more.length);
    ctx.true((await d.getContent('ap/small')).equals(Buffer.concat([small, more])));
    ctx.is(await d.appendFrom('ap/large', Readable.from(chunked(large, 256 << 10))), large.length);
    ctx.is(await d.appendFrom('ap/large', Readable.from([more])), large.length + more.length);
    ctx.is(sha(await readAll(await d.reader('ap/large'))), sha(Buffer.concat([large, more])));
    const w = await d.writer('ap/large', { append: true });
    ctx.is(w.size, large.length + more.length);
    await w.write([Buffer.from('!')], 1);
    ctx.is(await w.commit(), large.length + more.length + 1);
  });

  t('an append whose source fails or goes idle keeps what arrived and says why', async (ctx, d) => {
    const first = randomBytes(3 << 20);
    const failing = new PassThrough();
    failing.on('error', () => undefined); // a request body has its server's listener
    const appended = d.appendFrom('cut/data', failing);
    failing.write(first);
    // cut once the append took the bytes (however long the writer took to open)
    const cut = setInterval(() => {
      if (failing.readableLength === 0 && failing.writableLength === 0 && failing.readableFlowing) {
        clearInterval(cut);
        failing.destroy(new Error('connection reset'));
      }
    }, 10);
    await ctx.throwsAsync(appended, { instanceOf: SourceError, message: /connection reset/ });
    ctx.is((await d.stat('cut/data')).size, first.length);
    const idle = new PassThrough();
    const appendedIdle = d.appendFrom('cut/data', idle, { idleMs: 300 });
    idle.write(Buffer.from('tail'));
    await ctx.throwsAsync(appendedIdle, { instanceOf: SourceIdleError });
    ctx.true((await d.getContent('cut/data')).equals(Buffer.concat([first, Buffer.from('tail')])));
  });

  t('list and listPage: children in code point order, directories once, pages after a name', async (ctx, d) => {
    for (const name of ['a/x', 'a-b', 'a.c', 'ab', 'b/y/z', '0']) await d.putContent(`l/${name}`, '1');
    const all = ['0', 'a', 'a-b', 'a.c', 'ab', 'b'];
    ctx.deepEqual(await d.list('l'), all);
    ctx.deepEqual(await d.listPage('l'), all);
    ctx.deepEqual(await d.listPage('l', undefined, 2), ['0', 'a']);
    ctx.deepEqual(await d.listPage('l', 'a', 2), ['a-b', 'a.c']);
    ctx.deepEqual(await d.listPage('l', 'a.c'), ['ab', 'b']);
    ctx.deepEqual(await d.listPage('l', 'b'), []);
    // walking one name at a time gives the same list
    const walked: string[] = [];
    for (let after: string | undefined; ; ) {
      const page = await d.listPage('l', after, 1);
      if (page.length === 0) break;
      walked.push(...page);
      after = page[0];
    }
    ctx.deepEqual(walked, all);
    ctx.deepEqual(await d.list('l/none'), []);
    ctx.deepEqual(await d.listPage('nowhere', undefined, 5), []);
  });

  t('move replaces the destination; a missing source is PathNotFoundError', async (ctx, d) => {
    await d.putContent('m/src', 'new bytes');
    await d.putContent('m/dst', 'old');
    await d.move('m/src', 'm/dst');
    ctx.is((await d.getContent('m/dst')).toString(), 'new bytes');
    await ctx.throwsAsync(d.getContent('m/src'), { instanceOf: PathNotFoundError });
    await ctx.throwsAsync(d.move('m/src', 'm/other'), { instanceOf: PathNotFoundError });
  });

  t('delete removes a file or a whole subtree; absent paths are fine', async (ctx, d) => {
    await d.putContent('d/tree/1', '1');
    await d.putContent('d/tree/sub/2', '2');
    await d.putContent('d/keep', 'k');
    await d.delete('d/tree');
    await ctx.throwsAsync(d.stat('d/tree/sub/2'), { instanceOf: PathNotFoundError });
    ctx.deepEqual(await d.list('d'), ['keep']);
    await d.delete('d/keep');
    await d.delete('d/never');
    ctx.deepEqual(await d.list('d'), []);
  });
}
