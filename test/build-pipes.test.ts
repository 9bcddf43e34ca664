/**
 * The pipes docker users type: a context tar (or just a Dockerfile) on stdin, `-f -`, `-o type=docker|oci,dest=-`
 * to stdout, `tsbuild save REF | docker load`, `docker save REF | tsbuild load`, and URL contexts refused
 * with a clear sentence instead of a path error.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { run, tsbuild, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { DOCKER, dockerRun, loadBusyboxIntoDocker, removeImages, storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc', 'dockerd', 'skopeo']);

async function context(): Promise<string> {
  const dir = tempDir('pipes-ctx-');
  await fs.writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY msg.txt /msg.txt\nCMD ["cat", "/msg.txt"]\n');
  await fs.writeFile(join(dir, 'msg.txt'), 'through a pipe\n');
  return dir;
}

/** `tsbuild ARGS | CMD` through sh, so the bytes go through a real pipe. */
function piped(root: string, args: string[], then: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return run('bash', ['-c', `set -o pipefail; ${q(process.execPath)} ${q(tsbuildBin)} --root ${q(root)} ${args.map(q).join(' ')} | ${then}`]);
}

test('a context tar on stdin (plain and gzip) is the build context; a Dockerfile alone on stdin builds with an empty context', async (t) => {
  const root = await storeWithBusybox();
  const ctx = await context();
  const tarball = execFileSync('tar', ['-C', ctx, '-cf', '-', '.']);
  const a = await tsbuild(root, ['build', '-q', '-t', 'stdin:tar', '-'], { input: tarball });
  t.is(a.code, 0, a.stderr);
  const gz = execFileSync('gzip', ['-c'], { input: tarball });
  const b = await tsbuild(root, ['build', '-q', '-t', 'stdin:gz', '-'], { input: gz });
  t.is(b.code, 0, b.stderr);
  t.is(a.stdout, b.stdout, 'the same context gives the same image');
  const onDisk = await tsbuild(root, ['build', '-q', ctx]);
  t.is(onDisk.stdout, a.stdout, 'and the same image as the directory');
  // -f names a Dockerfile inside the tar
  await fs.rename(join(ctx, 'Dockerfile'), join(ctx, 'Other.dockerfile'));
  const named = await tsbuild(root, ['build', '-q', '-f', 'Other.dockerfile', '-'], { input: execFileSync('tar', ['-C', ctx, '-cf', '-', '.']) });
  t.is(named.stdout, a.stdout, named.stderr);
  const onlyDockerfile = await tsbuild(root, ['build', '-q', '-t', 'stdin:df', '-'], { input: 'FROM busybox\nRUN echo from-stdin > /x\n' });
  t.is(onlyDockerfile.code, 0, onlyDockerfile.stderr);
  const copying = await tsbuild(root, ['build', '-q', '-'], { input: 'FROM busybox\nCOPY msg.txt /\n' });
  t.is(copying.code, 1);
  t.regex(copying.stderr, /msg\.txt/);
  const both = await tsbuild(root, ['build', '-q', '-f', '-', '-'], { input: tarball });
  t.is(both.code, 2);
  t.regex(both.stderr, /^tsbuild: the context and the Dockerfile cannot both come from standard input\n$/);
});

test('-f - reads the Dockerfile from stdin with a directory context', async (t) => {
  const root = await storeWithBusybox();
  const ctx = await context();
  const r = await tsbuild(root, ['build', '-q', '-f', '-', ctx], { input: 'FROM busybox\nCOPY msg.txt /from-f-dash\n' });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^sha256:[a-f0-9]{64}\n$/);
});

test.serial('-o type=docker,dest=- | docker load and -o type=oci,dest=- write the archive to stdout (no file named -)', async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  const ctx = await context();
  const cwd = tempDir('pipes-cwd-');
  try {
    const loaded = await run('sh', [
      '-c',
      `cd ${cwd} && ${process.execPath} ${tsbuildBin} --root ${root} build -q -t tsbuild-pipe:docker -o type=docker,dest=- ${ctx} | ${DOCKER} load`,
    ]);
    t.is(loaded.code, 0, loaded.stderr);
    t.regex(loaded.stdout, /Loaded image: tsbuild-pipe:docker/);
    t.is((await dockerRun('tsbuild-pipe:docker')).stdout, 'through a pipe\n');
    const ociFile = join(tempDir('pipes-oci-'), 'out.tar');
    const oci = await piped(root, ['build', '-q', '-t', 'tsbuild-pipe:oci', '-o', 'type=oci,dest=-', ctx], `cat > ${ociFile}`);
    t.is(oci.code, 0, oci.stderr);
    const inspected = await run('skopeo', ['inspect', `oci-archive:${ociFile}`]);
    t.is(inspected.code, 0, inspected.stderr);
    t.deepEqual(await fs.readdir(cwd), [], 'no file named - was written');
    const bad = await tsbuild(root, ['build', '-q', '-o', 'type=oci,dest=-,tar=false', ctx]);
    t.is(bad.code, 2);
    t.regex(bad.stderr, /dest=- \(standard output\) takes a tar/);
  } finally {
    await removeImages('tsbuild-pipe:docker');
  }
});

test.serial('tsbuild save REF | docker load, and docker save REF | tsbuild load', async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  const ctx = await context();
  t.is((await tsbuild(root, ['build', '-q', '-t', 'tsbuild-save-pipe:v1', ctx])).code, 0);
  try {
    const saved = await piped(root, ['save', 'tsbuild-save-pipe:v1'], `${DOCKER} load`);
    t.is(saved.code, 0, saved.stderr);
    t.regex(saved.stdout, /Loaded image: tsbuild-save-pipe:v1/);
    t.is((await dockerRun('tsbuild-save-pipe:v1')).stdout, 'through a pipe\n');
    const fresh = join(tempDir('pipes-load-'), 'root');
    const back = await run('sh', ['-c', `${DOCKER} save tsbuild-save-pipe:v1 | ${process.execPath} ${tsbuildBin} --root ${fresh} load`]);
    t.is(back.code, 0, back.stderr);
    t.regex(back.stdout, /Loaded image: .*tsbuild-save-pipe:v1/);
    const ids = await tsbuild(fresh, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    t.is(ids.stdout, 'tsbuild-save-pipe:v1\n');
    const alsoDash = await run('sh', ['-c', `${DOCKER} save busybox:latest | ${process.execPath} ${tsbuildBin} --root ${fresh} load -i -`]);
    t.is(alsoDash.code, 0, alsoDash.stderr);
    // compressed, as docker load takes it
    const gz = await run('bash', [
      '-c',
      `set -o pipefail; ${DOCKER} save tsbuild-save-pipe:v1 | gzip | ${process.execPath} ${tsbuildBin} --root ${join(tempDir('pipes-gz-'), 'root')} load`,
    ]);
    t.is(gz.code, 0, gz.stderr);
    t.regex(gz.stdout, /Loaded image: .*tsbuild-save-pipe:v1/);
  } finally {
    await removeImages('tsbuild-save-pipe:v1');
  }
});

test('URL and git contexts get a clear "not supported", not a path error', async (t) => {
  const root = tempDir('pipes-url-root-');
  for (const url of [
    'https://github.com/docker/buildx.git',
    'http://example.com/context.tar.gz',
    'git@github.com:docker/buildx.git',
    'github.com/docker/buildx',
    'git://example.com/repo.git',
  ]) {
    const r = await tsbuild(root, ['build', '-q', url]);
    t.is(r.code, 2, url);
    t.is(
      r.stderr,
      `tsbuild: build context ${url}: URL and git contexts are not supported by tsbuild; clone or download it and pass the directory (or pipe a tar: tsbuild build -t REF - < context.tar)\n`,
    );
  }
});
