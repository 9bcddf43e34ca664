import test from 'ava';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { digestOf, DigestError, DigestStream, parseDigest, isDigest } from '../oci/index.js';

test('validates digests', (t) => {
  const good = `sha256:${'0'.repeat(64)}`;
  t.is(parseDigest(good) as string, good);
  t.true(isDigest(`sha512:${'f'.repeat(128)}`));
  t.throws(() => parseDigest('sha256'), { instanceOf: DigestError, message: /expected <algorithm>:<hex>/ });
  t.throws(() => parseDigest(`sha256:${'0'.repeat(63)}`), { message: /64 lowercase hex/ });
  t.throws(() => parseDigest(`sha256:${'A'.repeat(64)}`), { message: /64 lowercase hex/ });
  t.throws(() => parseDigest(`md5:${'0'.repeat(32)}`), { message: /unsupported digest algorithm "md5"/ });
  t.throws(() => parseDigest(`SHA256:${'0'.repeat(64)}`), { message: /malformed algorithm/ });
});

test('streams a digest equal to the one-shot digest', async (t) => {
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  const ds = new DigestStream();
  let seen = 0;
  await pipeline(
    Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
    ds,
    new Writable({
      write(c, _e, cb) {
        seen += c.length;
        cb();
      },
    }),
  );
  t.is(ds.digest(), digestOf(data));
  t.is(ds.size, data.length);
  t.is(seen, data.length);
  t.is(digestOf(data) as string, `sha256:${createHash('sha256').update(data).digest('hex')}`);
});
