import test from 'ava';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { digestOf, MediaType, type Descriptor } from '../oci/index.js';
import { Store } from '../store/index.js';
import { ContentDigestError, NotFoundError, RegistryClient, RegistryClientError, fetchBlob, type ProgressEvent } from '../registry/client/index.js';
import { tempDir } from './helpers/temp.js';

const BLOB = randomBytes(3 << 20);
const DESC: Descriptor = { mediaType: MediaType.ociLayer, digest: digestOf(BLOB), size: BLOB.length };
const anonymous = async () => undefined;

/** How the test registry answers the Nth GET of the blob: `start` is the Range asked for (0 without one). */
type Answer = (res: ServerResponse, start: number, attempt: number) => void;

const whole: Answer = (res) => {
  res.writeHead(200, { 'content-length': BLOB.length, 'content-type': 'application/octet-stream' });
  res.end(BLOB);
};
const ranged: Answer = (res, start) => {
  if (start === 0) return whole(res, 0, 0);
  res.writeHead(206, { 'content-length': BLOB.length - start, 'content-range': `bytes ${start}-${BLOB.length - 1}/${BLOB.length}` });
  res.end(BLOB.subarray(start));
};
/** Sends `bytes` of what `answer` would send, then drops the connection. */
const cutAfter =
  (bytes: number): Answer =>
  (res, start) => {
    res.writeHead(start ? 206 : 200, {
      'content-length': BLOB.length - start,
      ...(start ? { 'content-range': `bytes ${start}-${BLOB.length - 1}/${BLOB.length}` } : {}),
    });
    res.write(BLOB.subarray(start, start + bytes), () => res.socket?.destroy());
  };

/** A registry serving one blob of `x/blob`; each GET of it is answered by the next of `answers` (the last repeats). */
async function blobRegistry(answers: Answer[]) {
  const ranges: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/v2/') return void res.end('{}');
    if (req.method !== 'GET' || req.url !== `/v2/x/blob/blobs/${DESC.digest}`) {
      res.statusCode = 404;
      return void res.end();
    }
    ranges.push(req.headers.range);
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    const attempt = ranges.length - 1;
    answers[Math.min(attempt, answers.length - 1)]!(res, start, attempt);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, ranges, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

async function pullBlob(answers: Answer[], retries = 4) {
  const registry = await blobRegistry(answers);
  const events: ProgressEvent[] = [];
  const client = new RegistryClient({ credentials: anonymous, retry: { retries, baseDelayMs: 1 }, onProgress: (e) => events.push(e) });
  const store = await Store.open(tempDir());
  const result = await fetchBlob(client, store, { registry: registry.host, repository: 'x/blob' }, DESC).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  client.close();
  await registry.close();
  const phases = events.flatMap((e) => (e.type === 'blob' ? [e.phase] : []));
  return { error: result, store, ranges: registry.ranges, phases };
}

async function storedBytes(store: Store): Promise<Buffer | undefined> {
  return (await store.blobs.has(DESC.digest)) ? store.blobs.readBuffer(DESC.digest) : undefined;
}

test('a cut download resumes with Range after the bytes that arrived', async (t) => {
  const { error, store, ranges, phases } = await pullBlob([cutAfter(1 << 20), ranged]);
  t.is(error, undefined);
  t.is(ranges.length, 2);
  t.is(ranges[0], undefined);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
  t.true(resumedAt > 0 && resumedAt <= 1 << 20, `resumed at ${ranges[1]}`);
  t.true((await storedBytes(store))?.equals(BLOB));
  t.deepEqual(await store.ingests.list(), []);
  t.true(phases.includes('retrying'));
  t.is(phases.at(-1), 'done');
});

test('a server that ignores Range sends the whole blob again, and the download starts over', async (t) => {
  const { error, store, ranges } = await pullBlob([cutAfter(1 << 20), whole]);
  t.is(error, undefined);
  t.is(ranges.length, 2);
  t.regex(ranges[1] ?? '', /^bytes=[1-9]\d*-$/);
  t.true((await storedBytes(store))?.equals(BLOB));
  t.deepEqual(await store.ingests.list(), []);
});

test('a resume answered from the wrong offset is thrown away and the blob fetched from the start', async (t) => {
  const wrongOffset: Answer = (res) => {
    res.writeHead(206, { 'content-length': 1000, 'content-range': `bytes 0-999/${BLOB.length}` });
    res.end(BLOB.subarray(0, 1000));
  };
  const { error, store, ranges } = await pullBlob([cutAfter(1 << 20), wrongOffset, ranged]);
  t.is(error, undefined);
  t.is(ranges.length, 3);
  t.regex(ranges[1] ?? '', /^bytes=[1-9]\d*-$/);
  t.is(ranges[2], undefined, 'the third GET starts over');
  t.true((await storedBytes(store))?.equals(BLOB));
});

test('more bytes than the descriptor says: refused as content that does not match, nothing kept', async (t) => {
  const tooLong: Answer = (res) => {
    res.writeHead(200, { 'content-length': BLOB.length + (1 << 20) });
    res.end(Buffer.concat([BLOB, randomBytes(1 << 20)]));
  };
  const { error, store } = await pullBlob([tooLong]);
  t.true(error instanceof ContentDigestError, error?.message);
  t.regex(error!.message, /more bytes than the 3145728 the descriptor says/);
  t.is(await storedBytes(store), undefined);
  t.deepEqual(await store.ingests.list(), []);
});

test('bytes that hash to another digest are refused with the digest they have', async (t) => {
  const bad = Buffer.from(BLOB);
  bad[0]! ^= 0xff;
  const corrupt: Answer = (res) => {
    res.writeHead(200, { 'content-length': bad.length });
    res.end(bad);
  };
  const { error, store } = await pullBlob([corrupt]);
  t.true(error instanceof ContentDigestError, error?.message);
  t.true(error!.message.includes(`expected ${DESC.digest}, got ${digestOf(bad)}`), error!.message);
  t.is(await storedBytes(store), undefined);
  t.deepEqual(await store.ingests.list(), []);
});

test('a download cut on every attempt gives up after the retries, naming the blob and where, and leaves no ingest', async (t) => {
  const { error, store, ranges } = await pullBlob([cutAfter(100 << 10)], 2);
  t.true(error instanceof RegistryClientError, error?.message);
  t.regex(
    error!.message,
    new RegExp(`^download of ${DESC.digest} from .*/v2/x/blob/blobs/${DESC.digest} kept failing: .* ended after \\d+ of ${BLOB.length} bytes$`),
  );
  t.is(ranges.length, 3, 'the first attempt and two retries');
  t.is(await storedBytes(store), undefined);
  t.deepEqual(await store.ingests.list(), []);
});

test('a blob the registry does not have is a NotFoundError', async (t) => {
  const missing: Answer = (res) => {
    res.statusCode = 404;
    res.end();
  };
  const { error, ranges } = await pullBlob([missing]);
  t.true(error instanceof NotFoundError, error?.message);
  t.is(ranges.length, 1, 'a 404 is an answer, not retried');
});
