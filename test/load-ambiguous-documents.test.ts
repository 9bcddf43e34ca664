/**
 * `tsbuild load` and OCI layout imports read manifests, indexes and docker's manifest.json as Go
 * clients do: a document docker, containerd or skopeo would read differently is refused, naming the
 * field, before anything of it is stored.
 */
import test from 'ava';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import { loadImageArchive } from '../builder/image/index.js';
import { digestHex, digestOf, MediaType } from '../oci/index.js';
import { importOciLayout, Store } from '../store/index.js';
import { tempDir } from './helpers/temp.js';

const CONFIG = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
const cfg = digestOf(CONFIG);
const C = `{"mediaType":"${MediaType.ociConfig}","digest":"${cfg}","size":${CONFIG.length}}`;

/** An OCI layout directory holding the config and one manifest, listed in index.json by `entry`. */
async function layout(
  manifest: string,
  entry = (d: string, size: number) =>
    `{"mediaType":"${MediaType.ociManifest}","digest":"${d}","size":${size},"annotations":{"org.opencontainers.image.ref.name":"v1"}}`,
): Promise<string> {
  const dir = tempDir('layout-');
  await fs.mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await fs.writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  for (const blob of [CONFIG, manifest]) await fs.writeFile(join(dir, 'blobs', 'sha256', digestHex(digestOf(blob))), blob);
  await fs.writeFile(join(dir, 'index.json'), `{"schemaVersion":2,"manifests":[${entry(digestOf(manifest), Buffer.byteLength(manifest))}]}`);
  return dir;
}

test('an OCI layout whose manifest Go clients would read as an index is refused before anything is stored', async (t) => {
  const manifest = `{"schemaVersion":2,"mediaType":"${MediaType.ociManifest}","config":${C},"layers":[],"Manifests":[${C}]}`;
  const store = await Store.open(tempDir());
  const e = await t.throwsAsync(importOciLayout(store.blobs, await layout(manifest)));
  t.regex(e!.message, new RegExp(`${digestOf(manifest)} is invalid: Manifests: Go clients read this key as "manifests"`));
  t.false(await store.blobs.has(digestOf(manifest)));
  t.false(await store.blobs.has(cfg));
});

test("a layout's index.json is read with the same rules, naming the entry's field", async (t) => {
  const manifest = `{"schemaVersion":2,"mediaType":"${MediaType.ociManifest}","config":${C},"layers":[]}`;
  const store = await Store.open(tempDir());
  // a valid layout imports
  const good = await importOciLayout(store.blobs, await layout(manifest));
  t.is(good[0]!.digest, digestOf(manifest));
  t.is(good[0]!.tag, 'v1');
  const bad = await layout(manifest, (d, size) => `{"mediaType":"${MediaType.ociManifest}","digest":"${d}","size":${size}.0}`);
  const e = await t.throwsAsync(importOciLayout((await Store.open(tempDir())).blobs, bad));
  t.regex(e!.message, /index\.json is invalid: manifests\[0\]\.size: \d+\.0 is not an integer literal/);
});

test("tsbuild load reads docker's manifest.json as docker load does: a case-variant key is refused", async (t) => {
  const build = async (manifestJson: string) => {
    const pack = tar.pack();
    pack.entry({ name: 'config.json' }, CONFIG);
    pack.entry({ name: 'manifest.json' }, manifestJson);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const file = join(tempDir('archive-'), 'image.tar');
    await fs.writeFile(file, Buffer.concat(chunks));
    return file;
  };
  const store = await Store.open(tempDir());
  // docker's own shape loads (RepoTags may be null)
  const loaded = await loadImageArchive(store, await build('[{"Config":"config.json","RepoTags":null,"Layers":[]}]'));
  t.deepEqual(loaded[0]!.names, []);
  // docker would take "config" for Config, and the last of the two wins there
  const variant = await t.throwsAsync(loadImageArchive(store, await build('[{"Config":"config.json","config":"other.json","RepoTags":["x:v1"],"Layers":[]}]')));
  t.is(
    variant!.message,
    `the archive's manifest.json is invalid: [0].config: Go clients read this key as "Config" (they match keys case-insensitively); spell it "Config"`,
  );
  const wrongType = await t.throwsAsync(loadImageArchive(store, await build('[{"Config":"config.json","Layers":"layer.tar"}]')));
  t.regex(wrongType!.message, /\[0\]\.Layers: must be an array, not a string/);
  await t.throwsAsync(store.images.get('x:v1'));
});
