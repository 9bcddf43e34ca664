/**
 * `images`, `inspect` and `history` as docker users read them: repository and dangling/reference/label
 * filters, images built without -t listed as <none>, docker's Go-template placeholders for --format
 * (compared with docker's own output for the same image), inspect --format and several references,
 * history like docker history; a template that cannot be evaluated is one line, never printed raw.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { run, tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { DOCKER, loadBusyboxIntoDocker, removeImages, storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc', 'dockerd']);

// builds made three days ago: "3 days ago" reads the same when docker and tsbuild are asked a second apart
const env = { ...process.env, SOURCE_DATE_EPOCH: String(Math.floor(Date.now() / 1000) - 3 * 86400 - 3600) };

async function ok(root: string, args: string[]): Promise<string> {
  const r = await tsbuild(root, args, { env });
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function build(root: string, dockerfile: string, tags: string[] = [], extra: string[] = []): Promise<string> {
  const dir = tempDir('images-ctx-');
  await fs.writeFile(join(dir, 'Dockerfile'), dockerfile);
  return (await ok(root, ['build', '-q', ...tags.flatMap((t) => ['-t', t]), ...extra, dir])).trim();
}

test('images built without -t are <none>; a repository argument, dangling= and reference= and label= filters choose rows', async (t) => {
  const root = await storeWithBusybox();
  const named = await build(root, 'FROM busybox\nRUN echo a > /a\n', ['app:v1', 'team/app:v2'], ['--label', 'tier=web']);
  const dangling = await build(root, 'FROM busybox\nRUN echo b > /b\n');
  const rows = (args: string[]) => ok(root, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}', ...args]);
  const all = await rows([]);
  t.true(all.includes(`<none>:<none> ${dangling.slice(7, 19)}\n`), all);
  t.true(all.includes(`app:v1 ${named.slice(7, 19)}\n`));
  t.is(await rows(['--filter', 'dangling=true']), `<none>:<none> ${dangling.slice(7, 19)}\n`);
  t.false((await rows(['--filter', 'dangling=false'])).includes('<none>'));
  t.is(await rows(['busybox']), `busybox:latest ${(JSON.parse(await ok(root, ['inspect', 'busybox'])) as { Id: string }).Id.slice(7, 19)}\n`);
  t.is(await rows(['app:v1']), `app:v1 ${named.slice(7, 19)}\n`);
  t.is(await rows(['--filter', 'reference=*/app']), `team/app:v2 ${named.slice(7, 19)}\n`);
  t.is(await rows(['--filter', 'reference=app:*']), `app:v1 ${named.slice(7, 19)}\n`);
  t.is(await rows(['--filter', 'label=tier=web', '--filter', 'reference=app']), `app:v1 ${named.slice(7, 19)}\n`);
  t.is(await rows(['nosuch']), '');
  const q = await ok(root, ['images', '-q', '--filter', 'dangling=true']);
  t.is(q, `${dangling.slice(7, 19)}\n`);
  // once tagged, it is no longer dangling
  await ok(root, ['tag', dangling, 'was-dangling:v1']);
  t.is(await rows(['--filter', 'dangling=true']), '');
  const bad = await tsbuild(root, ['images', '--filter', 'since=app:v1']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^tsbuild: invalid filter 'since'/);
});

test.serial("images --format takes docker's placeholders and prints what docker prints for the same image", async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  await build(root, 'FROM busybox\nRUN echo c > /c\n', ['tsbuild-fmt:v1']);
  const archive = join(tempDir('images-fmt-'), 'x.tar');
  await ok(root, ['save', '-o', archive, 'tsbuild-fmt:v1']);
  t.is((await run(DOCKER, ['load', '-i', archive])).code, 0);
  try {
    for (const format of [
      '{{.Repository}}:{{.Tag}}',
      '{{.ID}}',
      '{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}',
      'table {{.Repository}}\t{{.Tag}}\t{{.ID}}',
      '{{.Repository}} {{.Size}}',
    ]) {
      const ours = await ok(root, ['images', '--format', format, 'tsbuild-fmt']);
      const theirs = await run(DOCKER, ['images', '--format', format, 'tsbuild-fmt']);
      t.is(ours, theirs.stdout, format);
    }
    const ourJson = JSON.parse(await ok(root, ['images', '--format', '{{json .}}', 'tsbuild-fmt'])) as Record<string, string>;
    const dockerJson = JSON.parse((await run(DOCKER, ['images', '--format', '{{json .}}', 'tsbuild-fmt'])).stdout) as Record<string, string>;
    t.deepEqual(Object.keys(ourJson), Object.keys(dockerJson), 'the same keys in the same order');
    for (const k of ['Repository', 'Tag', 'ID', 'CreatedSince', 'CreatedAt', 'Containers']) t.is(ourJson[k], dockerJson[k], k);
    t.regex(await ok(root, ['images', '--format', '{{.Digest}}', 'tsbuild-fmt']), /^sha256:[a-f0-9]{64}\n$/);
  } finally {
    await removeImages('tsbuild-fmt:v1');
  }
});

test.serial("inspect --format evaluates docker's templates as docker does; several references; history reads like docker history", async (t) => {
  await loadBusyboxIntoDocker();
  const root = await storeWithBusybox();
  await build(root, 'FROM busybox\nENV A=1 B=two\nLABEL org.example.team=builders\nRUN echo d > /d\nCMD ["cat", "/d"]\n', ['tsbuild-insp:v1']);
  const archive = join(tempDir('images-insp-'), 'x.tar');
  await ok(root, ['save', '-o', archive, 'tsbuild-insp:v1']);
  t.is((await run(DOCKER, ['load', '-i', archive])).code, 0);
  try {
    for (const format of [
      '{{.Id}}',
      '{{.Config.Env}}',
      '{{index .RepoTags 0}}',
      '{{json .Config.Cmd}}',
      '{{.Config.Labels}}',
      '{{index .Config.Labels "org.example.team"}}',
      '{{range .Config.Env}}{{.}};{{end}}',
      '{{.Os}}/{{.Architecture}}',
      '{{json .RootFS.Layers}}',
      '{{len .RootFS.Layers}}',
      '{{if .Config.Cmd}}has cmd{{else}}none{{end}}',
      '{{.Config.WorkingDir}}|{{.Config.User}}',
    ]) {
      const ours = await ok(root, ['inspect', '--format', format, 'tsbuild-insp:v1']);
      const theirs = await run(DOCKER, ['inspect', '--format', format, 'tsbuild-insp:v1']);
      t.is(ours, theirs.stdout, format);
    }
    const two = await ok(root, ['inspect', '-f', '{{.Id}}', 'tsbuild-insp:v1', 'busybox']);
    t.is(two.split('\n').length, 3);
    const array = JSON.parse(await ok(root, ['inspect', 'tsbuild-insp:v1', 'busybox'])) as Array<{ Id: string }>;
    t.is(array.length, 2);
    const missing = await tsbuild(root, ['inspect', '-f', '{{.Id}}', 'tsbuild-insp:v1', 'nosuch:v9']);
    t.is(missing.code, 1);
    t.regex(missing.stdout, /^sha256:/);
    t.is(missing.stderr, 'tsbuild: image not found: nosuch:v9\n');
    for (const format of ['table {{.ID}}\t{{.CreatedBy}}\t{{.Size}}', '{{.ID}} {{.CreatedSince}} {{.Size}} {{.Comment}}']) {
      const ours = await ok(root, ['history', '--format', format, 'tsbuild-insp:v1']);
      const theirs = await run(DOCKER, ['history', '--format', format, 'tsbuild-insp:v1']);
      t.is(ours, theirs.stdout, format);
    }
    const plain = (await ok(root, ['history', 'tsbuild-insp:v1'])).split('\n');
    const dockers = (await run(DOCKER, ['history', 'tsbuild-insp:v1'])).stdout.split('\n');
    t.deepEqual(
      plain.map((l) => l.trimEnd().split(/\s{2,}/)),
      dockers.map((l) => l.trimEnd().split(/\s{2,}/)),
    );
  } finally {
    await removeImages('tsbuild-insp:v1');
  }
});

test('a template that cannot be evaluated is refused in one line, never printed raw', async (t) => {
  const root = await storeWithBusybox();
  for (const [args, msg] of [
    [['images', '--format', '{{.NoSuchField}}'], /can't evaluate field NoSuchField/],
    [['images', '--format', '{{.Repository'], /unclosed action/],
    [['images', '--format', '{{nosuchfunc .ID}}'], /function "nosuchfunc" not defined/],
    [['inspect', '--format', '{{.Config.Nope}}', 'busybox'], /can't evaluate field Nope/],
    [['inspect', '--format', '{{index .RepoTags 5}}', 'busybox'], /index out of range/],
    [['inspect', '--format', '{{range .Config.Env}}', 'busybox'], /without \{\{end\}\}/],
    [['history', '--format', '{{.Bogus}}', 'busybox'], /can't evaluate field Bogus/],
  ] as const) {
    const r = await tsbuild(root, [...args]);
    t.not(r.code, 0, args.join(' '));
    t.is(r.stdout, '', args.join(' '));
    t.is(r.stderr.split('\n').length, 2, r.stderr);
    t.regex(r.stderr, msg);
  }
  // an empty store refuses a bad template too
  const empty = await tsbuild(tempDir('images-empty-'), ['images', '--format', '{{.Bogus}}']);
  t.regex(empty.stderr, /^tsbuild: template: can't evaluate field Bogus/);
});

test('an option a command does not know is refused in one line', async (t) => {
  const root = tempDir('images-flags-');
  for (const cmd of [
    ['images', '--bogus'],
    ['inspect', '--size', 'x'],
    ['history', '--human=false', 'x'],
    ['save', '--bogus', 'x'],
    ['load', '--bogus'],
  ]) {
    const r = await tsbuild(root, cmd);
    t.is(r.code, 2, cmd.join(' '));
    t.regex(r.stderr, /^tsbuild: unknown flag --[a-z-]+ for "tsbuild [a-z]+" \(see 'tsbuild [a-z]+ --help'\)\n$/);
  }
});

test('a TSBUILD_CONFIG that names a missing file is one line naming it; /dev/null is no config file', async (t) => {
  const root = tempDir('images-cfg-');
  for (const args of [['images'], ['build', '-q', '.'], ['pull', 'busybox']]) {
    const r = await tsbuild(root, args, { env: { ...process.env, TSBUILD_CONFIG: '/nonexistent/tsbuild.yaml' } });
    t.is(r.code, 2, args.join(' '));
    t.is(
      r.stderr,
      'tsbuild: TSBUILD_CONFIG names /nonexistent/tsbuild.yaml, which does not exist: create it, unset TSBUILD_CONFIG, or set it to /dev/null for no config file\n',
    );
  }
  const none = await tsbuild(root, ['images', '-q'], { env: { ...process.env, TSBUILD_CONFIG: '/dev/null' } });
  t.is(none.code, 0, none.stderr);
});
