/**
 * .dockerignore re-includes below an excluded directory, with moby/patternmatcher's semantics as BuildKit's
 * context walker (fsutil) applies them: the excluded directory is still walked, re-included files come
 * through with the directories leading to them, and COPY of the excluded directory gives what is left.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { BuildContext, DockerignoreMatcher } from '../builder/context/index.js';
import { testWith } from './helpers/tools.js';
import { tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { buildBoth, loadBusyboxIntoDocker, removeImages, storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc', 'dockerd']);

/** A context shaped like a .git dir whose HEAD files are re-included. */
async function gitLikeContext(dockerfile: string): Promise<string> {
  const dir = tempDir('ignore-ctx-');
  await fs.mkdir(join(dir, 'meta', 'logs', 'refs'), { recursive: true });
  await fs.mkdir(join(dir, 'meta', 'objects'), { recursive: true });
  await fs.writeFile(join(dir, 'meta', 'HEAD'), 'ref: refs/heads/main\n');
  await fs.writeFile(join(dir, 'meta', 'config'), '[core]\n');
  await fs.writeFile(join(dir, 'meta', 'logs', 'HEAD'), 'log line\n');
  await fs.writeFile(join(dir, 'meta', 'logs', 'refs', 'main'), 'ref log\n');
  await fs.writeFile(join(dir, 'meta', 'objects', 'ab'), 'object\n');
  await fs.writeFile(join(dir, 'app.txt'), 'app\n');
  await fs.writeFile(join(dir, '.dockerignore'), 'meta\n!meta/HEAD\n!meta/logs/HEAD\n');
  await fs.writeFile(join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

test('the walk enters an excluded directory with re-includes below it and yields the directories leading to them', async (t) => {
  const ctx = await BuildContext.open(await gitLikeContext('FROM busybox\n'));
  const seen: string[] = [];
  for await (const e of ctx.walk('.')) seen.push(e.rel);
  t.deepEqual(seen, ['.', '.dockerignore', 'Dockerfile', 'app.txt', 'meta', 'meta/HEAD', 'meta/logs', 'meta/logs/HEAD']);
  const below: string[] = [];
  for await (const e of ctx.walk('meta')) below.push(e.rel);
  t.deepEqual(below, ['meta', 'meta/HEAD', 'meta/logs', 'meta/logs/HEAD']);
});

test("matching follows patternmatcher.MatchesUsingParentResults along the path, as BuildKit's walker does", (t) => {
  // The third rule was not evaluated at `a` (the verdict was already "excluded"), so at `a/b` it is matched
  // against `a/b` alone and does not re-exclude it.
  const m = DockerignoreMatcher.parse('a\n!a/b\na\n');
  t.true(m.excludes('a'));
  t.false(m.excludes('a/b'));
  t.true(m.excludes('a/c'));
  // a `#` only starts a comment at the beginning of the line; a lone `!` is refused
  t.true(DockerignoreMatcher.parse(' #x\n').excludes('#x'));
  t.throws(() => DockerignoreMatcher.parse('!\n'), { message: /\.dockerignore.*"!"/ });
  // fsutil enters an excluded directory when an exception has wildcards or lies below it
  t.false(DockerignoreMatcher.parse('meta\n!meta/HEAD\n').canSkipDirectory('meta'));
  t.true(DockerignoreMatcher.parse('meta\n!other/HEAD\n').canSkipDirectory('meta'));
  t.false(DockerignoreMatcher.parse('meta\n!**/HEAD\n').canSkipDirectory('meta'));
});

test.serial('COPY . and COPY of the excluded directory give the re-included files and their directories, as docker does', async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  const ctx = await gitLikeContext('FROM busybox\nCOPY . /ctx/\nCOPY meta /dst/\n');
  const both = await buildBoth(root, ctx, 'ignore-reinclude');
  try {
    t.deepEqual({ onlyOurs: both.onlyOurs, onlyDocker: both.onlyDocker }, { onlyOurs: [], onlyDocker: [] });
    t.deepEqual(both.ourConfig, both.dockerConfig);
    const paths = both.ourListing.map((l) => l.split(' ')[0]!).filter((p) => /^\/(ctx|dst)(\/|$)/.test(p));
    t.deepEqual(paths, [
      '/ctx',
      '/ctx/.dockerignore',
      '/ctx/Dockerfile',
      '/ctx/app.txt',
      '/ctx/meta',
      '/ctx/meta/HEAD',
      '/ctx/meta/logs',
      '/ctx/meta/logs/HEAD',
      '/dst',
      '/dst/HEAD',
      '/dst/logs',
      '/dst/logs/HEAD',
    ]);
  } finally {
    await removeImages(both.ours, both.theirs);
  }
  const missing = await tsbuild(root, ['build', '-q', '-f', '-', ctx], { input: 'FROM busybox\nCOPY meta/config /x\n' });
  t.is(missing.code, 1);
  t.regex(missing.stderr, /"meta\/config" not found in the build context/);
});
