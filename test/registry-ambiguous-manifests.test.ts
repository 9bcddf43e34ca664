/**
 * Manifests that Go clients (docker, containerd, skopeo, distribution) would read differently than we
 * do, or refuse, are 400 MANIFEST_INVALID naming the field (the CVE-2021-41190 class); the client refuses
 * them when a registry serves one. Where distribution or skopeo is installed, the cases are checked
 * against them too.
 */
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { digestOf, MediaType, type Digest } from '../oci/index.js';
import { RegistryClient, pullImage } from '../registry/client/index.js';
import { Store } from '../store/index.js';
import { startDistribution, type RunningRegistry } from './helpers/distribution.js';
import { call, pushBlob, startTestRegistry, type TestRegistry } from './helpers/registry-http.js';
import { run } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { findTool, testWith } from './helpers/tools.js';

const CONFIG = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
const LAYER_A = 'layer A';
const LAYER_B = 'layer B';
const cfg = digestOf(CONFIG);
const la = digestOf(LAYER_A);
const lb = digestOf(LAYER_B);

const C = `{"mediaType":"${MediaType.ociConfig}","digest":"${cfg}","size":${CONFIG.length}}`;
const layer = (digest: Digest = la, size = '7', extra = '') => `{"mediaType":"${MediaType.ociLayerGzip}","digest":"${digest}","size":${size}${extra}}`;
const manifest = (extra = '', layers = layer()) => `{"schemaVersion":2,"mediaType":"${MediaType.ociManifest}","config":${C},"layers":[${layers}]${extra}}`;

interface Case {
  name: string;
  body: string | Buffer;
  field: string;
  /** distribution 2.8 answers 400 too (measured): Go's decoder refuses it. Otherwise Go reads it, differently. */
  goRefuses: boolean;
}

const withBadByte = (() => {
  const s = manifest(',"annotations":{"a":"X"}');
  const at = s.indexOf('X');
  return Buffer.concat([Buffer.from(s.slice(0, at)), Buffer.from([0xff]), Buffer.from(s.slice(at + 1))]);
})();

/** The two documents the issue measured (stored today; docker and skopeo fail on them). */
const measured: Case[] = [
  { name: 'manifests-key', body: manifest(`,"Manifests":[${layer()}]`), field: 'Manifests', goRefuses: true },
  {
    name: 'mediatype-key',
    body: manifest().replace(`"mediaType":"${MediaType.ociManifest}"`, `"MediaType":"${MediaType.ociIndex}"`),
    field: 'MediaType',
    goRefuses: true,
  },
];

const cases: Case[] = [
  ...measured,
  // case-variant keys at the top, in descriptors
  { name: 'layers-variant', body: manifest(`,"Layers":[${layer(lb)}]`), field: 'Layers', goRefuses: false },
  { name: 'config-variant', body: manifest().replace('"config":{"mediaType"', '"config":{"MediaType"'), field: 'config.MediaType', goRefuses: false },
  { name: 'long-s-size', body: manifest('', layer(la, '7', ',"\u017fize":8')), field: 'layers[0]["ſize"]', goRefuses: false },
  { name: 'subject-variant', body: manifest(`,"Subject":${layer()}`), field: 'Subject', goRefuses: false },
  // duplicates
  { name: 'duplicate-mediatype', body: manifest(`,"mediaType":"${MediaType.ociIndex}"`), field: 'mediaType', goRefuses: true },
  { name: 'duplicate-size', body: manifest('', layer(la, '7', ',"size":8')), field: 'layers[0].size', goRefuses: false },
  // integers
  { name: 'size-1.5', body: manifest('', `${layer()},${layer()},${layer(la, '1.5')}`), field: 'layers[2].size', goRefuses: true },
  { name: 'size-1e3', body: manifest('', layer(la, '1e3')), field: 'layers[0].size', goRefuses: true },
  { name: 'size-7.0', body: manifest('', layer(la, '7.0')), field: 'layers[0].size', goRefuses: true },
  { name: 'size-negative', body: manifest('', layer(la, '-1')), field: 'layers[0].size', goRefuses: false },
  { name: 'size-int64-overflow', body: manifest('', layer(la, '9223372036854775808')), field: 'layers[0].size', goRefuses: true },
  { name: 'size-string', body: manifest('', layer(la, '"12"')), field: 'layers[0].size', goRefuses: true },
  { name: 'schemaversion-2.0', body: manifest().replace('"schemaVersion":2', '"schemaVersion":2.0'), field: 'schemaVersion', goRefuses: true },
  // types
  { name: 'layers-object', body: manifest().replace(`"layers":[${layer()}]`, '"layers":{}'), field: 'layers', goRefuses: true },
  { name: 'annotation-number', body: manifest(',"annotations":{"a":1}'), field: 'annotations.a', goRefuses: true },
  { name: 'urls-string', body: manifest('', layer(la, '7', ',"urls":"http://example.test/x"')), field: 'layers[0].urls', goRefuses: true },
  // manifest or index
  { name: 'manifests-empty', body: manifest(',"manifests":[]'), field: 'manifests', goRefuses: true },
  { name: 'manifests-null', body: manifest(',"manifests":null'), field: 'manifests', goRefuses: false },
  { name: 'history', body: manifest(',"history":[]'), field: 'history', goRefuses: false },
  // null where Go and JavaScript part ways
  { name: 'annotation-null', body: manifest(',"annotations":{"a":null}'), field: 'annotations.a', goRefuses: false },
  { name: 'size-null', body: manifest('', layer(la, 'null')), field: 'layers[0].size', goRefuses: false },
  { name: 'layers-null', body: manifest().replace(`"layers":[${layer()}]`, '"layers":null'), field: 'layers', goRefuses: false },
  // text
  { name: 'invalid-utf8', body: withBadByte, field: '', goRefuses: false },
];

let reg: TestRegistry;
test.before(async () => {
  reg = await startTestRegistry();
  for (const name of ['amb/x', 'amb/ok', 'amb/idx']) for (const b of [CONFIG, LAYER_A, LAYER_B]) await pushBlob(reg, name, b);
});
test.after.always(async () => {
  await reg?.close();
});

const put = (base: string, name: string, ref: string, body: string | Buffer, contentType: string = MediaType.ociManifest) =>
  call(base, 'PUT', `/v2/${name}/manifests/${ref}`, { headers: { 'Content-Type': contentType }, body });

test('the two measured ambiguous manifests are 400 MANIFEST_INVALID naming the key, and nothing is stored', async (t) => {
  for (const c of measured) {
    const r = await put(reg.url, 'amb/x', c.name, c.body);
    t.is(r.status, 400, `${c.name}: ${r.body}`);
    t.is(r.code, 'MANIFEST_INVALID', c.name);
    const error = r.json().errors[0];
    t.regex(error.message, new RegExp(`: ${c.field}: `), c.name);
    t.is(error.detail.field, c.field);
    t.is((await reg.call('GET', `/v2/amb/x/manifests/${c.name}`)).status, 404);
    t.is((await reg.call('GET', `/v2/amb/x/manifests/${digestOf(c.body)}`)).status, 404);
  }
});

test('every document of the class is 400 MANIFEST_INVALID naming the field', async (t) => {
  for (const c of cases) {
    const r = await put(reg.url, 'amb/x', `class-${c.name}`, c.body);
    t.is(r.status, 400, `${c.name}: ${r.body}`);
    t.is(r.code, 'MANIFEST_INVALID', c.name);
    const error = r.json().errors[0];
    if (c.field) {
      t.true(error.message.includes(`${c.field}: `), `${c.name}: ${error.message}`);
      t.is(error.detail.field, c.field, c.name);
    } else {
      t.regex(error.message, /invalid UTF-8/, c.name);
    }
    t.is((await reg.call('GET', `/v2/amb/x/manifests/class-${c.name}`)).status, 404);
  }
});

test('documents Go reads exactly as we do are still stored', async (t) => {
  const accepted: [string, string | Buffer, string?][] = [
    ['plain', manifest()],
    // Go leaves the zero value for null; absent optional fields read alike
    ['nulls', manifest(',"subject":null,"annotations":null,"artifactType":null')],
    ['no-body-type', manifest().replace(`"mediaType":"${MediaType.ociManifest}",`, '')],
    // keys are compared after unescaping: this is exactly "layers"
    ['escaped-key', manifest().replace('"layers"', '"l\\u0061yers"')],
    // unknown keys are ignored whatever they hold; annotation keys are map keys, matched exactly
    ['unknown', manifest(',"x-extension":{"MediaType":1.5,"Manifests":[]},"annotations":{"a":"1","A":"2"}')],
    ['docker', manifest().replace(MediaType.ociManifest, MediaType.dockerManifest), MediaType.dockerManifest],
  ];
  for (const [name, body, type] of accepted) {
    const r = await put(reg.url, 'amb/ok', name, body, type);
    t.is(r.status, 201, `${name}: ${r.status} ${r.body}`);
  }
});

test('an index whose Docker platform features and OCI fields Go reads alike is stored; with layers it is not', async (t) => {
  const child = manifest();
  t.is((await put(reg.url, 'amb/idx', 'child', child)).status, 201);
  const entry = `{"mediaType":"${MediaType.ociManifest}","digest":"${digestOf(child)}","size":${child.length},"platform":{"architecture":"amd64","os":"linux","features":["sse4"],"os.version":"1"}}`;
  const index = (extra = '') => `{"schemaVersion":2,"mediaType":"${MediaType.ociIndex}","manifests":[${entry}]${extra}}`;
  t.is((await put(reg.url, 'amb/idx', 'good', index(), MediaType.ociIndex)).status, 201);
  const withLayers = await put(reg.url, 'amb/idx', 'layers', index(`,"layers":[${layer()}]`), MediaType.ociIndex);
  t.is(withLayers.code, 'MANIFEST_INVALID');
  t.is(withLayers.json().errors[0].detail.field, 'layers');
  const platformVariant = await put(reg.url, 'amb/idx', 'os', index().replace('"os":"linux"', '"os":"linux","OS":"windows"'), MediaType.ociIndex);
  t.is(platformVariant.json().errors[0].detail.field, 'manifests[0].platform.OS');
  const entryVariant = await put(reg.url, 'amb/idx', 'digest', index().replace('"platform"', '"Platform"'), MediaType.ociIndex);
  t.is(entryVariant.json().errors[0].detail.field, 'manifests[0].Platform');
});

/** POST + PUT ?digest= to distribution, whose upload Location is absolute and carries a query already. */
async function pushBlobTo(base: string, name: string, bytes: string): Promise<void> {
  const start = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digestOf(bytes));
  const done = await fetch(location, { method: 'PUT', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
  if (done.status !== 201) throw new Error(`PUT blob to distribution: ${done.status} ${await done.text()}`);
}

const withDistribution = testWith(['docker-registry']);
let distribution: RunningRegistry | undefined;
test.before(async () => {
  if (findTool('docker-registry')) distribution = await startDistribution();
});

withDistribution('distribution refuses every case Go refuses, with the same 400 MANIFEST_INVALID', async (t) => {
  const distribution_ = distribution!;
  for (const b of [CONFIG, LAYER_A, LAYER_B]) await pushBlobTo(distribution_.url, 'amb/x', b);
  t.is((await put(distribution_.url, 'amb/x', 'plain', manifest())).status, 201, 'the baseline is stored');
  for (const c of cases.filter((x) => x.goRefuses)) {
    const theirs = await put(distribution_.url, 'amb/x', c.name, c.body);
    t.is(theirs.status, 400, `distribution on ${c.name}`);
    t.is(theirs.code, 'MANIFEST_INVALID', `distribution on ${c.name}`);
    t.is((await put(reg.url, 'amb/x', c.name, c.body)).code, 'MANIFEST_INVALID', `tsbuild on ${c.name}`);
  }
});

testWith(['docker-registry', 'skopeo'])('distribution stores a manifest whose "Layers" skopeo reads instead of "layers"; we refuse it', async (t) => {
  const distribution_ = distribution!;
  for (const b of [CONFIG, LAYER_A, LAYER_B]) await pushBlobTo(distribution_.url, 'amb/dup', b);
  const body = manifest(`,"Layers":[${layer(lb)}]`);
  t.is((await put(distribution_.url, 'amb/dup', 'v1', body)).status, 201);
  // JSON.parse reads layer A...
  t.deepEqual(
    JSON.parse(body).layers.map((l: { digest: string }) => l.digest),
    [la],
  );
  // ...and a Go client reads layer B from the very same bytes.
  const inspect = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${distribution_.host}/amb/dup:v1`]);
  t.is(inspect.code, 0, inspect.stderr);
  t.deepEqual(JSON.parse(inspect.stdout).Layers, [lb]);
  const ours = await put(reg.url, 'amb/x', 'dup', body);
  t.is(ours.code, 'MANIFEST_INVALID');
  t.is(ours.json().errors[0].detail.field, 'Layers');
});

test.after.always(async () => {
  await distribution?.stop();
});

/** A registry that serves whatever manifest it is given, as a broken or hostile one would. */
async function serveManifests(manifests: Record<string, { body: string; contentType: string }>): Promise<{ host: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}');
      return;
    }
    const m = /^\/v2\/amb\/x\/manifests\/(.+)$/.exec(path);
    const doc = m ? (manifests[m[1]!] ?? Object.values(manifests).find((d) => digestOf(d.body) === m[1])) : undefined;
    if (!doc) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}');
      return;
    }
    res.writeHead(200, { 'Content-Type': doc.contentType, 'Docker-Content-Digest': digestOf(doc.body), 'Content-Length': Buffer.byteLength(doc.body) });
    res.end(req.method === 'HEAD' ? undefined : doc.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('the client refuses an ambiguous manifest a registry serves, naming the key, and stores nothing', async (t) => {
  const served = await serveManifests({
    'manifests-key': { body: measured[0]!.body as string, contentType: MediaType.ociManifest },
    'mediatype-key': { body: measured[1]!.body as string, contentType: MediaType.ociManifest },
    // Content-Type says index, the body is an image manifest
    'wrong-type': { body: manifest(), contentType: MediaType.ociIndex },
  });
  t.teardown(() => served.close());
  const client = new RegistryClient({ credentials: async () => undefined });
  t.teardown(() => client.close());
  const store = await Store.open(tempDir());
  for (const [tag, field] of [
    ['manifests-key', 'Manifests'],
    ['mediatype-key', 'MediaType'],
    ['wrong-type', 'mediaType'],
  ] as const) {
    const e = await t.throwsAsync(pullImage(client, store, `${served.host}/amb/x:${tag}`));
    t.true(e!.message.includes(`refusing the manifest of ${served.host}/amb/x:${tag}`), e!.message);
    t.true(e!.message.includes(`: ${field}: `), e!.message);
    await t.throwsAsync(store.images.get(`${served.host}/amb/x:${tag}`));
  }
});

testWith(['skopeo'])('skopeo refuses the measured manifests too (the behaviour we match)', async (t) => {
  const served = await serveManifests({ 'manifests-key': { body: measured[0]!.body as string, contentType: MediaType.ociManifest } });
  t.teardown(() => served.close());
  const inspect = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${served.host}/amb/x:manifests-key`]);
  t.not(inspect.code, 0);
  t.regex(inspect.stderr, /ambiguous manifest/);
});
