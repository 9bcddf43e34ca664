/**
 * Scale-out (issue 16): three `tsbuild registry` replicas on one S3 bucket (Ceph RGW) and Redis, behind
 * haproxy balancing every request on its own (roundrobin, http-server-close), all started by the
 * project's scripts (scripts/scaleout.sh) — skipped with the reason without them, failing under CI=true.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { digestOf, MediaType } from '../oci/index.js';
import { call, type Reply } from './helpers/registry-http.js';
import { startReplicaSet, type ReplicaSet } from './helpers/replicas.js';
import { testWithScaleout } from './helpers/scaleout.js';

const { test, peers } = await testWithScaleout();

let set: ReplicaSet;
test.before(async () => {
  set = await startReplicaSet(peers!, 3);
});
test.after.always(async () => {
  // a replica that died on its own is a failure worth its log
  for (const r of set?.replicas ?? []) if (r.process.exitCode !== null) console.error(`replica ${r.port} exited ${r.process.exitCode}: ${r.log()}`);
  await set?.stop();
});

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const req = (method: string, path: string, options?: Parameters<typeof call>[3]): Promise<Reply> => call(set.url, method, path, options);

/** POST, then PATCHes of `chunk` bytes with Content-Range (each balanced on its own), then PUT ?digest=. */
async function chunkedUpload(name: string, data: Buffer, chunk: number): Promise<Reply> {
  const start = await req('POST', `/v2/${name}/blobs/uploads/`);
  if (start.status !== 202) throw new Error(`POST: ${start.status} ${start.body}`);
  let location = start.headers.location!;
  for (let from = 0; from < data.length; from += chunk) {
    const to = Math.min(data.length, from + chunk) - 1;
    const r = await req('PATCH', location, {
      headers: { 'Content-Range': `${from}-${to}`, 'Content-Type': 'application/octet-stream' },
      body: data.subarray(from, to + 1),
    });
    if (r.status !== 202) throw new Error(`PATCH ${from}-${to}: ${r.status} ${r.body}`);
    if (r.headers.range !== `0-${to}`) throw new Error(`PATCH ${from}-${to}: Range ${r.headers.range}`);
    location = r.headers.location!;
  }
  return req('PUT', `${location}?digest=${sha(data)}`);
}

async function pushImage(name: string, tag: string, seed: string) {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
  const layerBytes = randomBytes(1000);
  for (const b of [configBytes, layerBytes]) {
    const put = await chunkedUpload(name, b, 1 << 20);
    if (put.status !== 201) throw new Error(`blob: ${put.status} ${put.body}`);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha(configBytes), size: configBytes.length },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha(layerBytes), size: layerBytes.length }],
    }),
  );
  const put = await req('PUT', `/v2/${name}/manifests/${tag}`, { headers: { 'Content-Type': MediaType.ociManifest }, body: manifest });
  if (put.status !== 201) throw new Error(`manifest: ${put.status} ${put.body}`);
  return { manifest, digest: sha(manifest), layer: layerBytes };
}

test.serial('a chunked upload whose PATCHes land on different replicas commits the exact bytes (20 MiB in 4 MiB chunks)', async (t) => {
  const data = randomBytes(20 << 20);
  const put = await chunkedUpload('so/chunked', data, 4 << 20);
  t.is(put.status, 201, put.body.toString());
  t.is(put.headers['docker-content-digest'], sha(data));
  for (let i = 0; i < 3; i++) {
    const got = await req('GET', `/v2/so/chunked/blobs/${sha(data)}`);
    t.is(got.status, 200);
    t.is(sha(got.body), sha(data));
  }
  const ranged = await req('GET', `/v2/so/chunked/blobs/${sha(data)}`, { headers: { Range: 'bytes=5242870-5242889' } });
  t.is(ranged.status, 206);
  t.true(ranged.body.equals(data.subarray(5242870, 5242890)));
  // large ranges come straight from S3 through reused buffers (store/driver/s3-get.ts)
  const large = await req('GET', `/v2/so/chunked/blobs/${sha(data)}`, { headers: { Range: 'bytes=1000-6000999' } });
  t.is(large.status, 206);
  t.is(large.headers['content-range'], `bytes 1000-6000999/${data.length}`);
  t.true(large.body.equals(data.subarray(1000, 6001000)));
  const suffix = await req('GET', `/v2/so/chunked/blobs/${sha(data)}`, { headers: { Range: `bytes=-${3 << 20}` } });
  t.is(suffix.status, 206);
  t.true(suffix.body.equals(data.subarray(data.length - (3 << 20))));
  // a client leaving midway: every replica goes on serving the blob whole
  for (const r of set.replicas) {
    await new Promise<void>((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${r.port}/v2/so/chunked/blobs/${sha(data)}`, (res) => {
          res.once('data', () => {
            res.destroy();
            resolve();
          });
        })
        .on('error', reject);
    });
    const again = await call(`http://127.0.0.1:${r.port}`, 'GET', `/v2/so/chunked/blobs/${sha(data)}`);
    t.is(sha(again.body), sha(data));
  }
});

test.serial(
  'spec behaviour through the balancer: small chunks, status, out-of-order 416, monolithic, wrong digest, cancel, repository binding, mounts',
  async (t) => {
    // chunks far below S3's 5 MiB part minimum: kept as a tail object between requests
    const small = randomBytes(300_000);
    const start = await req('POST', '/v2/so/small/blobs/uploads/');
    t.is(start.status, 202);
    t.is(start.headers.range, '0-0');
    let location = start.headers.location!;
    for (const [from, to] of [
      [0, 99_999],
      [100_000, 199_999],
    ] as const) {
      const r = await req('PATCH', location, { headers: { 'Content-Range': `${from}-${to}` }, body: small.subarray(from, to + 1) });
      t.is(r.status, 202);
      t.is(r.headers.range, `0-${to}`);
      location = r.headers.location!;
    }
    for (let i = 0; i < 3; i++) {
      const status = await req('GET', location);
      t.is(status.status, 204);
      t.is(status.headers.range, '0-199999');
    }
    const gap = await req('PATCH', location, { headers: { 'Content-Range': '250000-299999' }, body: small.subarray(250_000) });
    t.is(gap.status, 416);
    const put = await req('PUT', `${location}?digest=${sha(small)}`, { headers: { 'Content-Range': '200000-299999' }, body: small.subarray(200_000) });
    t.is(put.status, 201, put.body.toString());
    t.is(sha((await req('GET', `/v2/so/small/blobs/${sha(small)}`)).body), sha(small));
    // monolithic POST ?digest=
    const mono = randomBytes(5000);
    const m = await req('POST', `/v2/so/small/blobs/uploads/?digest=${sha(mono)}`, { headers: { 'Content-Type': 'application/octet-stream' }, body: mono });
    t.is(m.status, 201);
    t.is((await req('HEAD', `/v2/so/small/blobs/${sha(mono)}`)).headers['content-length'], '5000');
    // a wrong digest: DIGEST_INVALID, nothing stored, the session gone
    const bad = await req('POST', '/v2/so/small/blobs/uploads/');
    const badPut = await req('PUT', `${bad.headers.location}?digest=${sha(Buffer.from('other'))}`, { body: randomBytes(100) });
    t.is(badPut.status, 400);
    t.is(badPut.code, 'DIGEST_INVALID');
    t.is((await req('GET', bad.headers.location!)).status, 404);
    // cancel
    const del = await req('POST', '/v2/so/small/blobs/uploads/');
    t.is((await req('DELETE', del.headers.location!)).status, 204);
    t.is((await req('GET', del.headers.location!)).code, 'BLOB_UPLOAD_UNKNOWN');
    // a session belongs to its repository
    const own = await req('POST', '/v2/so/small/blobs/uploads/');
    const other = own.headers.location!.replace('/so/small/', '/so/other/');
    t.is((await req('GET', other)).code, 'BLOB_UPLOAD_UNKNOWN');
    // cross-repository mount
    const mount = await req('POST', `/v2/so/mounted/blobs/uploads/?mount=${sha(small)}&from=so/small`);
    t.is(mount.status, 201);
    t.is((await req('GET', `/v2/so/mounted/blobs/${sha(small)}`)).status, 200);
    t.is((await req('HEAD', `/v2/so/unrelated/blobs/${sha(small)}`)).status, 404);
  },
);

test.serial('manifests and tags agree on every replica at once: push, retag, delete; tags/list and _catalog paginate', async (t) => {
  const one = await pushImage('so/app', 'v1', 'one');
  for (let i = 0; i < 3; i++) {
    const got = await req('GET', '/v2/so/app/manifests/v1', { headers: { Accept: MediaType.ociManifest } });
    t.is(got.status, 200);
    t.true(got.body.equals(one.manifest));
    t.is(got.headers['docker-content-digest'], one.digest);
  }
  // retag: every following GET, whichever replica answers, sees the new digest
  const two = await pushImage('so/app', 'v1', 'two');
  for (let i = 0; i < 6; i++)
    t.is((await req('HEAD', '/v2/so/app/manifests/v1', { headers: { Accept: MediaType.ociManifest } })).headers['docker-content-digest'], two.digest);
  // delete by digest removes its tags everywhere
  t.is((await req('DELETE', `/v2/so/app/manifests/${two.digest}`)).status, 202);
  for (let i = 0; i < 6; i++) {
    t.is((await req('GET', '/v2/so/app/manifests/v1', { headers: { Accept: MediaType.ociManifest } })).status, 404);
    t.is((await req('GET', `/v2/so/app/manifests/${two.digest}`, { headers: { Accept: MediaType.ociManifest } })).status, 404);
  }
  t.is((await req('GET', `/v2/so/app/manifests/${one.digest}`, { headers: { Accept: MediaType.ociManifest } })).status, 200);
  for (const tag of ['b', 'a', 'c', 'a-1']) {
    const put = await req('PUT', `/v2/so/app/manifests/${tag}`, { headers: { 'Content-Type': MediaType.ociManifest }, body: one.manifest });
    t.is(put.status, 201);
  }
  const page1 = await req('GET', '/v2/so/app/tags/list?n=2');
  t.deepEqual(page1.json().tags, ['a', 'a-1']);
  t.regex(String(page1.headers.link), /last=a-1/);
  t.deepEqual((await req('GET', '/v2/so/app/tags/list?n=2&last=a-1')).json().tags, ['b', 'c']);
  await pushImage('so/app/nested', 'x', 'nested');
  await pushImage('so/app-b', 'x', 'app-b');
  const all = (await req('GET', '/v2/_catalog')).json().repositories as string[];
  for (const r of ['so/app', 'so/app-b', 'so/app/nested']) t.true(all.includes(r), r);
  const from = (await req('GET', '/v2/_catalog?n=1&last=so/app')).json().repositories;
  t.deepEqual(from, ['so/app-b']);
});

test.serial('16 parallel chunked uploads and a 64 MiB upload as 16 chunks of 4 MiB commit with exact bytes', async (t) => {
  const blobs = Array.from({ length: 16 }, (_, i) => randomBytes((1 << 20) + i * 77_777));
  const puts = await Promise.all(blobs.map((b, i) => chunkedUpload(`so/parallel${i % 4}`, b, 256 << 10)));
  for (const [i, p] of puts.entries()) t.is(p.status, 201, `upload ${i}: ${p.body}`);
  for (const [i, b] of blobs.entries()) t.is(sha((await req('GET', `/v2/so/parallel${i % 4}/blobs/${sha(b)}`)).body), sha(b));
  const big = randomBytes(64 << 20);
  const put = await chunkedUpload('so/big', big, 4 << 20);
  t.is(put.status, 201, put.body.toString());
  const got = await req('GET', `/v2/so/big/blobs/${sha(big)}`);
  t.is(got.body.length, big.length);
  t.is(sha(got.body), sha(big));
});

test.serial('a PATCH stalled on one replica does not hold the session: another replica reports the stored bytes, resumes and commits', async (t) => {
  const [a, b] = set.replicas.filter((r) => r.process.exitCode === null);
  const first = randomBytes(3 << 20);
  const rest = randomBytes(2 << 20);
  const all = Buffer.concat([first, rest]);
  const start = await req('POST', '/v2/so/takeover/blobs/uploads/');
  let location = start.headers.location!;
  const one = await call(`http://127.0.0.1:${a!.port}`, 'PATCH', location, { headers: { 'Content-Range': `0-${first.length - 1}` }, body: first });
  t.is(one.status, 202);
  location = one.headers.location!;
  // a second PATCH on replica A sends a few bytes, then nothing (a client gone silent mid-body)
  const stalled = http.request({
    host: '127.0.0.1',
    port: a!.port,
    method: 'PATCH',
    path: location,
    headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' },
  });
  const stalledAnswer = new Promise<number | string>((resolve) => {
    stalled.on('response', (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    stalled.on('error', (e) => resolve(e.message));
  });
  stalled.write(rest.subarray(0, 1000));
  await new Promise((r) => setTimeout(r, 300));
  // replica B: the status reports what is stored; a resume at that offset goes on from there
  const status = await call(`http://127.0.0.1:${b!.port}`, 'GET', location);
  t.is(status.status, 204);
  t.is(status.headers.range, `0-${first.length - 1}`);
  const resumed = await call(`http://127.0.0.1:${b!.port}`, 'PATCH', location, {
    headers: { 'Content-Range': `${first.length}-${all.length - 1}` },
    body: rest,
  });
  t.is(resumed.status, 202, resumed.body.toString());
  const put = await call(`http://127.0.0.1:${b!.port}`, 'PUT', `${resumed.headers.location}?digest=${sha(all)}`);
  t.is(put.status, 201, put.body.toString());
  // the stale request ends without recording anything: its bytes are not in the blob
  stalled.end(rest.subarray(1000, 2000));
  const answer = await stalledAnswer;
  t.log(`the stale PATCH got: ${answer}`);
  t.not(answer, 202);
  const got = await req('GET', `/v2/so/takeover/blobs/${sha(all)}`);
  t.is(sha(got.body), sha(all));
});

test.serial('a fresh replica with an empty local root serves everything already pushed', async (t) => {
  const pushed = await pushImage('so/fresh', 'v1', 'fresh');
  const replica = await set.startReplica();
  try {
    const direct = (m: string, p: string, o?: Parameters<typeof call>[3]) => call(`http://127.0.0.1:${replica.port}`, m, p, o);
    const manifest = await direct('GET', '/v2/so/fresh/manifests/v1', { headers: { Accept: MediaType.ociManifest } });
    t.is(manifest.status, 200);
    t.true(manifest.body.equals(pushed.manifest));
    const layer = await direct('GET', `/v2/so/fresh/blobs/${sha(pushed.layer)}`);
    t.true(layer.body.equals(pushed.layer));
    t.true((await direct('GET', '/v2/_catalog')).json().repositories.includes('so/fresh'));
  } finally {
    replica.process.kill('SIGTERM');
  }
});

test.serial('SIGKILL of one replica mid-traffic: pushes and pulls through the balancer go on', async (t) => {
  const base = await pushImage('so/kill', 'base', 'kill');
  let stop = false;
  const failures: string[] = [];
  let done = 0;
  const traffic = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        const data = randomBytes(200_000 + i);
        // a client retries a request cut by a dying replica, as docker does
        let put: Reply | undefined;
        for (let attempt = 0; attempt < 3 && put?.status !== 201; attempt++)
          put = await chunkedUpload('so/kill', data, 64 << 10).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message) }) as Reply);
        if (put?.status !== 201) failures.push(`push ${i}: ${put?.status} ${put?.body}`);
        let got: Reply | undefined;
        for (let attempt = 0; attempt < 3 && got?.status !== 200; attempt++)
          got = await req('GET', '/v2/so/kill/manifests/base', { headers: { Accept: MediaType.ociManifest } }).catch(() => undefined);
        if (!got?.body.equals(base.manifest)) failures.push(`pull ${i}: ${got?.status}`);
        done++;
      } catch (e) {
        failures.push(`round ${i}: ${(e as Error).message}`);
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 1500));
  await set.kill(0);
  const killedAt = done;
  // five full rounds (push + pull) after the kill, however loaded the machine is (bounded)
  const until = Date.now() + 60_000;
  while (done < killedAt + 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  stop = true;
  await traffic;
  t.true(done >= killedAt + 5, `only ${done - killedAt} rounds in 60 s after the kill`);
  t.deepEqual(failures, []);
  // and new pushes still work once the balancer noticed
  const after = randomBytes(1 << 20);
  t.is((await chunkedUpload('so/kill', after, 300_000)).status, 201);
  t.is(digestOf((await req('GET', `/v2/so/kill/blobs/${sha(after)}`)).body) as string, sha(after));
});
