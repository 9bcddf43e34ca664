/**
 * Media types are consistent: an OCI manifest holds only OCI types (a base's docker-typed layers are
 * renamed), `-o type=docker` writes docker types throughout, `-o type=oci` writes gzip layers by default and
 * honours BuildKit's compression options; an unknown option is refused.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { MediaType, parseNormalized, type ImageIndex, type ImageManifest } from '../oci/index.js';
import { Store } from '../store/index.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { DOCKER, dockerRun, loadBusyboxIntoDocker, removeImages } from './helpers/build-compare.js';
import { run, tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

const test = testWith(['runc', 'skopeo', 'dockerd', 'zstd']);

/** A store whose base `dockerish:latest` has a docker-typed manifest, config and gzip layer (as pulled from Docker Hub). */
async function storeWithDockerBase(): Promise<string> {
  const root = join(tempDir('media-root-'), 'root');
  const store = await Store.open(root);
  const image = await makeBusyboxImage(store, 'busybox:latest');
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { ...image.manifest.config, mediaType: MediaType.dockerConfig },
    layers: image.manifest.layers.map((l) => ({ ...l, mediaType: MediaType.dockerLayerGzip })),
  };
  const put = await store.blobs.put(Buffer.from(JSON.stringify(manifest)));
  await store.images.set(parseNormalized('dockerish:latest'), put.digest, MediaType.dockerManifest);
  return root;
}

async function context(): Promise<string> {
  const dir = tempDir('media-ctx-');
  await fs.writeFile(join(dir, 'Dockerfile'), 'FROM dockerish\nRUN echo hi > /hello\nCMD ["cat", "/hello"]\n');
  return dir;
}

async function ok(root: string, args: string[]) {
  const r = await tsbuild(root, args);
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

/** The manifest an OCI layout tar's index.json names, and the first bytes of each layer blob. */
async function archiveManifest(file: string): Promise<{ manifest: ImageManifest; heads: string[]; indexType: string | undefined }> {
  const dir = tempDir('unpacked-');
  execFileSync('tar', ['-xf', file, '-C', dir]);
  const index = JSON.parse(await fs.readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  const blob = (d: string) => join(dir, 'blobs', 'sha256', d.slice(7));
  const manifest = JSON.parse(await fs.readFile(blob(index.manifests[0]!.digest), 'utf8')) as ImageManifest;
  const heads: string[] = [];
  for (const l of manifest.layers) heads.push((await fs.readFile(blob(l.digest))).subarray(0, 4).toString('hex'));
  return { manifest, heads, indexType: index.manifests[0]!.mediaType };
}

const GZIP = /^1f8b/;
const ZSTD = /^28b52ffd/;

test.serial('the built OCI manifest renames a docker-typed base layer to the OCI type', async (t) => {
  const root = await storeWithDockerBase();
  await ok(root, ['build', '-q', '-t', 'renamed:v1', await context()]);
  const inspected = JSON.parse((await ok(root, ['inspect', 'renamed:v1'])).stdout) as { Manifest: ImageManifest };
  t.is(inspected.Manifest.mediaType, MediaType.ociManifest);
  t.is(inspected.Manifest.config.mediaType, MediaType.ociConfig);
  t.deepEqual(
    inspected.Manifest.layers.map((l) => l.mediaType),
    [MediaType.ociLayerGzip, MediaType.ociLayer],
  );
});

test.serial('-o type=oci: gzip layers by default; compression=zstd|uncompressed, compression-level and force-compression', async (t) => {
  const root = await storeWithDockerBase();
  const ctx = await context();
  const out = tempDir('media-out-');
  const file = (n: string) => join(out, `${n}.tar`);
  await ok(root, [
    'build',
    '-q',
    '-t',
    'media:v1',
    '-o',
    `type=oci,dest=${file('default')}`,
    '-o',
    `type=oci,dest=${file('zstd')},compression=zstd,compression-level=5`,
    '-o',
    `type=oci,dest=${file('forced')},compression=zstd,force-compression=true`,
    '-o',
    `type=oci,dest=${file('plain')},compression=uncompressed`,
    '-o',
    `type=oci,dest=${file('fast')},compression=gzip,compression-level=1`,
    ctx,
  ]);
  const def = await archiveManifest(file('default'));
  t.is(def.manifest.mediaType, MediaType.ociManifest);
  t.deepEqual(
    def.manifest.layers.map((l) => l.mediaType),
    [MediaType.ociLayerGzip, MediaType.ociLayerGzip],
  );
  t.true(def.heads.every((h) => GZIP.test(h)));
  const zstd = await archiveManifest(file('zstd'));
  t.deepEqual(
    zstd.manifest.layers.map((l) => l.mediaType),
    [MediaType.ociLayerGzip, MediaType.ociLayerZstd],
    'the base layer keeps its gzip without force-compression, as in BuildKit',
  );
  t.true(ZSTD.test(zstd.heads[1]!));
  const forced = await archiveManifest(file('forced'));
  t.deepEqual(
    forced.manifest.layers.map((l) => l.mediaType),
    [MediaType.ociLayerZstd, MediaType.ociLayerZstd],
  );
  t.true(forced.heads.every((h) => ZSTD.test(h)));
  const plain = await archiveManifest(file('plain'));
  t.deepEqual(
    plain.manifest.layers.map((l) => l.mediaType),
    [MediaType.ociLayerGzip, MediaType.ociLayer],
  );
  const fast = await archiveManifest(file('fast'));
  t.true(GZIP.test(fast.heads[1]!));
  t.not(fast.manifest.layers[1]!.digest, def.manifest.layers[1]!.digest, 'level 1 gives other bytes than the default 6');
  for (const n of ['default', 'zstd', 'forced', 'plain']) {
    const r = await run('skopeo', ['inspect', `oci-archive:${file(n)}`]);
    t.is(r.code, 0, `${n}: ${r.stderr}`);
  }
});

test.serial('-o type=docker: docker media types throughout, gzip layers, and docker loads and runs it', async (t) => {
  const root = await storeWithDockerBase();
  const file = join(tempDir('media-docker-'), 'image.tar');
  await ok(root, ['build', '-q', '-t', 'tsbuild-media-docker:v1', '-o', `type=docker,dest=${file}`, await context()]);
  const { manifest, heads, indexType } = await archiveManifest(file);
  t.is(indexType, MediaType.dockerManifest);
  t.is(manifest.mediaType, MediaType.dockerManifest);
  t.is(manifest.config.mediaType, MediaType.dockerConfig);
  t.deepEqual(
    manifest.layers.map((l) => l.mediaType),
    [MediaType.dockerLayerGzip, MediaType.dockerLayerGzip],
  );
  t.true(heads.every((h) => GZIP.test(h)));
  await loadBusyboxIntoDocker();
  const loaded = await run(DOCKER, ['load', '-i', file]);
  t.is(loaded.code, 0, loaded.stderr);
  try {
    t.is((await dockerRun('tsbuild-media-docker:v1')).stdout, 'hi\n');
  } finally {
    await removeImages('tsbuild-media-docker:v1');
  }
});

test('unknown output options and values are refused with one line', async (t) => {
  const root = join(tempDir('media-bad-'), 'root');
  const ctx = await context();
  for (const [spec, message] of [
    ['type=oci,dest=x.tar,bogus=1', /unknown option "bogus"/],
    ['type=oci,dest=x.tar,compression=lz4', /compression must be gzip, zstd or uncompressed/],
    ['type=oci,dest=x.tar,compression-level=42', /compression-level/],
    ['type=docker,dest=x.tar,compression=zstd', /zstd.*oci-mediatypes/],
    ['type=registry,dest=x', /type must be oci, docker \(images\), local \(a directory\) or tar \(a tar of the filesystem\), not "registry"/],
  ] as const) {
    const r = await tsbuild(root, ['build', '-o', spec, ctx]);
    t.is(r.code, 2, spec);
    t.regex(r.stderr, message, spec);
    t.is(r.stderr.trim().split('\n').length, 1, spec);
  }
});
