/**
 * The image document parser reads manifests and indexes as Go's encoding/json fills the spec's structs,
 * and refuses every document that a Go client (docker, containerd, skopeo, distribution) would read
 * differently, or refuse — naming the field.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { digestOf, goFoldKey, ImageDocumentError, MediaType, parseImageDocument, parseJsonTree, type ImageDocumentOptions } from '../oci/index.js';

const cfg = digestOf('config');
const l1 = digestOf('layer 1');
const l2 = digestOf('layer 2');
const m1 = digestOf('manifest 1');
const CONFIG = `{"mediaType":"${MediaType.ociConfig}","digest":"${cfg}","size":6}`;
const layer = (digest = l1, size = '7', extra = '') => `{"mediaType":"${MediaType.ociLayerGzip}","digest":"${digest}","size":${size}${extra}}`;
/** An OCI image manifest with `extra` spliced in at the top level. */
const manifest = (extra = '', layers = layer()) => `{"schemaVersion":2,"mediaType":"${MediaType.ociManifest}","config":${CONFIG},"layers":[${layers}]${extra}}`;
const entry = (platform = '{"architecture":"amd64","os":"linux"}', extra = '') =>
  `{"mediaType":"${MediaType.ociManifest}","digest":"${m1}","size":100,"platform":${platform}${extra}}`;
const index = (extra = '', entries = entry()) => `{"schemaVersion":2,"mediaType":"${MediaType.ociIndex}","manifests":[${entries}]${extra}}`;

let cases = 0;
const refuses = (body: string | Buffer, field: string, reason?: RegExp, options: ImageDocumentOptions = {}) =>
  test(`refused #${++cases} at ${field || 'the top'}${reason ? ` (${reason.source})` : ''}`, (t) => {
    const e = t.throws(() => parseImageDocument(body, options), { instanceOf: ImageDocumentError });
    t.is(e!.field, field, e!.message);
    if (reason) t.regex(e!.message, reason);
    // one line, naming the field
    t.false(e!.message.includes('\n'));
    if (field) t.true(e!.message.startsWith(`${field}: `), e!.message);
  });

test('a plain OCI manifest reads as a tagged manifest with exactly its fields', (t) => {
  const doc = parseImageDocument(
    Buffer.from(manifest(`,"annotations":{"a":"1","A":"2"},"artifactType":"x/y","unknown":{"MediaType":1.5}`, `${layer()},${layer(l2, '0')}`)),
  );
  t.is(doc.kind, 'manifest');
  if (doc.kind !== 'manifest') return;
  t.is(doc.mediaType, MediaType.ociManifest);
  t.deepEqual(doc.manifest, {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: 'x/y',
    // map keys match exactly in Go: `a` and `A` are two annotations
    annotations: { a: '1', A: '2' },
    config: { mediaType: MediaType.ociConfig, digest: cfg, size: 6 },
    layers: [
      { mediaType: MediaType.ociLayerGzip, digest: l1, size: 7 },
      { mediaType: MediaType.ociLayerGzip, digest: l2, size: 0 },
    ],
  });
});

test('a Docker manifest list reads as an index, platform features and all', (t) => {
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.dockerManifestList,
    manifests: [
      {
        mediaType: MediaType.dockerManifest,
        digest: m1,
        size: 100,
        platform: { architecture: 'arm', os: 'linux', variant: 'v7', features: ['sse4'], 'os.version': '1', 'os.features': ['win32k'] },
      },
    ],
  });
  const doc = parseImageDocument(body, { mediaType: `${MediaType.dockerManifestList}; charset=utf-8` });
  t.is(doc.kind, 'index');
  if (doc.kind !== 'index') return;
  t.deepEqual(doc.index.manifests[0]!.platform, {
    architecture: 'arm',
    os: 'linux',
    variant: 'v7',
    features: ['sse4'],
    'os.version': '1',
    'os.features': ['win32k'],
  });
});

test('without a media type anywhere the kind is inferred, unless inference is off', (t) => {
  const bare = `{"schemaVersion":2,"config":${CONFIG},"layers":[${layer()}]}`;
  t.is(parseImageDocument(bare).mediaType, MediaType.ociManifest);
  t.is(parseImageDocument(bare, { mediaType: 'application/json' }).mediaType, MediaType.ociManifest);
  t.is(parseImageDocument(`{"schemaVersion":2,"manifests":[${entry()}]}`).kind, 'index');
  const e = t.throws(() => parseImageDocument(bare, { inferMediaType: false }), { instanceOf: ImageDocumentError });
  t.is(e!.field, 'mediaType');
  // the header decides when the body is silent
  t.is(parseImageDocument(`{"schemaVersion":2,"manifests":[${entry()}]}`, { mediaType: MediaType.ociIndex, inferMediaType: false }).kind, 'index');
});

test('null is read as Go reads it: the zero value, which for optional fields is absence', (t) => {
  const doc = parseImageDocument(
    manifest(',"subject":null,"annotations":null,"artifactType":null').replace(`"mediaType":"${MediaType.ociManifest}"`, '"mediaType":null'),
    { mediaType: MediaType.ociManifest },
  );
  t.is(doc.kind, 'manifest');
  if (doc.kind !== 'manifest') return;
  t.is(doc.manifest.subject, undefined);
  t.is(doc.manifest.annotations, undefined);
  t.is(doc.manifest.mediaType, undefined);
  const idx = parseImageDocument(index('', entry('{"architecture":"amd64","os":"linux","variant":null}')));
  t.deepEqual(idx.kind === 'index' && idx.index.manifests[0]!.platform, { architecture: 'amd64', os: 'linux' });
  // a platform without os reads as Go's zero value, ""
  const noOs = parseImageDocument(index('', entry('{"architecture":"amd64"}')));
  t.deepEqual(noOs.kind === 'index' && noOs.index.manifests[0]!.platform, { architecture: 'amd64', os: '' });
});

test('escapes are decoded before keys are matched, so an escaped exact name is that field', (t) => {
  const doc = parseImageDocument(manifest().replace('"layers"', '"l\\u0061yers"'));
  t.is(doc.kind, 'manifest');
  // a surrogate pair is one character; a lone surrogate is not text Go and JavaScript agree on
  const pair = parseImageDocument(manifest(',"annotations":{"x":"\\ud83d\\ude00"}'));
  t.is(pair.kind === 'manifest' && pair.manifest.annotations?.x, '😀');
});

test('Go folds keys with Unicode simple folding: ſ is s, the Kelvin sign is k, İ and ı are i', (t) => {
  t.is(goFoldKey('mediaType'), 'MEDIATYPE');
  t.is(goFoldKey('ſize'), 'SIZE');
  t.is(goFoldKey('\u212Aey'), 'KEY');
  t.is(goFoldKey('plİtform'), 'PLITFORM');
  t.is(goFoldKey('plıtform'), 'PLITFORM');
  t.is(goFoldKey('größe'), 'GRößE');
});

test('embedded data must be the described bytes', (t) => {
  const bytes = Buffer.from('hello');
  const good = layer(digestOf(bytes), '5', `,"data":"${bytes.toString('base64')}"`);
  t.is(parseImageDocument(manifest('', good)).kind, 'manifest');
  const e = t.throws(() => parseImageDocument(manifest('', layer(digestOf(bytes), '5', `,"data":"${Buffer.from('world').toString('base64')}"`))), {
    instanceOf: ImageDocumentError,
  });
  t.is(e!.field, 'layers[0].data');
  t.is(t.throws(() => parseImageDocument(manifest('', layer(digestOf(bytes), '5', ',"data":"aGVsbG8"'))))!.message.split(':')[0], 'layers[0].data');
});

test('the JSON grammar is RFC 8259 exactly, as Go scans it', (t) => {
  for (const bad of [
    '',
    '{',
    '{"a":1,}',
    '[1,]',
    '{"a":01}',
    '{"a":+1}',
    '{"a":.5}',
    '{"a":1.}',
    '{"a":1e}',
    '{"a":"\\x"}',
    '{"a":"\t"}',
    '{"a":tru}',
    '\uFEFF{}',
    '{}x',
    '{"a":1}\u00a0',
    "{'a':1}",
  ]) {
    t.throws(() => parseJsonTree(bad), undefined, JSON.stringify(bad));
  }
  for (const good of ['{}', ' {"a" : [ 1 , -0 , 1.5e-3 , 1E+2 , true , false , null , "\\u00e9\\n" ] } ', '{"a":{"b":{"c":[]}}}']) {
    t.notThrows(() => parseJsonTree(good), good);
  }
  const tree = parseJsonTree('{"n":1.50,"n":2}');
  t.deepEqual(tree, {
    type: 'object',
    keys: ['n', 'n'],
    values: [
      { type: 'number', raw: '1.50' },
      { type: 'number', raw: '2' },
    ],
  });
});

// The two documents measured in the issue: docker "expected manifest but found index", skopeo "rejecting ambiguous manifest".
refuses(manifest(`,"Manifests":[${layer()}]`), 'Manifests', /"manifests"/);
refuses(manifest().replace(`"mediaType":"${MediaType.ociManifest}"`, `"MediaType":"${MediaType.ociIndex}"`), 'MediaType', /"mediaType"/, {
  mediaType: MediaType.ociManifest,
});

// Keys spelled differently from a field they fill in Go: the top level, descriptors, index entries, platforms.
refuses(manifest().replace('"schemaVersion"', '"SchemaVersion"'), 'SchemaVersion');
refuses(manifest(`,"Layers":[${layer(l2)}]`), 'Layers');
refuses(manifest(`,"SUBJECT":${layer()}`), 'SUBJECT');
refuses(manifest(',"Annotations":{}'), 'Annotations');
refuses(manifest(',"artifacttype":"x"'), 'artifacttype');
refuses(manifest().replace('"config":{"mediaType"', '"config":{"MediaType"'), 'config.MediaType');
refuses(manifest('', `${layer()},${layer(l2, '7', ',"Digest":"x"')}`), 'layers[1].Digest');
refuses(manifest('', layer(l1, '7', ',"\u017fize":8')), 'layers[0]["ſize"]');
refuses(manifest('', layer(l1, '7', ',"\\u017fize":8')), 'layers[0]["ſize"]');
refuses(manifest('', layer(l1, '7', ',"URLs":[]')), 'layers[0].URLs');
refuses(manifest(`,"subject":${layer(l1, '7', ',"ArtifactType":"x"')}`), 'subject.ArtifactType');
refuses(index('', entry(undefined, ',"Platform":{}')), 'manifests[0].Platform');
refuses(index('', entry('{"architecture":"amd64","OS":"windows","os":"linux"}')), 'manifests[0].platform.OS');
refuses(index('', entry('{"architecture":"amd64","os":"linux","OS.Version":"10"}')), 'manifests[0].platform["OS.Version"]');
refuses(index('', entry('{"architecture":"amd64","os":"linux","Variant":"v8"}')), 'manifests[0].platform.Variant');
refuses(index().replace('"manifests"', '"MANIFESTS"'), 'MANIFESTS');

// A field given twice: Go takes the last (and a null one leaves the earlier value), other readers the first.
refuses(manifest(`,"mediaType":"${MediaType.ociIndex}"`), 'mediaType', /twice/);
refuses(manifest(`,"layers":[${layer(l2)}]`), 'layers', /twice/);
refuses(manifest('', layer(l1, '7', ',"size":7')), 'layers[0].size', /twice/);
refuses(index('', entry('{"architecture":"amd64","os":"linux","os":"windows"}')), 'manifests[0].platform.os', /twice/);
refuses(manifest(',"annotations":{"a":"1","a":"2"}'), 'annotations.a', /twice/);

// Integer fields: only integer literals within range; sizes not negative.
refuses(manifest('', layer(l1, '1.5')), 'layers[0].size', /not an integer/);
refuses(manifest('', layer(l1, '1e3')), 'layers[0].size', /not an integer/);
refuses(manifest('', layer(l1, '7.0')), 'layers[0].size', /not an integer/);
refuses(manifest('', layer(l1, '-1')), 'layers[0].size', /negative/);
refuses(manifest('', layer(l1, '9223372036854775808')), 'layers[0].size', /out of range/);
refuses(manifest('', layer(l1, '9007199254740993')), 'layers[0].size', /largest integer/);
refuses(manifest('', layer(l1, '"12"')), 'layers[0].size', /must be an integer, not a string/);
refuses(manifest().replace('"schemaVersion":2', '"schemaVersion":2.0'), 'schemaVersion', /not an integer/);
refuses(manifest().replace('"schemaVersion":2', '"schemaVersion":"2"'), 'schemaVersion', /not a string/);
refuses(manifest().replace('"schemaVersion":2', '"schemaVersion":3'), 'schemaVersion', /must be 2/);
refuses(manifest().replace('"schemaVersion":2,', ''), 'schemaVersion', /missing/);
refuses(index('', entry().replace('"size":100', '"size":1E2')), 'manifests[0].size', /not an integer/);

// Wrong JSON types.
refuses(manifest().replace(`"layers":[${layer()}]`, '"layers":{}'), 'layers', /must be an array/);
refuses(manifest().replace(`"config":${CONFIG}`, '"config":[]'), 'config', /not an array/);
refuses(manifest().replace(`"mediaType":"${MediaType.ociManifest}"`, '"mediaType":5'), 'mediaType', /must be a string/);
refuses(manifest(',"annotations":[]'), 'annotations', /not an array/);
refuses(manifest(',"annotations":{"a":5}'), 'annotations.a', /must be a string/);
refuses(manifest('', layer(l1, '7', ',"urls":"http://x"')), 'layers[0].urls', /must be an array/);
refuses(manifest('', layer(l1, '7', ',"urls":[1]')), 'layers[0].urls[0]', /must be a string/);
refuses(
  manifest('', layer(l1, '7', ',"annotations":{"org.opencontainers.image.title":true}')),
  'layers[0].annotations["org.opencontainers.image.title"]',
  /boolean/,
);
refuses(index('', entry('"linux/amd64"')), 'manifests[0].platform', /not a string/);
refuses(index('', entry('{"architecture":["amd64"],"os":"linux"}')), 'manifests[0].platform.architecture', /not an array/);
refuses(manifest(',"artifactType":{}'), 'artifactType', /not an object/);
refuses('[]', '', /JSON object, not an array/);
refuses('"manifest"', '', /not a string/);

// Manifest or index: the ambiguity checks of distribution, containerd and containers/image.
refuses(index(`,"layers":[${layer()}]`), 'layers', /index must not have layers/);
refuses(index(`,"config":${CONFIG}`), 'config', /index must not have config/);
refuses(index(',"layers":null'), 'layers', /index must not have layers/);
refuses(manifest(',"manifests":[]'), 'manifests', /must not have manifests/);
refuses(manifest(',"manifests":null'), 'manifests', /must not have manifests/);
refuses(manifest(',"fsLayers":[]'), 'fsLayers', /schema 1/);
refuses(manifest(',"history":[]'), 'history', /schema 1/);
refuses(manifest(), 'mediaType', /does not match/, { mediaType: MediaType.ociIndex });
refuses(manifest(), 'mediaType', /does not match/, { mediaType: MediaType.dockerManifest });
refuses(`{"schemaVersion":2,"config":${CONFIG},"layers":[]}`, 'mediaType', /Docker manifest must carry/, { mediaType: MediaType.dockerManifest });
refuses('{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[]}', 'schemaVersion', /schema 1/);
refuses(manifest().replace(MediaType.ociManifest, MediaType.dockerSchema1Signed), 'mediaType', /schema 1/);
refuses(manifest().replace(MediaType.ociManifest, 'text/plain'), 'mediaType', /unsupported/);

// Required parts, nulls where Go and JavaScript part ways.
refuses(manifest().replace(`,"layers":[${layer()}]`, ''), 'layers', /missing/);
refuses(manifest().replace(`"layers":[${layer()}]`, '"layers":null'), 'layers', /null/);
refuses(manifest().replace(`"config":${CONFIG}`, '"config":null'), 'config', /null/);
refuses(manifest('', 'null'), 'layers[0]', /null/);
refuses(manifest('', layer(l1, 'null')), 'layers[0].size', /missing/);
refuses(manifest('', layer().replace(`"mediaType":"${MediaType.ociLayerGzip}",`, '')), 'layers[0].mediaType', /missing/);
refuses(manifest('', layer('sha256:abc' as never)), 'layers[0].digest', /not a valid digest/);
refuses(manifest(',"annotations":{"a":null}'), 'annotations.a', /not a null/);
refuses(manifest('', layer(l1, '7', ',"urls":[null]')), 'layers[0].urls[0]', /not a null/);

// Text Go and JavaScript would decode differently.
const withX = manifest(',"annotations":{"a":"X"}');
refuses(
  Buffer.concat([Buffer.from(withX.slice(0, withX.indexOf('X'))), Buffer.from([0xe2, 0x82]), Buffer.from(withX.slice(withX.indexOf('X') + 1))]),
  '',
  /invalid UTF-8 at byte/,
);
refuses(manifest(',"annotations":{"a":"\\ud800"}'), '', /lone surrogate/);
refuses(manifest() + ' x', '', /not valid JSON/);
