/** The build context and COPY/ADD helpers on their own: .dockerignore, globs, checksums, --chmod, confinement. */
import test from 'ava';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import { BuildContext, DockerignoreMatcher, matchPath } from '../builder/context/index.js';
import { extractTarInto, parseChmod, resolveInRoot, isTarArchive } from '../builder/copy/index.js';
import { tempDir } from './helpers/temp.js';

test('.dockerignore: anchored patterns, ** across directories, ! exceptions, last match wins', (t) => {
  const m = DockerignoreMatcher.parse(['# comment', '/build', '**/*.log', '!keep/*.log', 'docs', '!docs/README.md', 'tmp?', ''].join('\n'));
  t.true(m.excludes('build'));
  t.true(m.excludes('build/out/a.o'), 'a matched directory excludes its contents');
  t.false(m.excludes('src/build'), 'patterns are anchored at the context root');
  t.true(m.excludes('a.log'));
  t.true(m.excludes('deep/er/b.log'));
  t.false(m.excludes('keep/c.log'));
  t.true(m.excludes('docs/guide.md'));
  t.false(m.excludes('docs/README.md'));
  t.true(m.excludes('tmp1'));
  t.false(m.excludes('tmp12'));
  t.false(m.canSkipDirectory('docs'), 'an exception below means the walk must enter');
  // fsutil walks every excluded directory once an exception has wildcards (`!keep/*.log`)
  t.false(m.canSkipDirectory('build'));
  t.true(DockerignoreMatcher.parse('build\n!docs/README.md\n').canSkipDirectory('build'));
});

test('glob: Go filepath.Match semantics for COPY sources', (t) => {
  t.true(matchPath('src/*.js', 'src/a.js'));
  t.false(matchPath('src/*.js', 'src/sub/a.js'), '* does not cross /');
  t.true(matchPath('file?.txt', 'file1.txt'));
  t.true(matchPath('[a-c]x', 'bx'));
  t.false(matchPath('[^a-c]x', 'bx'));
  t.true(matchPath('a\\*b', 'a*b'));
});

test('context walk honours .dockerignore and checksums change with content, not with times', async (t) => {
  const dir = tempDir('ctx-unit-');
  await fs.mkdir(join(dir, 'src'));
  await fs.writeFile(join(dir, 'src', 'a.txt'), 'a');
  await fs.writeFile(join(dir, 'src', 'b.log'), 'b');
  await fs.writeFile(join(dir, '.dockerignore'), '*/*.log\n');
  const ctx = await BuildContext.open(dir);
  const seen: string[] = [];
  for await (const e of ctx.walk('.')) seen.push(e.rel);
  t.deepEqual(seen, ['.', '.dockerignore', 'src', 'src/a.txt']);
  const before = await ctx.checksum(['src']);
  await fs.utimes(join(dir, 'src', 'a.txt'), new Date(0), new Date(0));
  const fresh = await BuildContext.open(dir);
  t.is(await fresh.checksum(['src']), before, 'times do not matter');
  await fs.writeFile(join(dir, 'src', 'a.txt'), 'changed');
  t.not(await (await BuildContext.open(dir)).checksum(['src']), before);
});

test('--chmod: octal and symbolic modes', (t) => {
  t.is(parseChmod('755')(0o644, false), 0o755);
  t.is(parseChmod('u+x,go-w')(0o666, false), 0o744);
  t.is(parseChmod('a=rX')(0o644, true), 0o555);
  t.is(parseChmod('a=rX')(0o644, false), 0o444);
  t.throws(() => parseChmod('bogus'));
});

test('paths resolve inside the root: absolute symlinks and .. cannot climb out', async (t) => {
  const root = tempDir('root-unit-');
  await fs.mkdir(join(root, 'etc'));
  await fs.symlink('/', join(root, 'up'));
  await fs.symlink('../../../../tmp', join(root, 'etc', 'escape'));
  t.is(await resolveInRoot(root, '/up/etc/passwd'), join(root, 'etc/passwd'));
  t.is(await resolveInRoot(root, '/etc/escape/x'), join(root, 'tmp/x'));
  t.is(await resolveInRoot(root, '/../../x'), join(root, 'x'));
});

test('ADD extraction stays inside the destination whatever the archive says', async (t) => {
  const dir = tempDir('add-unit-');
  const pack = tar.pack();
  pack.entry({ name: '../../outside.txt' }, 'escaped?');
  pack.entry({ name: '/abs.txt' }, 'absolute');
  pack.entry({ name: 'link', type: 'symlink', linkname: '/' });
  pack.entry({ name: 'link/through-link.txt' }, 'via link');
  pack.entry({ name: 'hard', type: 'link', linkname: '../../etc/passwd' });
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const archive = join(dir, 'evil.tar');
  await fs.writeFile(archive, Buffer.concat(chunks));
  t.true(await isTarArchive(archive));
  const dest = join(dir, 'dest');
  await extractTarInto(archive, dest).catch(() => undefined);
  const outside = await fs.readdir(dir);
  t.deepEqual(outside.sort(), ['dest', 'evil.tar']);
  t.is(await fs.readFile(join(dest, 'outside.txt'), 'utf8'), 'escaped?');
  t.is(await fs.readFile(join(dest, 'abs.txt'), 'utf8'), 'absolute');
  t.is(await fs.readFile(join(dest, 'through-link.txt'), 'utf8'), 'via link');
});
