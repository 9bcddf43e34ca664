/**
 * What a build leaves behind: the tagged image, --output OCI layouts (dir and tar) and docker archives,
 * save/load, the build cache, --target, and reproducible digests with SOURCE_DATE_EPOCH.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { projectRoot, run, tsbuild, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { DOCKER, dockerRun, loadBusyboxIntoDocker, removeImages, storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc', 'skopeo', 'dockerd']);
const fixture = (name: string) => join(projectRoot, 'fixtures', name);

async function ok(root: string, args: string[], env: Record<string, string> = {}) {
  const r = await tsbuild(root, args, { env: { ...process.env, ...env } });
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

async function manifestDigest(root: string, ref: string): Promise<string> {
  return (JSON.parse((await ok(root, ['inspect', ref])).stdout) as { Digest: string }).Digest;
}

/** A copy of a fixture in a temp dir, so a test may change files. */
async function copyFixture(name: string): Promise<string> {
  const dir = join(tempDir('ctx-'), name);
  await fs.cp(fixture(name), dir, { recursive: true });
  return dir;
}

test('--output type=oci (dir and tar) and type=docker write layouts skopeo reads and archives docker loads', async (t) => {
  const root = await storeWithBusybox();
  const out = tempDir('outputs-');
  const ociDir = join(out, 'layout');
  const ociTar = join(out, 'image-oci.tar');
  const dockerTar = join(out, 'image-docker.tar');
  await ok(root, [
    'build',
    '--progress',
    'plain',
    '-t',
    'outputs:v1',
    '--output',
    `type=oci,dest=${ociDir}`,
    '--output',
    `type=oci,dest=${ociTar}`,
    '--output',
    `type=docker,dest=${dockerTar}`,
    fixture('basic'),
  ]);
  const fromDir = await run('skopeo', ['inspect', `oci:${ociDir}:v1`]);
  t.is(fromDir.code, 0, fromDir.stderr);
  t.is((JSON.parse(fromDir.stdout) as { Layers: string[] }).Layers.length, 5);
  const fromTar = await run('skopeo', ['inspect', `oci-archive:${ociTar}:v1`]);
  t.is(fromTar.code, 0, fromTar.stderr);
  // the layout's layers are gzip (the store keeps them uncompressed): another manifest of the same config
  const raw = await run('skopeo', ['inspect', '--raw', `oci-archive:${ociTar}:v1`]);
  t.is(
    (JSON.parse(raw.stdout) as { config: { digest: string } }).config.digest,
    (JSON.parse((await ok(root, ['inspect', 'outputs:v1'])).stdout) as { Id: string }).Id,
  );
  await loadBusyboxIntoDocker();
  const loaded = await run(DOCKER, ['load', '-i', dockerTar]);
  t.is(loaded.code, 0, loaded.stderr);
  t.regex(loaded.stdout, /Loaded image: outputs:v1/);
  try {
    t.is((await dockerRun('outputs:v1')).stdout, 'hello world\n');
  } finally {
    await removeImages('outputs:v1');
  }
});

test('save and load round-trip between stores, and load reads what docker save wrote', async (t) => {
  const root = await storeWithBusybox();
  await ok(root, ['build', '-q', '-t', 'roundtrip:v1', fixture('basic')]);
  const archive = join(tempDir('save-'), 'roundtrip.tar');
  await ok(root, ['save', '-o', archive, 'roundtrip:v1']);
  const other = join(tempDir('other-root-'), 'root');
  const loaded = await ok(other, ['load', '-i', archive]);
  t.regex(loaded.stdout, /Loaded image: roundtrip:v1/);
  t.is(await manifestDigest(other, 'roundtrip:v1'), await manifestDigest(root, 'roundtrip:v1'));
  // An OCI layout tar loads too, named by its annotations.
  const ociTar = join(tempDir('oci-load-'), 'layout.tar');
  await ok(root, ['save', '--format', 'oci', '-o', ociTar, 'roundtrip:v1']);
  const third = join(tempDir('third-root-'), 'root');
  t.regex((await ok(third, ['load', '-i', ociTar])).stdout, /Loaded image: docker.io\/library\/roundtrip:v1/);
  t.is(await manifestDigest(third, 'roundtrip:v1'), await manifestDigest(root, 'roundtrip:v1'));

  await loadBusyboxIntoDocker();
  const fromDocker = join(tempDir('docker-save-'), 'busybox.tar');
  const saved = await run(DOCKER, ['save', '-o', fromDocker, 'busybox:latest']);
  t.is(saved.code, 0, saved.stderr);
  const fresh = join(tempDir('fresh-root-'), 'root');
  await ok(fresh, ['load', '-i', fromDocker]);
  // The loaded base is usable for a build.
  await ok(fresh, ['build', '-q', '-t', 'on-docker-base:v1', fixture('basic')]);
  const images = await ok(fresh, ['images', '--format', 'json']);
  t.regex(images.stdout, /"repository":"busybox"/);
  t.regex(images.stdout, /"repository":"on-docker-base"/);
});

test('the build cache: a second build reuses every layer; a changed context file rebuilds from its COPY on', async (t) => {
  const root = await storeWithBusybox();
  const ctx = await copyFixture('from-arg');
  const first = await ok(root, ['build', '--progress', 'plain', '-t', 'cached:v1', ctx]);
  t.notRegex(first.stderr, /CACHED/);
  const second = await ok(root, ['build', '--progress', 'plain', '-t', 'cached:v2', ctx]);
  t.is((second.stderr.match(/CACHED/g) ?? []).length, 2, second.stderr);
  t.is(await manifestDigest(root, 'cached:v2'), await manifestDigest(root, 'cached:v1'));
  await fs.writeFile(join(ctx, 'payload.txt'), 'payload v2\n');
  const third = await ok(root, ['build', '--progress', 'plain', '-t', 'cached:v3', ctx]);
  t.notRegex(third.stderr, /CACHED/);
  const noCache = await ok(root, ['build', '--progress', 'plain', '--no-cache', '-t', 'cached:v4', ctx]);
  t.notRegex(noCache.stderr, /CACHED/);
});

test('two --no-cache builds with SOURCE_DATE_EPOCH give the same digest', async (t) => {
  const root = await storeWithBusybox();
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  await ok(root, ['build', '-q', '--no-cache', '-t', 'repro:a', fixture('basic')], env);
  await ok(root, ['build', '-q', '--no-cache', '-t', 'repro:b', fixture('basic')], env);
  const a = await manifestDigest(root, 'repro:a');
  t.is(await manifestDigest(root, 'repro:b'), a);
  const inspect = JSON.parse((await ok(root, ['inspect', 'repro:a'])).stdout) as {
    Created: string;
    History: { created: string; created_by: string; empty_layer?: boolean }[];
    Layers: unknown[];
  };
  t.is(inspect.Created, '2023-11-14T22:13:20Z');
  t.true(inspect.History.slice(1).every((h) => h.created === '2023-11-14T22:13:20Z'));
  // History: one entry per instruction; metadata-only steps are marked empty_layer.
  t.is(inspect.History.filter((h) => !h.empty_layer).length, inspect.Layers.length);
  t.true(inspect.History.find((h) => h.created_by.startsWith('ENV '))!.empty_layer);
  t.true(inspect.History.find((h) => h.created_by.startsWith('CMD '))!.empty_layer);
  t.falsy(inspect.History.find((h) => h.created_by.startsWith('COPY '))!.empty_layer);
});

test('--target builds the named stage and only what it needs; --build-arg reaches ARGs', async (t) => {
  const root = await storeWithBusybox();
  const r = await ok(root, ['build', '--progress', 'plain', '--target', 'builder', '--build-arg', 'VERSION=9.9', '-t', 'target:v1', fixture('multistage')]);
  t.notRegex(r.stderr, /\[(other|unused|tiny) /);
  const out = tempDir('target-');
  await ok(root, ['save', '-o', join(out, 'x.tar'), 'target:v1']);
  await loadBusyboxIntoDocker();
  await run(DOCKER, ['load', '-i', join(out, 'x.tar')]);
  try {
    t.is((await dockerRun('target:v1', ['cat', '/out/artifact'])).stdout, 'built 9.9\n');
  } finally {
    await removeImages('target:v1');
  }
});

test('RUN uses the host network by default and only loopback with --network none; other platforms are refused', async (t) => {
  const root = await storeWithBusybox();
  await ok(root, ['build', '-q', '--network', 'none', '-t', 'net:none', fixture('network')]);
  await ok(root, ['build', '-q', '--platform', 'linux/amd64', '-t', 'net:host', fixture('network')]);
  const archive = join(tempDir('net-'), 'net.tar');
  await ok(root, ['save', '-o', archive, 'net:none', 'net:host']);
  await loadBusyboxIntoDocker();
  await run(DOCKER, ['load', '-i', archive]);
  try {
    t.is((await dockerRun('net:none', ['cat', '/interfaces'])).stdout, 'lo ');
    const host = (await dockerRun('net:host', ['cat', '/interfaces'])).stdout.trim().split(' ');
    t.true(host.length > 1 && host.includes('lo'), host.join(' '));
  } finally {
    await removeImages('net:none', 'net:host');
  }
  const arm = await tsbuild(root, ['build', '-q', '--platform', 'linux/arm64', '-t', 'x', fixture('network')]);
  t.is(arm.code, 1);
  t.regex(arm.stderr, /cannot run on this/);
});

test('`tsbuild -t REF CONTEXT` is a build; on a terminal it shows the live display, plain prints BuildKit-style lines', async (t) => {
  const root = await storeWithBusybox();
  const tty = await run('script', ['-qec', `${process.execPath} ${tsbuildBin} --root ${root} -t live:v1 ${fixture('forms')}`, '/dev/null']);
  t.is(tty.code, 0, tty.stdout);
  t.regex(tty.stdout, /\[\+\] Building [\d.]+s \(\d+\/\d+\) FINISHED/);
  t.regex(tty.stdout, /=> \[\d+\/15\] RUN mkdir -p \/opt\/bin/);
  const plain = await ok(root, ['build', '--progress', 'plain', '--no-cache', '-t', 'live:v2', fixture('forms')]);
  // BuildKit's line: the expanded base name and the digest it resolved to, not FROM ${BASE}:${TAG}
  t.regex(plain.stderr, /^#\d+ \[1\/15\] FROM docker\.io\/library\/busybox:latest@sha256:[a-f0-9]{64}$/m);
  t.regex(plain.stderr, /^#\d+ DONE \d+\.\ds$/m);
});

test('independent stages run at the same time', async (t) => {
  const root = await storeWithBusybox();
  const r = await ok(root, ['build', '--progress', 'plain', '-t', 'parallel:v1', fixture('parallel')]);
  const lines = r.stderr.split('\n');
  const started = (stage: string) => lines.findIndex((l) => new RegExp(`^#\\d+ \\[${stage} 2/2\\] RUN`).test(l));
  const idOf = (i: number) => lines[i]!.split(' ')[0];
  const done = (i: number) => lines.findIndex((l) => l.startsWith(`${idOf(i)} DONE`));
  const left = started('left');
  const right = started('right');
  t.true(left >= 0 && right >= 0, r.stderr);
  // Both RUNs (each sleeping 2 s) started before either finished.
  t.true(Math.max(left, right) < Math.min(done(left), done(right)), r.stderr);
});

test("-o type=local / DIR and type=tar write the final stage's filesystem as buildx does (what docker export of the image holds); --provenance=false and --sbom=false are accepted", async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  const ctx = tempDir('fs-out-ctx-');
  await fs.writeFile(
    join(ctx, 'Dockerfile'),
    'FROM busybox AS build\nRUN echo built > /artifact\nFROM busybox\nCOPY --from=build /artifact /out/artifact\nRUN mkdir -p /d && echo hi > /d/f && ln -s f /d/l && chown 7:8 /d/f && rm /bin/vi\n',
  );
  const out = tempDir('fs-out-');
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const built = await ok(root, ['build', '-q', '-t', 'tsbuild-fsout:v1', '--provenance=false', '--sbom=false', '-o', join(out, 'plain'), ctx], env);
  await ok(root, ['build', '-q', '-o', `type=local,dest=${join(out, 'local')}`, '-o', `type=tar,dest=${join(out, 'fs.tar')}`, ctx], env);
  const piped = await run('sh', ['-c', `"${process.execPath}" "${tsbuildBin}" --root "${root}" build -q -o - "${ctx}" > "${join(out, 'piped.tar')}"`], {
    env: { ...process.env, ...env },
  });
  t.is(piped.code, 0, piped.stderr);
  t.regex(built.stdout, /^sha256:/);
  for (const dir of ['plain', 'local']) {
    t.is(await fs.readFile(join(out, dir, 'out', 'artifact'), 'utf8'), 'built\n');
    t.is(await fs.readlink(join(out, dir, 'd', 'l')), 'f');
    const st = await fs.stat(join(out, dir, 'd', 'f'));
    t.deepEqual([st.uid, st.gid], [7, 8]);
    await t.throwsAsync(fs.lstat(join(out, dir, 'bin', 'vi')), { code: 'ENOENT' }, 'a file a step removed is not there');
  }
  const tarNames = (await run('tar', ['-tf', join(out, 'fs.tar')])).stdout.split('\n').filter(Boolean);
  t.true(tarNames.includes('out/artifact') && tarNames.includes('d/l') && !tarNames.includes('bin/vi'));
  t.deepEqual(await fs.readFile(join(out, 'piped.tar')), await fs.readFile(join(out, 'fs.tar')), 'a tar on standard output, and nothing else there');
  // the same paths docker export gives for the image (less what docker adds for a container)
  const archive = join(out, 'image.tar');
  await ok(root, ['save', '-o', archive, 'tsbuild-fsout:v1']);
  t.is((await run(DOCKER, ['load', '-i', archive])).code, 0);
  try {
    const id = (await run(DOCKER, ['create', '--network', 'none', 'tsbuild-fsout:v1', 'true'])).stdout.trim();
    const exported = await run('sh', ['-c', `${DOCKER} export ${id} | tar -t`]);
    await run(DOCKER, ['rm', id]);
    const docker = exported.stdout
      .split('\n')
      .filter((n) => n && !/^(\.dockerenv|dev\/|proc\/|sys\/|etc\/(hosts|hostname|resolv\.conf|mtab))/.test(n))
      .map((n) => n.replace(/\/$/, ''))
      .sort();
    const ours = tarNames
      .map((n) => n.replace(/\/$/, ''))
      .filter((n) => !/^(dev|proc|sys)$/.test(n) && !/^etc\/(hosts|hostname|resolv\.conf|mtab)$/.test(n))
      .sort();
    t.deepEqual(ours, docker);
  } finally {
    await removeImages('tsbuild-fsout:v1');
  }
  for (const [flag, message] of [
    ['--provenance=mode=max', '--provenance=mode=max is not supported: tsbuild makes no attestations'],
    ['--sbom=true', '--sbom=true is not supported: tsbuild makes no attestations'],
  ]) {
    const r = await tsbuild(root, ['build', flag!, ctx]);
    t.is(r.code, 2);
    t.true(r.stderr.startsWith(`tsbuild: ${message}`) && r.stderr.split('\n').length === 2, r.stderr);
  }
  const bad = await tsbuild(root, ['build', '-o', 'type=foo,dest=x', ctx]);
  t.regex(bad.stderr, /type must be oci, docker \(images\), local \(a directory\) or tar/);
});
