/**
 * 64 uploads at once in the three forms clients use — monolithic (POST ?digest= with the body), streamed
 * (one PATCH in chunked transfer encoding, as docker sends) and chunked (PATCHes with Content-Range, as
 * the spec describes) — with sizes that end off every block boundary: each is answered and reads back.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { digestOf } from '../oci/index.js';
import { withDeadline } from './helpers/deadline.js';
import { startTestRegistry, type Reply, type TestRegistry } from './helpers/registry-http.js';
import { openRequest } from './helpers/upload-requests.js';

const UPLOADS = 64;
const DEADLINE_MS = 120_000;
const BASES = [64 << 10, 256 << 10, 1 << 20, 2 << 20];
const TAILS = [1, 17, 63, 65];
const FORMS = ['monolithic', 'streamed', 'chunked'] as const;

let reg: TestRegistry;
test.before(async () => {
  reg = await startTestRegistry();
});
test.after.always(() => reg?.close());

function expect(r: Reply, status: number, what: string): Reply {
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${r.body.toString().slice(0, 200)}`);
  return r;
}

/** A PATCH whose body goes out in chunked transfer encoding, a piece at a time. */
async function streamedPatch(location: string, data: Buffer): Promise<string> {
  const { req, outcome } = openRequest(reg.url, 'PATCH', location, { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream' });
  for (let at = 0; at < data.length; at += 48_000) {
    if (!req.write(data.subarray(at, at + 48_000))) await new Promise((r) => req.once('drain', r));
  }
  req.end();
  const o = await outcome;
  if ('closed' in o || o.status !== 202) throw new Error(`streamed PATCH: ${'closed' in o ? 'closed' : o.status}`);
  return o.headers.location!;
}

async function upload(i: number, name: string, data: Buffer): Promise<void> {
  const digest = digestOf(data);
  const form = FORMS[i % FORMS.length]!;
  if (form === 'monolithic') {
    expect(
      await reg.call('POST', `/v2/${name}/blobs/uploads/?digest=${digest}`, { headers: { 'Content-Length': data.length }, body: data }),
      201,
      'monolithic POST',
    );
    return;
  }
  let location = expect(await reg.call('POST', `/v2/${name}/blobs/uploads/`), 202, 'POST').headers.location!;
  if (form === 'streamed') location = await streamedPatch(location, data);
  else {
    // Uneven chunks: the cuts fall anywhere, the last one is the odd tail.
    const cuts = [0, Math.floor(data.length / 3), Math.floor(data.length / 3) + 4099, data.length - (data.length % 1000 || 7), data.length];
    for (let c = 0; c + 1 < cuts.length; c++) {
      const [from, to] = [cuts[c]!, cuts[c + 1]!];
      if (to <= from) continue;
      const r = await reg.call('PATCH', location, {
        headers: { 'Content-Range': `${from}-${to - 1}`, 'Content-Length': to - from },
        body: data.subarray(from, to),
      });
      location = expect(r, 202, `PATCH ${from}-${to - 1}`).headers.location!;
      if (r.headers.range !== `0-${to - 1}`) throw new Error(`PATCH ${from}-${to - 1} answered Range ${r.headers.range}`);
    }
  }
  expect(await reg.call('PUT', `${location}?digest=${digest}`, { headers: { 'Content-Length': 0 } }), 201, 'PUT');
}

test('64 concurrent uploads in every form with odd tails: each one answers and reads back exactly', async (t) => {
  const datas = Array.from({ length: UPLOADS }, (_, i) => randomBytes(BASES[i % BASES.length]! + TAILS[Math.floor(i / BASES.length) % TAILS.length]!));
  const results = await Promise.allSettled(
    datas.map((d, i) => withDeadline(upload(i, `stress/r${i % 8}`, d), DEADLINE_MS, `upload ${i} (${FORMS[i % 3]}, ${d.length} bytes)`)),
  );
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${i}: ${String(r.reason)}`] : []));
  t.deepEqual(failed, [], 'every upload answered');
  for (let i = 0; i < UPLOADS; i++) {
    const get = await reg.call('GET', `/v2/stress/r${i % 8}/blobs/${digestOf(datas[i]!)}`);
    t.is(get.status, 200);
    t.true(get.body.equals(datas[i]!), `upload ${i} reads back exactly`);
  }
  t.deepEqual(await reg.server.store.ingests.list(), [], 'no session is left');
});
