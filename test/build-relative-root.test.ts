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
