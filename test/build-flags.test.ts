/**
 * Build flags docker and buildx users type: --iidfile, --metadata-file (buildx's keys), --label (compared
 * with docker), RUN --mount=type=secret,env=NAME (BuildKit), and tsbuild's own one-line error for an
 * unknown flag; a lowercase dockerfile and a missing context as docker handles them.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { run, tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { buildBoth, DOCKER, dockerRun, loadBusyboxIntoDocker, removeImages, storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc', 'dockerd']);

async function context(dockerfile: string): Promise<string> {
  const dir = tempDir('flags-ctx-');
  await fs.writeFile(join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

test("--iidfile and --metadata-file write the image id and buildx's result keys", async (t) => {
  const root = await storeWithBusybox();
  const out = tempDir('flags-out-');
  const r = await tsbuild(root, [
    'build',
    '-q',
    '-t',
    'meta:v1',
    '-t',
    'registry.example/team/meta:v2',
    '--iidfile',
    join(out, 'iid'),
    '--metadata-file',
    join(out, 'meta.json'),
    await context('FROM busybox\nRUN echo x > /x\n'),
  ]);
  t.is(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  t.is(await fs.readFile(join(out, 'iid'), 'utf8'), id, 'docker writes the id without a newline');
  const meta = JSON.parse(await fs.readFile(join(out, 'meta.json'), 'utf8')) as Record<string, unknown>;
  const inspected = JSON.parse((await tsbuild(root, ['inspect', 'meta:v1'])).stdout) as { Digest: string; MediaType: string };
  t.is(meta['containerimage.config.digest'], id);
  t.is(meta['containerimage.digest'], inspected.Digest);
  t.like(meta['containerimage.descriptor'], { digest: inspected.Digest, mediaType: inspected.MediaType });
  t.is(meta['image.name'], 'docker.io/library/meta:v1,registry.example/team/meta:v2');
});

test.serial('--label sets labels on the image, as docker does', async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  const ctx = await context('FROM busybox\nLABEL from.file=yes\nRUN true\n');
  const both = await buildBoth(root, ctx, 'labels', ['--label', 'org.example.team=builders', '--label', 'note=two words', '--label', 'from.file=overridden']);
  try {
    t.deepEqual(both.ourConfig.Labels, { 'from.file': 'overridden', 'org.example.team': 'builders', note: 'two words' });
    t.deepEqual(both.ourConfig, both.dockerConfig);
  } finally {
    await removeImages(both.ours, both.theirs);
  }
});

test.serial('RUN --mount=type=secret,env=NAME exposes the secret to that RUN only, as an environment variable and not as a file', async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  const secret = join(tempDir('flags-secret-'), 'token');
  await fs.writeFile(secret, 's3cr3t');
  const ctx = await context(
    [
      'FROM busybox',
      'RUN --mount=type=secret,id=tok,env=TOKEN echo "env:$TOKEN" > /seen && (ls /run/secrets 2>&1 || true) > /files',
      'RUN --mount=type=secret,id=tok,env=ALSO,target=/etc/tok echo "$ALSO $(cat /etc/tok)" > /both',
      'RUN echo "later:${TOKEN:-unset}" > /later',
      'CMD ["cat", "/seen", "/files", "/both", "/later"]',
      '',
    ].join('\n'),
  );
  const r = await tsbuild(root, ['build', '-q', '-t', 'tsbuild-secret-env:v1', '--secret', `id=tok,src=${secret}`, ctx]);
  t.is(r.code, 0, r.stderr);
  const inspected = JSON.parse((await tsbuild(root, ['inspect', 'tsbuild-secret-env:v1'])).stdout) as { Config: { Env?: string[] } };
  t.false(JSON.stringify(inspected.Config).includes('s3cr3t'), 'the secret is not in the config');
  const archive = join(tempDir('flags-archive-'), 'image.tar');
  t.is((await tsbuild(root, ['save', '-o', archive, 'tsbuild-secret-env:v1'])).code, 0);
  t.is((await run(DOCKER, ['load', '-i', archive])).code, 0);
  try {
    const shown = await dockerRun('tsbuild-secret-env:v1');
    t.is(shown.stdout, 'env:s3cr3t\nls: /run/secrets: No such file or directory\ns3cr3t s3cr3t\nlater:unset\n');
  } finally {
    await removeImages('tsbuild-secret-env:v1');
  }
});

test("an unknown flag gets tsbuild's one-line error", async (t) => {
  const r = await tsbuild(tempDir('flags-root-'), ['build', '--no-such-flag', '.']);
  t.is(r.code, 2);
  t.is(r.stderr, `tsbuild: unknown flag --no-such-flag for "tsbuild build" (see 'tsbuild build --help')\n`);
});

test.serial(
  'a context with a lowercase dockerfile builds from it, as docker does; a missing context or a file as context is one line, as docker says it',
  async (t) => {
    await loadBusyboxIntoDocker();
    const root = await storeWithBusybox();
    const dir = tempDir('flags-lower-');
    await fs.writeFile(join(dir, 'dockerfile'), 'FROM busybox\nRUN echo lower > /which\nCMD ["cat", "/which"]\n');
    const built = await tsbuild(root, ['build', '-q', '-t', 'tsbuild-lower:v1', dir]);
    t.is(built.code, 0, built.stderr);
    const check = await tsbuild(root, ['build', '--check', dir]);
    t.is(check.code, 0, check.stderr);
    // through standard input too (the daemon looks for it in a tar context as well)
    const tar = await run('tar', ['-C', dir, '-cf', join(dir, '..', 'lower.tar'), 'dockerfile']);
    t.is(tar.code, 0);
    const piped = await tsbuild(root, ['build', '-q', '-'], { input: await fs.readFile(join(dir, '..', 'lower.tar')) });
    t.is(piped.code, 0, piped.stderr);
    t.is(piped.stdout, built.stdout, 'the same image');
    // both present: Dockerfile wins
    await fs.writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo upper > /which\n');
    t.not((await tsbuild(root, ['build', '-q', dir])).stdout, built.stdout);
    const cwd = tempDir('flags-cwd-');
    await fs.writeFile(join(cwd, 'afile'), 'x');
    for (const [context, expected] of [
      ['nodir', 'unable to prepare context: path "nodir" not found'],
      ['afile', `unable to prepare context: context must be a directory: ${join(cwd, 'afile')}`],
    ] as const) {
      const ours = await tsbuild(root, ['build', context], { cwd });
      t.is(ours.code, 1);
      t.is(ours.stderr, `tsbuild: ${expected}\n`);
      const docker = await run(DOCKER, ['build', context], { cwd, env: { ...process.env, DOCKER_BUILDKIT: '0' } });
      t.true(docker.stderr.includes(expected), docker.stderr);
    }
  },
);
