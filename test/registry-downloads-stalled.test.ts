/**
 * A client that stops reading a blob is cut after the body idle timeout (the uploads' setting serves
 * downloads too), so it cannot hold a file or an S3 connection for ever; a slow client that keeps reading
 * (at least a write's worth, 1 MiB, per idle timeout) is not cut.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import test from 'ava';
import { withDeadline } from './helpers/deadline.js';
import { pushBlob, startTestRegistry } from './helpers/registry-http.js';

test('a blob GET whose client stops reading is cut after the idle timeout; one that reads slowly is not', async (t) => {
  const reg = await startTestRegistry({ bodyIdleTimeoutMs: 1000 });
  t.teardown(() => reg.close());
  const data = randomBytes(64 << 20);
  const digest = await pushBlob(reg, 'dl/stalled', data);
  const url = new URL(`${reg.url}/v2/dl/stalled/blobs/${digest}`);

  // reads the head, then nothing for 3 s (a paused client would not see the server close its socket, so it
  // reads again then: a cut connection ends short, an uncut one brings every byte)
  const cut = await withDeadline(
    new Promise<{ received: number; complete: boolean }>((resolve) => {
      const req = http.get(url, (res) => {
        res.pause();
        let received = 0;
        res.on('data', (c: Buffer) => (received += c.length));
        res.on('error', () => undefined); // "aborted": the cut
        setTimeout(() => res.resume(), 3000);
        res.once('close', () => resolve({ received, complete: res.complete }));
      });
      req.on('error', () => undefined); // the cut, seen as a reset by some kernels
    }),
    30_000,
    'the stalled download to end',
  );
  t.false(cut.complete, 'the server cut the connection');
  t.true(cut.received < data.length, `${cut.received} of ${data.length} bytes`);

  // 8 MiB read slowly, at 3 MiB/s by the clock whatever size the pieces come in (~2.7 s in all, longer than
  // the timeout, but the server's 1 MiB writes keep completing); a pause per piece made the rate depend on
  // the piece size, which a loaded machine makes small
  const small = randomBytes(8 << 20);
  const smallDigest = await pushBlob(reg, 'dl/slow', small);
  const got = await withDeadline(
    new Promise<Buffer>((resolve, reject) => {
      http
        .get(new URL(`${reg.url}/v2/dl/slow/blobs/${smallDigest}`), (res) => {
          const chunks: Buffer[] = [];
          const start = Date.now();
          let received = 0;
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            received += c.length;
            const ahead = (received / (3 << 20)) * 1000 - (Date.now() - start);
            if (ahead <= 0) return;
            res.pause();
            setTimeout(() => res.resume(), ahead);
          });
          res.on('end', () => resolve(Buffer.concat(chunks)));
          res.on('error', reject);
        })
        .on('error', reject);
    }),
    60_000,
    'the slow download',
  );
  t.true(got.equals(small));
});
