/**
 * Uploads arriving together are each answered: two shapes that left 8 of 16 requests unanswered forever
 * while SHA-256 was shared between streams in SIMD lanes (a write was acknowledged only once its lane had
 * consumed it, and a lane consumes nothing below a 64-byte block).
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { digestOf } from '../oci/index.js';
import { withDeadline } from './helpers/deadline.js';
import { startTestRegistry, type Reply, type TestRegistry } from './helpers/registry-http.js';

const SESSIONS = 16;
/** Generous for 16 × 2 MiB on a loaded 2-core machine; a hang is forever. */
const DEADLINE_MS = 60_000;

// Each test on a fresh registry, one at a time: what hung was the hashing of streams arriving together.
let reg: TestRegistry;
test.beforeEach(async () => {
  reg = await startTestRegistry();
});
test.afterEach.always(() => reg?.close());

/** Every request of one phase answers before the deadline (a test that hangs fails with a count instead). */
async function allAnswer(t: { fail(m: string): void }, phase: string, requests: Promise<Reply>[]): Promise<Reply[]> {
  const results = await Promise.allSettled(requests.map((r, i) => withDeadline(r, DEADLINE_MS, `${phase} ${i}`)));
  const hung = results.filter((r) => r.status === 'rejected');
  if (hung.length > 0) {
    t.fail(`${hung.length} of ${requests.length} ${phase} requests never answered: ${String((hung[0] as PromiseRejectedResult).reason)}`);
    throw new Error(`${phase}: ${hung.length} hung`);
  }
  return results.map((r) => (r as PromiseFulfilledResult<Reply>).value);
}

test.serial('16 sessions each get a 1 MiB chunk at once, then a 17-byte chunk, then commit: every request answers', async (t) => {
  const datas = Array.from({ length: SESSIONS }, () => randomBytes((1 << 20) + 17));
  const starts = await allAnswer(
    t,
    'POST',
    datas.map((_, i) => reg.call('POST', `/v2/hang/chunked${i}/blobs/uploads/`)),
  );
  const locations = starts.map((s) => {
    t.is(s.status, 202);
    return s.headers.location!;
  });
  const big = await allAnswer(
    t,
    '1 MiB PATCH',
    datas.map((d, i) =>
      reg.call('PATCH', locations[i]!, {
        headers: { 'Content-Range': '0-1048575', 'Content-Length': 1 << 20, 'Content-Type': 'application/octet-stream' },
        body: d.subarray(0, 1 << 20),
      }),
    ),
  );
  for (const r of big) t.is(r.status, 202, r.body.toString());
  const small = await allAnswer(
    t,
    '17-byte PATCH',
    datas.map((d, i) =>
      reg.call('PATCH', big[i]!.headers.location!, {
        headers: { 'Content-Range': '1048576-1048592', 'Content-Length': 17, 'Content-Type': 'application/octet-stream' },
        body: d.subarray(1 << 20),
      }),
    ),
  );
  for (const r of small) {
    t.is(r.status, 202, r.body.toString());
    t.is(r.headers.range, '0-1048592');
  }
  const puts = await allAnswer(
    t,
    'PUT',
    datas.map((d, i) => reg.call('PUT', `${small[i]!.headers.location!}?digest=${digestOf(d)}`, { headers: { 'Content-Length': 0 } })),
  );
  for (const r of puts) t.is(r.status, 201, r.body.toString());
  for (let i = 0; i < SESSIONS; i++) {
    const get = await withDeadline(reg.call('GET', `/v2/hang/chunked${i}/blobs/${digestOf(datas[i]!)}`), DEADLINE_MS, 'blob GET');
    t.true(get.body.equals(datas[i]!), `blob ${i} reads back exactly`);
  }
});

test.serial('16 parallel monolithic PUTs of one 2 MiB + 17 byte blob: every request answers and the blob verifies', async (t) => {
  const data = randomBytes((2 << 20) + 17);
  const digest = digestOf(data);
  const starts = await allAnswer(
    t,
    'POST',
    Array.from({ length: SESSIONS }, () => reg.call('POST', '/v2/hang/monolithic/blobs/uploads/')),
  );
  const puts = await allAnswer(
    t,
    'PUT',
    starts.map((s) =>
      reg.call('PUT', `${s.headers.location!}?digest=${digest}`, {
        headers: { 'Content-Length': data.length, 'Content-Type': 'application/octet-stream' },
        body: data,
      }),
    ),
  );
  for (const r of puts) {
    t.is(r.status, 201, r.body.toString());
    t.is(r.headers['docker-content-digest'], digest);
  }
  const get = await withDeadline(reg.call('GET', `/v2/hang/monolithic/blobs/${digest}`), DEADLINE_MS, 'blob GET');
  t.true(get.body.equals(data));
  t.deepEqual(await reg.server.store.ingests.list(), [], 'no session is left');
});
