/** The issue's bad-input list, each answered with the spec's error and nothing stored or escaped. */
import test from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { digestOf, MediaType } from '../oci/index.js';
import { pushBlob, pushImage, startTestRegistry, type TestRegistry } from './helpers/registry-http.js';

let reg: TestRegistry;
test.before(async () => {
  reg = await startTestRegistry({ maxManifestBytes: 64 * 1024 });
});
test.after.always(async () => {
  await reg?.close();
});

const putManifest = (name: string, ref: string, body: Buffer | string, contentType: string = MediaType.ociManifest) =>
  reg.call('PUT', `/v2/${name}/manifests/${ref}`, { headers: { 'Content-Type': contentType }, body });

test('malformed JSON manifests are MANIFEST_INVALID', async (t) => {
  for (const body of [
    '{not json',
    '[]',
    '"string"',
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}',
    '{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:bad","size":1},"layers":[]}',
  ]) {
    const r = await putManifest('bad/json', 'v1', body);
    t.is(r.status, 400, body);
    t.is(r.code, 'MANIFEST_INVALID', body);
  }
  t.is((await reg.call('GET', '/v2/bad/json/manifests/v1')).status, 404);
});

test('wrong or inconsistent media types are MANIFEST_INVALID', async (t) => {
  const img = await pushImage(reg, 'bad/mt', 'ok', 'mt');
  // header says docker, body says OCI
  const mismatch = await putManifest('bad/mt', 'v1', img.bytes, MediaType.dockerManifest);
  t.is(mismatch.status, 400);
  t.is(mismatch.code, 'MANIFEST_INVALID');
  // not a manifest media type at all
  const unsupported = await putManifest('bad/mt', 'v2', img.bytes.toString().replace(MediaType.ociManifest, 'text/plain'), 'text/plain');
  t.is(unsupported.code, 'MANIFEST_INVALID');
  // schema 1 is refused
  const schema1 = await putManifest(
    'bad/mt',
    'v3',
    JSON.stringify({ schemaVersion: 1, name: 'bad/mt', tag: 'v3', fsLayers: [] }),
    MediaType.dockerSchema1Signed,
  );
  t.is(schema1.code, 'MANIFEST_INVALID');
  // an index body sent as an image manifest
  const indexAsManifest = await putManifest('bad/mt', 'v4', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, manifests: [] }));
  t.is(indexAsManifest.code, 'MANIFEST_INVALID');
  // a Docker manifest without its mediaType field
  const noField = await putManifest('bad/mt', 'v5', img.bytes.toString().replace(`"mediaType":"${MediaType.ociManifest}",`, ''), MediaType.dockerManifest);
  t.is(noField.code, 'MANIFEST_INVALID');
  t.deepEqual((await reg.call('GET', '/v2/bad/mt/tags/list')).json().tags, ['ok']);
});

test('manifests referencing missing blobs are MANIFEST_BLOB_UNKNOWN', async (t) => {
  const config = await pushBlob(reg, 'bad/refs', '{}');
  const missing = digestOf('never pushed');
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config, size: 2 },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: missing, size: 12 }],
  });
  const r = await putManifest('bad/refs', 'v1', body);
  t.is(r.status, 400);
  t.is(r.code, 'MANIFEST_BLOB_UNKNOWN');
  t.is(r.json().errors[0].detail.digest, missing);
  // a blob pushed to another repository does not count
  const elsewhere = await pushBlob(reg, 'bad/other', 'layer bytes');
  const cross = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config, size: 2 },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: elsewhere, size: 11 }],
  });
  t.is((await putManifest('bad/refs', 'v2', cross)).code, 'MANIFEST_BLOB_UNKNOWN');
});

test('digest mismatches: blob upload, monolithic upload, manifest by digest; malformed digests', async (t) => {
  const start = await reg.call('POST', '/v2/bad/digest/blobs/uploads/');
  const r = await reg.call('PUT', `${start.headers.location}?digest=${digestOf('b')}`, { body: 'a', headers: { 'Content-Length': 1 } });
  t.is(r.code, 'DIGEST_INVALID');
  t.false(await reg.server.store.blobs.has(digestOf('a')));
  const img = await pushImage(reg, 'bad/digest', 'v1', 'dg');
  t.is((await putManifest('bad/digest', digestOf('x'), img.bytes)).code, 'DIGEST_INVALID');
  for (const bad of ['sha256:abc', 'md5:0123', 'sha256:' + 'A'.repeat(64), 'nocolon']) {
    const blob = await reg.call('GET', `/v2/bad/digest/blobs/${bad}`);
    t.is(blob.status, 400, bad);
    t.is(blob.code, 'DIGEST_INVALID', bad);
    const up = await reg.call('POST', `/v2/bad/digest/blobs/uploads/?digest=${bad}`, { body: 'a', headers: { 'Content-Length': 1 } });
    t.is(up.code, 'DIGEST_INVALID', bad);
  }
});

test('invalid and hostile repository names never reach the store', async (t) => {
  const root = reg.server.store.root;
  const names = ['../escape', 'a/../../escape', '..', 'UPPER', 'a//b', '%2e%2e/escape', 'a/%2e%2e/b', 'a/b/', '-lead', 'a'.repeat(256), 'a/./b', 'a\\b'];
  for (const name of names) {
    for (const [method, suffix] of [
      ['GET', '/tags/list'],
      ['POST', '/blobs/uploads/'],
      ['PUT', '/manifests/v1'],
      ['GET', `/blobs/${digestOf('x')}`],
    ] as const) {
      const r = await reg.call(method, `/v2/${name}${suffix}`, { body: method === 'PUT' ? '{}' : undefined });
      t.true(r.status === 400 || r.status === 404, `${method} ${name}${suffix}: ${r.status}`);
      if (r.status === 400) t.is(r.code, 'NAME_INVALID', `${method} ${name}${suffix}`);
    }
  }
  // Other tests share this registry: their upload sessions may vanish while the tree is walked.
  const entries = (dir: string) => {
    try {
      return readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  };
  const walk = (dir: string): string[] => entries(dir).flatMap((e) => [e.name, ...(e.isDirectory() ? walk(join(dir, e.name)) : [])]);
  t.false(walk(root).some((n) => n === 'escape' || n === 'UPPER' || n === '..'));
  t.false(existsSync(join(root, '..', 'escape')));
  t.false(existsSync(join(root, 'content', 'escape')));
  t.deepEqual(
    (await reg.call('GET', '/v2/_catalog')).json().repositories.filter((r: string) => r.includes('escape')),
    [],
  );
  const tag = await putManifest('bad/tag', '-bad-tag', '{}');
  t.is(tag.code, 'TAG_INVALID');
});

test('bad Range and Content-Range headers', async (t) => {
  const digest = await pushBlob(reg, 'bad/range', '0123456789');
  for (const range of ['bytes=abc', 'items=0-1', 'bytes=5-2', 'bytes=10-', 'bytes=-0', 'bytes=']) {
    const r = await reg.call('GET', `/v2/bad/range/blobs/${digest}`, { headers: { Range: range } });
    t.is(r.status, 416, range);
    t.is(r.headers['content-range'], 'bytes */10', range);
  }
  const start = await reg.call('POST', '/v2/bad/range/blobs/uploads/');
  for (const contentRange of ['abc', '5-2', '0-']) {
    const r = await reg.call('PATCH', start.headers.location!, { headers: { 'Content-Range': contentRange }, body: 'xyz' });
    t.is(r.status, 400, contentRange);
    t.is(r.code, 'BLOB_UPLOAD_INVALID', contentRange);
  }
  const wrongLength = await reg.call('PATCH', start.headers.location!, { headers: { 'Content-Range': '0-9', 'Content-Length': 3 }, body: 'xyz' });
  t.is(wrongLength.code, 'BLOB_UPLOAD_INVALID');
  const outOfOrder = await reg.call('PATCH', start.headers.location!, { headers: { 'Content-Range': '3-5' }, body: 'xyz' });
  t.is(outOfOrder.status, 416);
  t.is(outOfOrder.headers.range, '0-0');
  t.is((await reg.call('GET', start.headers.location!)).headers.range, '0-0');
});

test('huge manifests get 413, declared or streamed', async (t) => {
  const config = await pushBlob(reg, 'bad/huge', '{}');
  const layers = Array.from({ length: 2000 }, () => ({ mediaType: MediaType.ociLayerGzip, digest: config, size: 2, annotations: { pad: 'x'.repeat(40) } }));
  const body = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: config, size: 2 }, layers }),
  );
  t.true(body.length > 64 * 1024);
  const declared = await putManifest('bad/huge', 'v1', body);
  t.is(declared.status, 413);
  t.is(declared.code, 'SIZE_INVALID');
  const streamed = await reg.call('PUT', '/v2/bad/huge/manifests/v1', {
    headers: { 'Content-Type': MediaType.ociManifest, 'Transfer-Encoding': 'chunked' },
    body,
  });
  t.is(streamed.status, 413);
  t.is((await reg.call('GET', '/v2/bad/huge/manifests/v1')).status, 404);
});

test('unknown and malformed upload ids are BLOB_UPLOAD_UNKNOWN', async (t) => {
  for (const id of ['0b9e5f55-1111-4222-8333-944455556666', 'short', '..%2f..%2fmeta', 'x'.repeat(100)]) {
    for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
      const r = await reg.call(method, `/v2/bad/uploads/blobs/uploads/${id}${method === 'PUT' ? `?digest=${digestOf('')}` : ''}`, {
        body: method === 'PATCH' ? 'x' : undefined,
      });
      t.is(r.status, 404, `${method} ${id}`);
      t.is(r.code, 'BLOB_UPLOAD_UNKNOWN', `${method} ${id}`);
    }
  }
});

test('concurrent pushes of the same blob all succeed and leave one intact blob', async (t) => {
  const data = randomBytes(1 << 20);
  const own = await startTestRegistry();
  t.teardown(() => own.close());
  const digests = await Promise.all(Array.from({ length: 8 }, (_, i) => pushBlob(own, `bad/same${i % 2}`, data)));
  t.true(digests.every((d) => d === digestOf(data)));
  for (const repo of ['bad/same0', 'bad/same1']) {
    const get = await own.call('GET', `/v2/${repo}/blobs/${digestOf(data)}`);
    t.true(get.body.equals(data));
  }
  t.deepEqual(await own.server.store.ingests.list(), []);
});

test('concurrent pushes of the same tag: every push succeeds, the tag names one of them consistently', async (t) => {
  const images = await Promise.all(Array.from({ length: 6 }, (_, i) => pushImage(reg, 'bad/racetag', `seed${i}`, `race${i}`)));
  const results = await Promise.all(images.map((img) => putManifest('bad/racetag', 'latest', img.bytes)));
  t.true(results.every((r) => r.status === 201));
  const get = await reg.call('GET', '/v2/bad/racetag/manifests/latest');
  const winner = images.find((img) => img.digest === get.headers['docker-content-digest']);
  t.truthy(winner);
  t.true(get.body.equals(winner!.bytes));
});

test('a client that disconnects mid-upload leaves a resumable session and no visible blob', async (t) => {
  const data = randomBytes(4 << 20);
  const digest = digestOf(data);
  const start = await reg.call('POST', '/v2/bad/disconnect/blobs/uploads/');
  const location = start.headers.location!;
  // "0-0" is also what an empty upload reports; uploads here arrive in MiB chunks, so it means nothing yet
  const uploaded = async () => {
    const status = await reg.call('GET', location);
    t.is(status.status, 204);
    const end = Number(/^0-(\d+)$/.exec(status.headers.range as string)![1]);
    return end === 0 ? 0 : end + 1;
  };
  const url = new URL(reg.url);
  const req = http.request({ host: url.hostname, port: url.port, method: 'PATCH', path: location, headers: { 'Content-Length': data.length } });
  const closed = new Promise<void>((resolve) => req.on('close', () => resolve()));
  req.on('error', () => undefined);
  req.write(data.subarray(0, (5 << 20) / 2));
  for (let i = 0; i < 100 && (await uploaded()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
  req.destroy();
  await closed;
  const received = await uploaded();
  t.true(received > 0 && received <= (5 << 20) / 2, `received ${received}`);
  t.is((await reg.call('HEAD', `/v2/bad/disconnect/blobs/${digest}`)).status, 404);
  const rest = await reg.call('PATCH', location, {
    headers: { 'Content-Range': `${received}-${data.length - 1}`, 'Content-Length': data.length - received },
    body: data.subarray(received),
  });
  t.is(rest.status, 202, `resume from ${received}: ${rest.status} ${rest.headers.range}`);
  const put = await reg.call('PUT', `${rest.headers.location}?digest=${digest}`, { headers: { 'Content-Length': 0 } });
  t.is(put.status, 201);
  t.true((await reg.call('GET', `/v2/bad/disconnect/blobs/${digest}`)).body.equals(data));
});

test('abandoned uploads expire', async (t) => {
  const own = await startTestRegistry({ uploadExpiryMs: 200, uploadPurgeIntervalMs: 100 });
  try {
    const start = await own.call('POST', '/v2/bad/expire/blobs/uploads/');
    await own.call('PATCH', start.headers.location!, { body: 'some bytes' });
    let status = 204;
    for (let i = 0; i < 50 && status === 204; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await own.call('GET', start.headers.location!)).status;
    }
    t.is(status, 404);
  } finally {
    await own.close();
  }
});
