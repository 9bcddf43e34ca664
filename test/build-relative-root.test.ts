/** A relative state directory (`--root DIR`, TSBUILD_ROOT) is taken against the working directory once, so a RUN's overlay mount finds its layers. */
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { storeWithBusybox } from './helpers/build-compare.js';
import { run, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

const test = testWith(['runc']);

test('a relative --root or TSBUILD_ROOT builds RUN steps and keeps its state there', async (t) => {
  const root = await storeWithBusybox();
  const ctx = tempDir('relative-root-ctx-');
  await fs.writeFile(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN echo hello > /greeting\nRUN cat /greeting\n');
  const cwd = dirname(root);
  const relative = basename(root);

  const flag = await run(process.execPath, [tsbuildBin, '--root', relative, 'build', '--progress', 'plain', '-t', 'rel:v1', ctx], { cwd });
  t.is(flag.code, 0, flag.stderr);
  t.regex(flag.stderr, /hello/);

  const env = await run(process.execPath, [tsbuildBin, 'build', '--progress', 'plain', '--no-cache', '-t', 'rel:v2', ctx], {
    cwd,
    env: { ...process.env, TSBUILD_ROOT: `./${relative}` },
  });
  t.is(env.code, 0, env.stderr);
  t.regex(env.stderr, /hello/);

  const images = await run(process.execPath, [tsbuildBin, '--root', root, 'images'], {});
  t.regex(images.stdout, /rel\s+v1/);
  t.regex(images.stdout, /rel\s+v2/);
});

test("a --root inside the build context is left out of it, as if .dockerignore'd, whatever the .dockerignore says: COPY . and bind mounts never see it, rebuilds stay cached", async (t) => {
  const ctx = tempDir('root-in-ctx-');
  // the fixture store at CONTEXT/.tsb, also through a symlinked path
  const made = await storeWithBusybox();
  await fs.rename(made, join(ctx, '.tsb'));
  await fs.writeFile(join(ctx, 'a.txt'), 'a\n');
  await fs.writeFile(join(ctx, '.dockerignore'), '!.tsb\n');
  await fs.writeFile(
    join(ctx, 'Dockerfile'),
    'FROM busybox:latest\nCOPY . /app\nRUN --mount=type=bind,target=/ctx ls -A /ctx/.tsb > /ctx-seen\nRUN ls -a /app > /app-seen && echo made > /x\n',
  );
  const tsb = (args: string[]) => run(process.execPath, [tsbuildBin, '--root', '.tsb', ...args], { cwd: ctx });
  const first = await tsb(['build', '--progress', 'plain', '-t', 'inside:v1', '-o', join(ctx, '..', `${basename(ctx)}-out`), '.']);
  t.is(first.code, 0, first.stderr.slice(-2000));
  const out = join(ctx, '..', `${basename(ctx)}-out`);
  t.deepEqual((await fs.readFile(join(out, 'app-seen'), 'utf8')).split('\n').filter(Boolean), ['.', '..', '.dockerignore', 'Dockerfile', 'a.txt']);
  t.is(await fs.readFile(join(out, 'ctx-seen'), 'utf8'), '', 'a bind mount of the context shows the state dir empty');
  // the store changed under the context by that build: nothing of it counts as a change
  const again = await tsb(['build', '--progress', 'plain', '-t', 'inside:v1', '.']);
  t.is(again.code, 0, again.stderr);
  t.is((again.stderr.match(/CACHED/g) ?? []).length, 3, again.stderr);
});
