/**
 * Online GC beside writers: a 16 MiB push throttled to 2 MiB/s completes with its exact bytes while
 * GCs run over and over on the same store; and the claim protocol (store/gc-claims.ts): a mount, a
 * re-upload or a manifest push of an old unreferenced blob made while a GC has it claimed — before or
 * after the GC's second mark — keeps the blob, where the same GC without the writer deletes it.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { digestHex, digestOf, MediaType, type Digest } from '../oci/index.js';
import { collectGarbage, type GcReport, type Store } from '../store/index.js';
import { withDeadline } from './helpers/deadline.js';
import { pushBlob, startTestRegistry, type TestRegistry } from './helpers/registry-http.js';

const HOUR = 3_600_000;
const CONFIG = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}';

/** Makes a blob and its links look written `ageMs` ago (files, and the link directories). */
async function age(store: Store, digest: Digest, ageMs: number, repositories: string[] = []): Promise<void> {
  const when = new Date(Date.now() - ageMs);
  const hex = digestHex(digest);
  const content = join(store.root, 'content');
  const paths = [join(content, 'blobs', 'sha256', hex)];
  for (const r of repositories) paths.push(join(content, 'repositories', r, '_layers', 'sha256', hex), join(content, 'repositories', r, '_layers', 'sha256'));
  for (const p of paths) await fs.utimes(p, when, when).catch(() => undefined);
}

function manifestOver(config: { digest: Digest; size: number }, layer: { digest: Digest; size: number }): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
      layers: [{ mediaType: MediaType.ociLayer, digest: layer.digest, size: layer.size }],
    }),
  );
}

/** A request whose body is `bytes` sent at `rate` bytes per second, in 64 KiB pieces. */
function throttledRequest(
  url: string,
  method: string,
  bytes: Buffer,
  rate: number,
  headers: Record<string, string | number>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const piece = 64 * 1024;
  const body = Readable.from(
    (async function* () {
      const started = Date.now();
      for (let off = 0; off < bytes.length; off += piece) {
        const due = started + (off / rate) * 1000;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        yield bytes.subarray(off, off + piece);
      }
    })(),
  );
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, 'Content-Length': bytes.length } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    body.pipe(req);
  });
}

test('a 16 MiB push throttled to 2 MiB/s completes with its exact bytes while GCs run on the same store', async (t) => {
  const reg = await startTestRegistry();
  t.teardown(() => reg.close());
  const store = reg.server.store;
  const layer = Buffer.alloc(16 << 20);
  for (let i = 0; i < layer.length; i += 4) layer.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
  const layerDigest = digestOf(layer);
  const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] } });

  // old garbage, so every GC has something to claim and delete
  const garbage = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const { digest } = await store.blobs.put(`garbage ${Math.random()} ${i}`);
      await age(store, digest, 2 * HOUR);
    }
  };
  await garbage(50);
  let pushing = true;
  const reports: GcReport[] = [];
  const gcs = (async () => {
    while (pushing) {
      await garbage(10);
      reports.push(await collectGarbage(store, { graceMs: 5_000 }));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const push = (async () => {
    const config = await pushBlob(reg, 'online/app', configBytes);
    const start = await reg.call('POST', '/v2/online/app/blobs/uploads/');
    t.is(start.status, 202);
    const patch = await throttledRequest(new URL(start.headers.location!, reg.url).href, 'PATCH', layer, 2 << 20, {
      'Content-Type': 'application/octet-stream',
    });
    t.is(patch.status, 202, patch.body);
    const done = await reg.call('PUT', `${patch.headers.location}${patch.headers.location!.includes('?') ? '&' : '?'}digest=${layerDigest}`, {
      headers: { 'Content-Length': 0 },
    });
    t.is(done.status, 201, done.body.toString());
    const manifest = manifestOver({ digest: config, size: Buffer.byteLength(configBytes) }, { digest: layerDigest, size: layer.length });
    const put = await reg.call('PUT', '/v2/online/app/manifests/v1', { headers: { 'Content-Type': MediaType.ociManifest }, body: manifest });
    t.is(put.status, 201, put.body.toString());
  })();
  try {
    await withDeadline(push, 60_000, 'the throttled push');
  } finally {
    pushing = false;
    await withDeadline(gcs, 30_000, 'the GC loop');
  }
  reports.push(await collectGarbage(store, { graceMs: 5_000 }));
  t.true(reports.length >= 4, `GCs ran during the push (${reports.length})`);
  t.true(reports.reduce((n, r) => n + r.blobsDeleted, 0) >= 50, 'the GCs deleted the old garbage');
  const got = await reg.call('GET', `/v2/online/app/blobs/${layerDigest}`);
  t.is(got.status, 200);
  t.is(got.body.length, layer.length);
  t.is(digestOf(got.body), layerDigest);
});

interface Race {
  reg: TestRegistry;
  store: Store;
  bytes: Buffer;
  digest: Digest;
}

/** An old blob linked long ago into `race/a` and held by nothing: a GC candidate. */
async function oldUnreferencedBlob(t: { teardown(fn: () => Promise<void>): void }): Promise<Race> {
  const reg = await startTestRegistry();
  t.teardown(() => reg.close());
  const store = reg.server.store;
  const bytes = Buffer.from(`an old layer ${Math.random()}`);
  const digest = await pushBlob(reg, 'race/a', bytes);
  await age(store, digest, 2 * HOUR, ['race/a']);
  return { reg, store, bytes, digest };
}

async function blobServed(reg: TestRegistry, repository: string, digest: Digest, bytes: Buffer): Promise<boolean> {
  const got = await reg.call('GET', `/v2/${repository}/blobs/${digest}`);
  return got.status === 200 && got.body.equals(bytes);
}

test('without a writer, the old unreferenced blob is collected (the races below are real)', async (t) => {
  const { store, digest } = await oldUnreferencedBlob(t);
  const report = await collectGarbage(store, { graceMs: 60_000 });
  t.deepEqual(report.deletedDigests, [digest]);
  t.false(await store.blobs.has(digest));
});

test('a mount and a manifest push while the GC holds the blob claimed (before its second mark) keep it', async (t) => {
  const { reg, store, bytes, digest } = await oldUnreferencedBlob(t);
  let mounted = 0;
  const report = await collectGarbage(store, {
    graceMs: 60_000,
    onClaimed: async () => {
      mounted = (await reg.call('POST', `/v2/race/b/blobs/uploads/?mount=${digest}&from=race/a`)).status;
      const config = await pushBlob(reg, 'race/b', CONFIG);
      const manifest = manifestOver({ digest: config, size: CONFIG.length }, { digest, size: bytes.length });
      const put = await reg.call('PUT', '/v2/race/b/manifests/v1', { headers: { 'Content-Type': MediaType.ociManifest }, body: manifest });
      t.is(put.status, 201, put.body.toString());
    },
  });
  t.is(mounted, 201);
  t.false(report.deletedDigests.includes(digest));
  t.true(await blobServed(reg, 'race/b', digest, bytes));
  t.is((await collectGarbage(store, { graceMs: 0 })).deletedDigests.includes(digest), false, 'the manifest holds it from now on');
});

test("a mount after the GC's second mark restores the claimed blob; the GC's delete finds nothing", async (t) => {
  const { reg, store, bytes, digest } = await oldUnreferencedBlob(t);
  let mounted = 0;
  const report = await collectGarbage(store, {
    graceMs: 60_000,
    onMarkedAgain: async () => {
      mounted = (await reg.call('POST', `/v2/race/c/blobs/uploads/?mount=${digest}&from=race/a`)).status;
    },
  });
  t.is(mounted, 201);
  t.is(report.blobsKept, 1, 'claimed, then kept');
  t.false(report.deletedDigests.includes(digest));
  t.true(await blobServed(reg, 'race/c', digest, bytes));
});

test("the same bytes uploaded again after the GC's second mark: the upload completes and the blob stays", async (t) => {
  const { reg, store, bytes, digest } = await oldUnreferencedBlob(t);
  const report = await collectGarbage(store, {
    graceMs: 60_000,
    onMarkedAgain: async () => {
      t.is(await pushBlob(reg, 'race/d', bytes), digest);
    },
  });
  t.true(report.deletedDigests.length <= 1, 'at most the claimed old copy is deleted');
  t.true(await blobServed(reg, 'race/d', digest, bytes));
});

test("a manifest pushed after the GC's second mark over a blob linked long ago keeps it", async (t) => {
  const { reg, store, bytes, digest } = await oldUnreferencedBlob(t);
  const config = await pushBlob(reg, 'race/a', CONFIG);
  await age(store, config, 2 * HOUR, ['race/a']);
  await age(store, digest, 2 * HOUR, ['race/a']);
  let status = 0;
  const report = await collectGarbage(store, {
    graceMs: 60_000,
    onMarkedAgain: async () => {
      const manifest = manifestOver({ digest: config, size: CONFIG.length }, { digest, size: bytes.length });
      status = (await reg.call('PUT', '/v2/race/a/manifests/v1', { headers: { 'Content-Type': MediaType.ociManifest }, body: manifest })).status;
    },
  });
  t.is(status, 201);
  t.is(report.blobsKept, 2, 'both blobs were claimed, then kept');
  t.deepEqual(report.deletedDigests, []);
  t.true(await blobServed(reg, 'race/a', digest, bytes));
});
