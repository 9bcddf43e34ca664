/**
 * The config defaults docker and BuildKit give every stage: PATH when the base has none (used for `$PATH`
 * expansion and written to the image), and for FROM scratch BuildKit's WorkingDir "/" and the platform.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Descriptor, ImageConfig } from '../oci/index.js';
import { ImageState } from '../builder/image/index.js';
import { resolveImage, Store } from '../store/index.js';
import { testWith } from './helpers/tools.js';
import { run, tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { busyboxRootfsTar } from './helpers/busybox-image.js';
import { buildBoth, DOCKER, dockerRun, loadBusyboxIntoDocker, removeImages, storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc', 'dockerd']);

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const IMPORTED = 'tsbuild-imported-nopath:latest';

let root: string;

/** A base made with `docker import` (its config has no Env at all), in dockerd and loaded into tsbuild's store. */
test.before(async () => {
  await loadBusyboxIntoDocker();
  root = await storeWithBusybox();
  const dir = tempDir('imported-');
  await fs.writeFile(join(dir, 'rootfs.tar'), await busyboxRootfsTar());
  const imported = await run(DOCKER, ['import', join(dir, 'rootfs.tar'), IMPORTED]);
  if (imported.code !== 0) throw new Error(`docker import failed: ${imported.stderr}`);
  const saved = await run(DOCKER, ['save', '-o', join(dir, 'imported.tar'), IMPORTED]);
  if (saved.code !== 0) throw new Error(`docker save failed: ${saved.stderr}`);
  const loaded = await tsbuild(root, ['load', '-i', join(dir, 'imported.tar')]);
  if (loaded.code !== 0) throw new Error(`tsbuild load failed: ${loaded.stderr}`);
});

test.after.always(async () => {
  await removeImages(IMPORTED);
});

async function context(files: Record<string, string | Buffer>): Promise<string> {
  const dir = tempDir('defaults-ctx-');
  for (const [name, body] of Object.entries(files)) await fs.writeFile(join(dir, name), body);
  return dir;
}

/** The image config document tsbuild stored for `ref`. */
async function storedConfig(ref: string): Promise<ImageConfig> {
  const store = await Store.open(root);
  return (await resolveImage(store.blobs, (await store.images.get(ref)).digest)).config;
}

test.serial('a base without PATH: $PATH expands to the default and the image config holds it, as in docker', async (t) => {
  const ctx = await context({
    Dockerfile: `FROM ${IMPORTED}\nENV PATH=/opt/tools/bin:$PATH\nRUN echo "$PATH" > /path.txt\nCMD ["cat", "/path.txt"]\n`,
  });
  const both = await buildBoth(root, ctx, 'nopath-env');
  try {
    t.deepEqual(both.ourConfig.Env, [`PATH=/opt/tools/bin:${DEFAULT_PATH}`]);
    t.deepEqual(both.ourConfig, both.dockerConfig);
    t.deepEqual({ onlyOurs: both.onlyOurs, onlyDocker: both.onlyDocker }, { onlyOurs: [], onlyDocker: [] });
    const r = await dockerRun(both.ours);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `/opt/tools/bin:${DEFAULT_PATH}\n`, 'the image runs its CMD: cat is found on the PATH');
  } finally {
    await removeImages(both.ours, both.theirs);
  }
});

test.serial('a base without PATH and no ENV: the image config still gets the default PATH, as in docker', async (t) => {
  const ctx = await context({ Dockerfile: `FROM ${IMPORTED}\nRUN true\nCMD ["cat", "/etc/passwd"]\n` });
  const both = await buildBoth(root, ctx, 'nopath-noenv');
  try {
    t.deepEqual(both.ourConfig.Env, [`PATH=${DEFAULT_PATH}`]);
    t.deepEqual(both.ourConfig, both.dockerConfig);
    t.is((await dockerRun(both.ours)).code, 0);
  } finally {
    await removeImages(both.ours, both.theirs);
  }
});

test.serial('FROM scratch: PATH as in docker; WorkingDir "/", platform and rootfs type as BuildKit writes them', async (t) => {
  const ctx = await context({
    Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nENV PATH=/opt/tools/bin:$PATH\nCMD ["/bin/busybox", "true"]\n',
    busybox: await fs.readFile('/bin/busybox'),
  });
  const both = await buildBoth(root, ctx, 'scratch-defaults');
  try {
    t.deepEqual(both.ourConfig.Env, [`PATH=/opt/tools/bin:${DEFAULT_PATH}`]);
    // docker's legacy builder leaves WorkingDir empty for FROM scratch; BuildKit writes "/" (we follow BuildKit).
    const { WorkingDir, ...rest } = both.ourConfig;
    t.is(WorkingDir, '/');
    t.is(both.dockerConfig.WorkingDir, undefined);
    t.deepEqual(rest, both.dockerConfig);
    t.like(await storedConfig(both.ours), { architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', rootfs: { type: 'layers' } });
  } finally {
    await removeImages(both.ours, both.theirs);
  }
});

test('a base config without os/architecture takes the build platform; aliases are normalized as BuildKit does', (t) => {
  const layers: Descriptor[] = [];
  const bare = { rootfs: { type: 'layers', diff_ids: [] }, config: { Env: ['PATH=/bin'] } } as unknown as ImageConfig;
  const filled = ImageState.fromBase(bare, layers, { os: 'linux', architecture: 'arm64' });
  t.like(filled.config, { os: 'linux', architecture: 'arm64' });
  t.deepEqual(filled.container.Env, ['PATH=/bin'], 'a base PATH is kept');
  const aliased = ImageState.fromBase({ ...bare, os: 'Linux', architecture: 'x86_64' }, layers);
  t.like(aliased.config, { os: 'linux', architecture: 'amd64' });
  const arm = ImageState.fromBase({ ...bare, os: 'linux', architecture: 'aarch64', variant: 'v8' }, layers);
  t.is(arm.config.architecture, 'arm64');
  t.is(arm.config.variant, undefined);
  t.deepEqual(
    ImageState.fromBase({ ...bare, config: { Env: ['A=1'] } }, layers).container.Env,
    ['A=1', `PATH=${DEFAULT_PATH}`],
    'PATH is appended, as BuildKit does',
  );
});
