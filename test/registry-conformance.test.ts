/**
 * Conformance of `tsbuild registry` with the OCI distribution spec v1.1 (and the Docker Registry v2 API
 * details real clients rely on), written from the spec: every endpoint, its headers and its errors.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { digestOf, MediaType } from '../oci/index.js';
import { pushBlob, pushImage, startTestRegistry, type TestRegistry } from './helpers/registry-http.js';

/**
 * The registry under test: an in-process server, or (TSBUILD_CONFORMANCE_TARGET=scaleout, set by
 * registry-conformance-scaleout.test.ts) three replicas on S3 + Redis behind haproxy, where every request
 * may land on another replica. Checks that need the in-process server are skipped there (`balanced`).
 */
let reg: TestRegistry;
let balanced = false;
test.before(async () => {
  if (process.env.TSBUILD_CONFORMANCE_TARGET === 'scaleout') {
    const { startBalancedTarget } = await import('./helpers/replicas.js');
    reg = await startBalancedTarget();
    balanced = true;
  } else {
    reg = await startTestRegistry();
  }
});
test.after.always(async () => {
  await reg?.close();
});

test('GET /v2/ answers 200 with the API version header, which every response carries', async (t) => {
  const r = await reg.call('GET', '/v2/');
  t.is(r.status, 200);
  t.is(r.headers['docker-distribution-api-version'], 'registry/2.0');
  const missing = await reg.call('GET', '/v2/nothing/here/manifests/latest');
  t.is(missing.status, 404);
  t.is(missing.headers['docker-distribution-api-version'], 'registry/2.0');
  t.is(missing.code, 'MANIFEST_UNKNOWN');
  t.truthy(missing.json().errors[0].message);
});

test('chunked upload: POST 202, PATCH with Content-Range in order, GET status 204, PUT ?digest= 201', async (t) => {
  const data = randomBytes(300_000);
  const digest = digestOf(data);
  const start = await reg.call('POST', '/v2/conf/chunked/blobs/uploads/');
  t.is(start.status, 202);
  t.regex(start.headers.location!, /^\/v2\/conf\/chunked\/blobs\/uploads\/[0-9a-f-]+$/);
  t.is(start.headers.range, '0-0');
  t.truthy(start.headers['docker-upload-uuid']);
  let location = start.headers.location!;
  for (const [from, to] of [
    [0, 99_999],
    [100_000, 199_999],
  ] as const) {
    const r = await reg.call('PATCH', location, {
      headers: { 'Content-Range': `${from}-${to}`, 'Content-Type': 'application/octet-stream' },
      body: data.subarray(from, to + 1),
    });
    t.is(r.status, 202);
    t.is(r.headers.range, `0-${to}`);
    location = r.headers.location!;
  }
  const status = await reg.call('GET', location);
  t.is(status.status, 204);
  t.is(status.headers.range, '0-199999');
  t.is(status.headers['docker-upload-uuid'], start.headers['docker-upload-uuid']);
  // a chunk that does not start where the upload ends is refused with the current range
  const gap = await reg.call('PATCH', location, { headers: { 'Content-Range': '250000-299999' }, body: data.subarray(250_000) });
  t.is(gap.status, 416);
  t.is(gap.headers.range, '0-199999');
  const put = await reg.call('PUT', `${location}?digest=${digest}`, {
    headers: { 'Content-Range': '200000-299999', 'Content-Length': 100_000 },
    body: data.subarray(200_000),
  });
  t.is(put.status, 201);
  t.is(put.headers.location, `/v2/conf/chunked/blobs/${digest}`);
  t.is(put.headers['docker-content-digest'], digest);
  const get = await reg.call('GET', `/v2/conf/chunked/blobs/${digest}`);
  t.is(get.status, 200);
  t.true(get.body.equals(data));
  t.is(get.headers['docker-content-digest'], digest);
  t.is(get.headers['content-length'], String(data.length));
  t.is(get.headers.etag, `"${digest}"`);
  const after = await reg.call('GET', location);
  t.is(after.status, 404);
  t.is(after.code, 'BLOB_UPLOAD_UNKNOWN');
});

test('streamed PATCH without Content-Range (docker push) then PUT ?digest= without body', async (t) => {
  const data = randomBytes(2_000_000);
  const digest = digestOf(data);
  const start = await reg.call('POST', '/v2/conf/streamed/blobs/uploads/');
  const patch = await reg.call('PATCH', start.headers.location!, { headers: { 'Transfer-Encoding': 'chunked' }, body: data });
  t.is(patch.status, 202);
  t.is(patch.headers.range, `0-${data.length - 1}`);
  const put = await reg.call('PUT', `${patch.headers.location}?digest=${digest}`, { headers: { 'Content-Length': 0 } });
  t.is(put.status, 201);
  const head = await reg.call('HEAD', `/v2/conf/streamed/blobs/${digest}`);
  t.is(head.status, 200);
  t.is(head.headers['content-length'], String(data.length));
  t.is(head.body.length, 0);
});

test('12 streamed uploads at once, sharing the hashing threads, each store exactly their own bytes', async (t) => {
  const blobs = Array.from({ length: 12 }, (_, i) => randomBytes(3_000_000 + i * 70_001));
  await Promise.all(
    blobs.map(async (data, i) => {
      const start = await reg.call('POST', `/v2/conf/parallel${i}/blobs/uploads/`);
      const patch = await reg.call('PATCH', start.headers.location!, { headers: { 'Transfer-Encoding': 'chunked' }, body: data });
      t.is(patch.status, 202);
      const put = await reg.call('PUT', `${patch.headers.location}?digest=${digestOf(data)}`, { headers: { 'Content-Length': 0 } });
      t.is(put.status, 201, `upload ${i}`);
    }),
  );
  for (const [i, data] of blobs.entries()) {
    const get = await reg.call('GET', `/v2/conf/parallel${i}/blobs/${digestOf(data)}`);
    t.true(get.body.equals(data), `blob ${i} reads back intact`);
  }
});

test('monolithic POST ?digest= stores the blob in one request', async (t) => {
  const data = Buffer.from('monolithic blob');
  const digest = digestOf(data);
  const r = await reg.call('POST', `/v2/conf/mono/blobs/uploads/?digest=${digest}`, {
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length },
    body: data,
  });
  t.is(r.status, 201);
  t.is(r.headers['docker-content-digest'], digest);
  t.is(r.headers.location, `/v2/conf/mono/blobs/${digest}`);
  t.true((await reg.call('GET', `/v2/conf/mono/blobs/${digest}`)).body.equals(data));
});

test('PUT ?digest= with a wrong digest: 400 DIGEST_INVALID, no blob, the session is gone', async (t) => {
  const data = Buffer.from('the real content');
  const wrong = digestOf('something else');
  const start = await reg.call('POST', '/v2/conf/mismatch/blobs/uploads/');
  const put = await reg.call('PUT', `${start.headers.location}?digest=${wrong}`, { body: data, headers: { 'Content-Length': data.length } });
  t.is(put.status, 400);
  t.is(put.code, 'DIGEST_INVALID');
  t.is((await reg.call('HEAD', `/v2/conf/mismatch/blobs/${wrong}`)).status, 404);
  t.is((await reg.call('HEAD', `/v2/conf/mismatch/blobs/${digestOf(data)}`)).status, 404);
  if (!balanced) t.false(await reg.server.store.blobs.has(digestOf(data)));
  t.is((await reg.call('GET', start.headers.location!)).status, 404);
  const mono = await reg.call('POST', `/v2/conf/mismatch/blobs/uploads/?digest=${wrong}`, { body: data, headers: { 'Content-Length': data.length } });
  t.is(mono.status, 400);
  t.is(mono.code, 'DIGEST_INVALID');
  if (!balanced) t.false(await reg.server.store.blobs.has(digestOf(data)));
});

test('PUT without ?digest= is DIGEST_INVALID and keeps the session', async (t) => {
  const start = await reg.call('POST', '/v2/conf/nodigest/blobs/uploads/');
  const put = await reg.call('PUT', start.headers.location!, { headers: { 'Content-Length': 0 } });
  t.is(put.status, 400);
  t.is(put.code, 'DIGEST_INVALID');
  t.is((await reg.call('GET', start.headers.location!)).status, 204);
});

test('DELETE of an upload cancels it', async (t) => {
  const start = await reg.call('POST', '/v2/conf/cancel/blobs/uploads/');
  await reg.call('PATCH', start.headers.location!, { body: 'partial' });
  const del = await reg.call('DELETE', start.headers.location!);
  t.is(del.status, 204);
  const status = await reg.call('GET', start.headers.location!);
  t.is(status.status, 404);
  t.is(status.code, 'BLOB_UPLOAD_UNKNOWN');
  t.is((await reg.call('DELETE', start.headers.location!)).status, 404);
});

test('an upload session belongs to its repository', async (t) => {
  const start = await reg.call('POST', '/v2/conf/owner/blobs/uploads/');
  const id = start.headers['docker-upload-uuid'] as string;
  const other = await reg.call('PATCH', `/v2/conf/intruder/blobs/uploads/${id}`, { body: 'x' });
  t.is(other.status, 404);
  t.is(other.code, 'BLOB_UPLOAD_UNKNOWN');
});

test('cross-repository mount: 201 when the source repository has the blob, else a 202 upload', async (t) => {
  const digest = await pushBlob(reg, 'conf/mount-src', 'mountable');
  const mounted = await reg.call('POST', `/v2/conf/mount-dst/blobs/uploads/?mount=${digest}&from=conf/mount-src`);
  t.is(mounted.status, 201);
  t.is(mounted.headers.location, `/v2/conf/mount-dst/blobs/${digest}`);
  t.is(mounted.headers['docker-content-digest'], digest);
  t.is((await reg.call('GET', `/v2/conf/mount-dst/blobs/${digest}`)).body.toString(), 'mountable');
  const fallback = await reg.call('POST', `/v2/conf/mount-dst2/blobs/uploads/?mount=${digest}&from=conf/not-there`);
  t.is(fallback.status, 202);
  t.truthy(fallback.headers.location);
  t.is((await reg.call('HEAD', `/v2/conf/mount-dst2/blobs/${digest}`)).status, 404);
});

test('a blob is visible in a repository only once pushed or mounted there', async (t) => {
  const digest = await pushBlob(reg, 'conf/vis-a', 'private bytes');
  t.is((await reg.call('HEAD', `/v2/conf/vis-a/blobs/${digest}`)).status, 200);
  const elsewhere = await reg.call('GET', `/v2/conf/vis-b/blobs/${digest}`);
  t.is(elsewhere.status, 404);
  t.is(elsewhere.code, 'BLOB_UNKNOWN');
});

test('blob GET honours Range (206, Content-Range), suffix ranges and If-None-Match', async (t) => {
  const data = Buffer.from('0123456789abcdefghij');
  const digest = await pushBlob(reg, 'conf/range', data);
  const mid = await reg.call('GET', `/v2/conf/range/blobs/${digest}`, { headers: { Range: 'bytes=5-9' } });
  t.is(mid.status, 206);
  t.is(mid.body.toString(), '56789');
  t.is(mid.headers['content-range'], `bytes 5-9/${data.length}`);
  t.is(mid.headers['content-length'], '5');
  const open = await reg.call('GET', `/v2/conf/range/blobs/${digest}`, { headers: { Range: 'bytes=15-' } });
  t.is(open.body.toString(), 'fghij');
  const suffix = await reg.call('GET', `/v2/conf/range/blobs/${digest}`, { headers: { Range: 'bytes=-3' } });
  t.is(suffix.body.toString(), 'hij');
  const past = await reg.call('GET', `/v2/conf/range/blobs/${digest}`, { headers: { Range: 'bytes=100-200' } });
  t.is(past.status, 416);
  t.is(past.headers['content-range'], `bytes */${data.length}`);
  const cached = await reg.call('GET', `/v2/conf/range/blobs/${digest}`, { headers: { 'If-None-Match': `"${digest}"` } });
  t.is(cached.status, 304);
});

test('blob GET from a cold page cache (reads that go to the disk) returns the same bytes, whole and by range', async (t) => {
  const data = randomBytes(24 << 20);
  const digest = await pushBlob(reg, 'conf/cold', data);
  const dropPageCache = () => {
    try {
      writeFileSync('/proc/sys/vm/drop_caches', '1');
    } catch (e) {
      t.log(`page cache not dropped (${(e as Error).message}): the reads below come from memory`);
    }
  };
  dropPageCache();
  const whole = await reg.call('GET', `/v2/conf/cold/blobs/${digest}`);
  t.is(whole.status, 200);
  t.true(whole.body.equals(data));
  dropPageCache();
  const tail = await reg.call('GET', `/v2/conf/cold/blobs/${digest}`, { headers: { Range: `bytes=${(20 << 20) + 7}-` } });
  t.is(tail.status, 206);
  t.true(tail.body.equals(data.subarray((20 << 20) + 7)));
});

test('blob DELETE unlinks it from the repository (202), then 404', async (t) => {
  const digest = await pushBlob(reg, 'conf/blobdel', 'delete me');
  const del = await reg.call('DELETE', `/v2/conf/blobdel/blobs/${digest}`);
  t.is(del.status, 202);
  t.is((await reg.call('GET', `/v2/conf/blobdel/blobs/${digest}`)).status, 404);
  const again = await reg.call('DELETE', `/v2/conf/blobdel/blobs/${digest}`);
  t.is(again.status, 404);
  t.is(again.code, 'BLOB_UNKNOWN');
});

test('manifest PUT by tag and GET/HEAD by tag and digest return the exact bytes with stored headers', async (t) => {
  const configBytes = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}';
  const config = await pushBlob(reg, 'conf/man', configBytes);
  const layer = await pushBlob(reg, 'conf/man', 'layer');
  // unusual formatting must survive byte for byte: the digest is of these bytes
  const bytes = Buffer.from(
    `{\n   "schemaVersion": 2,\n "mediaType": "${MediaType.dockerManifest}",\n "config": {"mediaType": "${MediaType.dockerConfig}", "digest": "${config}", "size": ${configBytes.length}},\n "layers": [ {"mediaType": "${MediaType.dockerLayerGzip}", "digest": "${layer}", "size": 5} ]\n}\n`,
  );
  const digest = digestOf(bytes);
  const put = await reg.call('PUT', '/v2/conf/man/manifests/v1', { headers: { 'Content-Type': MediaType.dockerManifest }, body: bytes });
  t.is(put.status, 201, put.body.toString());
  t.is(put.headers['docker-content-digest'], digest);
  t.is(put.headers.location, `/v2/conf/man/manifests/${digest}`);
  for (const ref of ['v1', digest]) {
    const get = await reg.call('GET', `/v2/conf/man/manifests/${ref}`, { headers: { Accept: `${MediaType.dockerManifest}, ${MediaType.ociManifest}` } });
    t.is(get.status, 200);
    t.true(get.body.equals(bytes));
    t.is(get.headers['content-type'], MediaType.dockerManifest);
    t.is(get.headers['docker-content-digest'], digest);
    t.is(get.headers['content-length'], String(bytes.length));
    t.is(get.headers.etag, `"${digest}"`);
    const head = await reg.call('HEAD', `/v2/conf/man/manifests/${ref}`);
    t.is(head.status, 200);
    t.is(head.headers['content-length'], String(bytes.length));
    t.is(head.headers['docker-content-digest'], digest);
    t.is(head.body.length, 0);
  }
  const notModified = await reg.call('GET', '/v2/conf/man/manifests/v1', { headers: { 'If-None-Match': `"${digest}"` } });
  t.is(notModified.status, 304);
  const refused = await reg.call('GET', '/v2/conf/man/manifests/v1', { headers: { Accept: MediaType.ociIndex } });
  t.is(refused.status, 404);
  t.is(refused.code, 'MANIFEST_UNKNOWN');
});

test('manifest PUT by digest must match the body', async (t) => {
  const img = await pushImage(reg, 'conf/bydigest', 'seed', 'bd');
  const again = await reg.call('PUT', `/v2/conf/bydigest/manifests/${img.digest}`, { headers: { 'Content-Type': MediaType.ociManifest }, body: img.bytes });
  t.is(again.status, 201);
  const wrong = await reg.call('PUT', `/v2/conf/bydigest/manifests/${digestOf('other')}`, {
    headers: { 'Content-Type': MediaType.ociManifest },
    body: img.bytes,
  });
  t.is(wrong.status, 400);
  t.is(wrong.code, 'DIGEST_INVALID');
});

test('indexes and manifest lists: children must be in the repository', async (t) => {
  const a = await pushImage(reg, 'conf/index', 'a', 'ia');
  const index = (mediaType: string, children: { digest: string; size: number }[]) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        manifests: children.map((c) => ({
          mediaType: MediaType.ociManifest,
          digest: c.digest,
          size: c.size,
          platform: { os: 'linux', architecture: 'amd64' },
        })),
      }),
    );
  const ok = index(MediaType.ociIndex, [{ digest: a.digest, size: a.bytes.length }]);
  const put = await reg.call('PUT', '/v2/conf/index/manifests/multi', { headers: { 'Content-Type': MediaType.ociIndex }, body: ok });
  t.is(put.status, 201, put.body.toString());
  const get = await reg.call('GET', '/v2/conf/index/manifests/multi');
  t.is(get.headers['content-type'], MediaType.ociIndex);
  t.true(get.body.equals(ok));
  const list = index(MediaType.dockerManifestList, [{ digest: a.digest, size: a.bytes.length }]);
  t.is((await reg.call('PUT', '/v2/conf/index/manifests/list', { headers: { 'Content-Type': MediaType.dockerManifestList }, body: list })).status, 201);
  const dangling = index(MediaType.ociIndex, [{ digest: digestOf('no such manifest'), size: 10 }]);
  const bad = await reg.call('PUT', '/v2/conf/index/manifests/bad', { headers: { 'Content-Type': MediaType.ociIndex }, body: dangling });
  t.is(bad.status, 400);
  t.is(bad.code, 'MANIFEST_BLOB_UNKNOWN');
});

test('manifest DELETE by digest removes it and its tags; DELETE by tag removes only the tag', async (t) => {
  const img = await pushImage(reg, 'conf/mdel', 'v1', 'md');
  await reg.call('PUT', '/v2/conf/mdel/manifests/v2', { headers: { 'Content-Type': MediaType.ociManifest }, body: img.bytes });
  const untag = await reg.call('DELETE', '/v2/conf/mdel/manifests/v2');
  t.is(untag.status, 202);
  t.is((await reg.call('GET', '/v2/conf/mdel/manifests/v2')).status, 404);
  t.is((await reg.call('GET', '/v2/conf/mdel/manifests/v1')).status, 200);
  const del = await reg.call('DELETE', `/v2/conf/mdel/manifests/${img.digest}`);
  t.is(del.status, 202);
  const gone = await reg.call('GET', `/v2/conf/mdel/manifests/${img.digest}`);
  t.is(gone.status, 404);
  t.is(gone.code, 'MANIFEST_UNKNOWN');
  t.is((await reg.call('GET', '/v2/conf/mdel/manifests/v1')).status, 404);
  t.is((await reg.call('DELETE', `/v2/conf/mdel/manifests/${img.digest}`)).code, 'MANIFEST_UNKNOWN');
});

test('tags list: lexical order, n/last pagination with a Link header; unknown repository 404', async (t) => {
  const img = await pushImage(reg, 'conf/tags', 'b', 'tg');
  for (const tag of ['a', 'C', 'c', '1.0', 'z']) {
    await reg.call('PUT', `/v2/conf/tags/manifests/${tag}`, { headers: { 'Content-Type': MediaType.ociManifest }, body: img.bytes });
  }
  const all = await reg.call('GET', '/v2/conf/tags/tags/list');
  t.deepEqual(all.json(), { name: 'conf/tags', tags: ['1.0', 'C', 'a', 'b', 'c', 'z'] });
  t.is(all.headers.link, undefined);
  const first = await reg.call('GET', '/v2/conf/tags/tags/list?n=2');
  t.deepEqual(first.json().tags, ['1.0', 'C']);
  t.is(first.headers.link, '</v2/conf/tags/tags/list?n=2&last=C>; rel="next"');
  const second = await reg.call('GET', '/v2/conf/tags/tags/list?n=2&last=C');
  t.deepEqual(second.json().tags, ['a', 'b']);
  const last = await reg.call('GET', '/v2/conf/tags/tags/list?n=2&last=b');
  t.deepEqual(last.json().tags, ['c', 'z']);
  const none = await reg.call('GET', '/v2/conf/tags/tags/list?n=2&last=z');
  t.deepEqual(none.json().tags, []);
  t.is(none.headers.link, undefined);
  const unknown = await reg.call('GET', '/v2/conf/never-pushed/tags/list');
  t.is(unknown.status, 404);
  t.is(unknown.code, 'NAME_UNKNOWN');
  const badN = await reg.call('GET', '/v2/conf/tags/tags/list?n=-1');
  t.is(badN.status, 400);
  t.is(badN.code, 'PAGINATION_NUMBER_INVALID');
});

test('catalog lists repositories (nested names too) with pagination', async (t) => {
  const own = await startTestRegistry();
  try {
    for (const name of ['b/two', 'a', 'b/one/deep', 'c']) await pushBlob(own, name, name);
    const all = await own.call('GET', '/v2/_catalog');
    t.deepEqual(all.json(), { repositories: ['a', 'b/one/deep', 'b/two', 'c'] });
    const page = await own.call('GET', '/v2/_catalog?n=2');
    t.deepEqual(page.json().repositories, ['a', 'b/one/deep']);
    t.is(page.headers.link, `</v2/_catalog?n=2&last=${encodeURIComponent('b/one/deep')}>; rel="next"`);
    const rest = await own.call('GET', `/v2/_catalog?n=2&last=${encodeURIComponent('b/one/deep')}`);
    t.deepEqual(rest.json().repositories, ['b/two', 'c']);
  } finally {
    await own.close();
  }
});

test('referrers: OCI-Subject on push, listed with artifactType filter, empty index for unknown digests', async (t) => {
  const subject = await pushImage(reg, 'conf/refs', 'v1', 'subject');
  const empty = await pushBlob(reg, 'conf/refs', '{}');
  const artifact = (artifactType: string, note: string) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType,
        config: { mediaType: MediaType.ociEmpty, digest: empty, size: 2 },
        layers: [{ mediaType: MediaType.ociEmpty, digest: empty, size: 2 }],
        subject: { mediaType: MediaType.ociManifest, digest: subject.digest, size: subject.bytes.length },
        annotations: { note },
      }),
    );
  const sig = artifact('application/vnd.example.signature', 'sig');
  const sbom = artifact('application/vnd.example.sbom', 'sbom');
  for (const body of [sig, sbom]) {
    const put = await reg.call('PUT', `/v2/conf/refs/manifests/${digestOf(body)}`, { headers: { 'Content-Type': MediaType.ociManifest }, body });
    t.is(put.status, 201, put.body.toString());
    t.is(put.headers['oci-subject'], subject.digest);
  }
  const all = await reg.call('GET', `/v2/conf/refs/referrers/${subject.digest}`);
  t.is(all.status, 200);
  t.is(all.headers['content-type'], MediaType.ociIndex);
  const index = all.json();
  t.is(index.schemaVersion, 2);
  t.is(index.mediaType, MediaType.ociIndex);
  t.is(index.manifests.length, 2);
  const sigEntry = index.manifests.find((m: { digest: string }) => m.digest === digestOf(sig));
  t.deepEqual(sigEntry, {
    mediaType: MediaType.ociManifest,
    digest: digestOf(sig),
    size: sig.length,
    artifactType: 'application/vnd.example.signature',
    annotations: { note: 'sig' },
  });
  t.is(all.headers['oci-filters-applied'], undefined);
  const filtered = await reg.call('GET', `/v2/conf/refs/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
  t.is(filtered.headers['oci-filters-applied'], 'artifactType');
  t.deepEqual(
    filtered.json().manifests.map((m: { digest: string }) => m.digest),
    [digestOf(sbom)],
  );
  const unknown = await reg.call('GET', `/v2/conf/refs/referrers/${digestOf('unknown')}`);
  t.is(unknown.status, 200);
  t.deepEqual(unknown.json(), { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
  // deleting a referrer takes it out of the list
  await reg.call('DELETE', `/v2/conf/refs/manifests/${digestOf(sig)}`);
  const after = await reg.call('GET', `/v2/conf/refs/referrers/${subject.digest}`);
  t.deepEqual(
    after.json().manifests.map((m: { digest: string }) => m.digest),
    [digestOf(sbom)],
  );
  const badDigest = await reg.call('GET', '/v2/conf/refs/referrers/sha256:nothex');
  t.is(badDigest.status, 400);
  t.is(badDigest.code, 'DIGEST_INVALID');
});

test('unsupported methods answer 405 UNSUPPORTED; unknown paths 404', async (t) => {
  const r = await reg.call('POST', '/v2/conf/x/tags/list');
  t.is(r.status, 405);
  t.is(r.code, 'UNSUPPORTED');
  t.is((await reg.call('GET', '/nothing')).status, 404);
});

test('read-only mode: writes 405 UNSUPPORTED, reads work', async (t) => {
  const writable = await startTestRegistry();
  const img = await pushImage(writable, 'ro/app', 'v1', 'ro');
  await writable.close();
  const ro = await startTestRegistry({ store: writable.server.store, readOnly: true });
  try {
    t.is((await ro.call('GET', '/v2/ro/app/manifests/v1')).status, 200);
    for (const [method, path] of [
      ['POST', '/v2/ro/app/blobs/uploads/'],
      ['PUT', '/v2/ro/app/manifests/v2'],
      ['DELETE', `/v2/ro/app/manifests/${img.digest}`],
      ['DELETE', `/v2/ro/app/blobs/${img.layer}`],
    ] as const) {
      const r = await ro.call(method, path, { body: method === 'PUT' ? img.bytes : undefined });
      t.is(r.status, 405, `${method} ${path}`);
      t.is(r.code, 'UNSUPPORTED');
    }
  } finally {
    await ro.close();
  }
});

test('health and Prometheus metrics', async (t) => {
  const health = await reg.call('GET', '/healthz');
  t.is(health.status, 200);
  t.is(health.json().status, 'ok');
  // behind the balancer each request goes to the next replica, and the other tests' requests go between
  // ours: a round of one GET per replica, until the replica answering /metrics is one that counted a GET
  const base = /tsbuild_registry_http_requests_total\{route="base",method="GET",status="200"\} \d+/;
  let text = '';
  for (let round = 0; round < 10 && !base.test(text); round++) {
    for (let i = 0; i < (balanced ? 3 : 1); i++) await reg.call('GET', '/v2/');
    const metrics = await reg.call('GET', '/metrics');
    t.is(metrics.status, 200);
    text = metrics.body.toString();
  }
  t.regex(text, base);
  t.regex(text, /tsbuild_registry_bytes_received_total \d+/);
  t.regex(text, /tsbuild_registry_bytes_sent_total \d+/);
  t.regex(text, /tsbuild_registry_upload_sessions \d+/);
});

test('sha512 digests work for blobs end to end', async (t) => {
  const data = Buffer.from('sha512 content');
  const digest = `sha512:${createHash('sha512').update(data).digest('hex')}`;
  const r = await reg.call('POST', `/v2/conf/sha512/blobs/uploads/?digest=${digest}`, { body: data, headers: { 'Content-Length': data.length } });
  t.is(r.status, 201);
  t.true((await reg.call('GET', `/v2/conf/sha512/blobs/${digest}`)).body.equals(data));
});

test('long uploads are never cut by a request timeout; headers and idle connections are timed', (t) => {
  if (balanced) return t.pass('the replicas are separate processes; registry-cli covers their flags');
  const server = reg.server.httpServer;
  t.is(server.requestTimeout, 0);
  t.is(server.timeout, 0);
  t.is(server.headersTimeout, 60_000);
  t.is(server.keepAliveTimeout, 75_000);
});
