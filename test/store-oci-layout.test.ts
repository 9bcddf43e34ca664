import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { MediaType } from '../oci/index.js';
import { exportOciLayout, importOciLayout, Store } from '../store/index.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { run } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

const test = testWith(['skopeo', 'umoci', 'busybox']);

test('an exported OCI layout is read by umoci and skopeo, and imports back', async (t) => {
  const store = await Store.open(tempDir());
  const image = await makeBusyboxImage(store);
  const layout = join(tempDir(), 'layout');
  await exportOciLayout(
    store.blobs,
    layout,
    [{ digest: image.digest, mediaType: MediaType.ociManifest, size: image.manifestBytes.length, name: 'docker.io/library/busybox:latest', tag: 'latest' }],
    (d) => store.blobFile(d)!,
  );

  const ls = await run('umoci', ['ls', '--layout', layout]);
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual(ls.stdout.trim().split('\n'), ['latest']);

  const inspect = await run('skopeo', ['inspect', `oci:${layout}:latest`]);
  t.is(inspect.code, 0, inspect.stderr);
  t.is(JSON.parse(inspect.stdout).Digest, image.digest);

  // skopeo copies it to a second layout under another tag; we import that one into a fresh store.
  const copy = join(tempDir(), 'copy');
  const cp = await run('skopeo', ['copy', '--quiet', `oci:${layout}:latest`, `oci:${copy}:v2`]);
  t.is(cp.code, 0, cp.stderr);
  const fresh = await Store.open(tempDir());
  const imported = await importOciLayout(fresh.blobs, copy);
  t.is(imported.length, 1);
  t.is(imported[0]!.tag, 'v2');
  t.is(imported[0]!.digest, image.digest, 'skopeo keeps the manifest bytes, so the digest is the same');
  t.true(await fresh.blobs.has(image.manifest.layers[0]!.digest));

  // umoci can unpack the exported image into a runtime bundle: the layer is a valid rootfs.
  const bundle = join(tempDir(), 'bundle');
  const unpack = await run('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle]);
  t.is(unpack.code, 0, unpack.stderr);
  t.true((await fs.stat(join(bundle, 'rootfs', 'bin', 'busybox'))).isFile());
});

test('importing a layout whose blob is corrupt fails and stores nothing of it', async (t) => {
  const store = await Store.open(tempDir());
  const image = await makeBusyboxImage(store);
  const layout = join(tempDir(), 'layout');
  await exportOciLayout(store.blobs, layout, [{ digest: image.digest, mediaType: MediaType.ociManifest, size: image.manifestBytes.length, tag: 'latest' }]);
  const layerPath = join(layout, 'blobs', 'sha256', image.manifest.layers[0]!.digest.slice(7));
  const bytes = await fs.readFile(layerPath);
  bytes.writeUInt8(bytes.readUInt8(100) ^ 0xff, 100);
  await fs.writeFile(layerPath, bytes);
  const fresh = await Store.open(tempDir());
  await t.throwsAsync(importOciLayout(fresh.blobs, layout), { message: /digest mismatch/ });
  t.false(await fresh.blobs.has(image.manifest.layers[0]!.digest));
  await t.throwsAsync(importOciLayout(fresh.blobs, tempDir()), { message: /not an OCI image layout/ });
});
