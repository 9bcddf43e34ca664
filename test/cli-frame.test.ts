import test from 'ava';
import { Store } from '../store/index.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { spawn } from 'node:child_process';
import { tsbuild, tsbuildBin } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';

test('--help lists the commands and --version prints the version', async (t) => {
  const root = tempDir();
  const help = await tsbuild(root, ['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /Usage: tsbuild/);
  for (const c of ['images', 'tag', 'rmi', 'inspect']) t.regex(help.stdout, new RegExp(`\\n  ${c} `));
  const version = await tsbuild(root, ['--version']);
  t.regex(version.stdout, /^tsbuild \d+\.\d+\.\d+\n$/);
  const sub = await tsbuild(root, ['tag', '--help']);
  t.regex(sub.stdout, /Usage: tsbuild tag SOURCE TARGET/);
  // a command group: help asked for exits 0, the group named alone is a usage error
  const group = await tsbuild(root, ['system', '--help']);
  t.is(group.code, 0);
  t.regex(group.stdout, /Subcommands:/);
  t.is((await tsbuild(root, ['system'])).code, 2);
});

test('a reader that goes away ends a command quietly, as a broken pipe ends docker (status 141)', async (t) => {
  const root = tempDir();
  await makeBusyboxImage(await Store.open(root), 'piped:v1');
  // the read side is closed before the command writes (as `tsbuild images | head -0`)
  const child = spawn(process.execPath, [tsbuildBin, '--root', root, 'images'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  t.is(stderr, '', 'no stack trace, no message');
  t.is(code, 141);
});

test('mistakes give one line on stderr and a non-zero exit, a stack only with --debug', async (t) => {
  const root = tempDir();
  const unknown = await tsbuild(root, ['frobnicate']);
  t.is(unknown.code, 2);
  t.is(unknown.stderr, 'tsbuild: unknown command "frobnicate"\n');
  const badFlag = await tsbuild(root, ['images', '--nope']);
  t.is(badFlag.code, 2);
  t.is(badFlag.stderr, `tsbuild: unknown flag --nope for "tsbuild images" (see 'tsbuild images --help')\n`);
  const noValue = await tsbuild(root, ['build', '-t']);
  t.is(noValue.code, 2);
  t.is(noValue.stderr, `tsbuild: flag --tag needs a value for "tsbuild build" (see 'tsbuild build --help')\n`);
  const missing = await tsbuild(root, ['inspect', 'nothere:v1']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'tsbuild: image not found: nothere:v1\n');
  const badRef = await tsbuild(root, ['tag', 'x', 'Bad//Ref']);
  t.is(badRef.code, 1);
  t.is(badRef.stderr.split('\n').length, 2, badRef.stderr);
  const debug = await tsbuild(root, ['--debug', 'inspect', 'nothere:v1']);
  t.regex(debug.stderr, /tsbuild: image not found: nothere:v1\n.*\n\s+at /);
  t.regex(debug.stderr, /cli\/commands\/images\.ts:\d+/, "the stack names the TypeScript source, through the bundle's source maps");
});

test('images, tag, inspect and rmi work on the store', async (t) => {
  const root = tempDir();
  const store = await Store.open(root);
  const image = await makeBusyboxImage(store);
  const tag = await tsbuild(root, ['tag', 'busybox', 'localhost:5000/tools/busybox:v1']);
  t.is(tag.code, 0, tag.stderr);
  const images = await tsbuild(root, ['images']);
  t.is(images.code, 0, images.stderr);
  const lines = images.stdout.trim().split('\n');
  t.regex(lines[0]!, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
  t.regex(lines[1]!, new RegExp(`^busybox\\s+latest\\s+${image.manifest.config.digest.slice(7, 19)}\\s`));
  t.regex(lines[2]!, /^localhost:5000\/tools\/busybox\s+v1\s/);
  const inspect = await tsbuild(root, ['inspect', 'localhost:5000/tools/busybox:v1']);
  t.is(inspect.code, 0, inspect.stderr);
  const info = JSON.parse(inspect.stdout);
  t.is(info.Digest, image.digest);
  t.is(info.Id, image.manifest.config.digest);
  t.deepEqual(info.Config.Cmd, ['sh']);
  t.deepEqual(
    info.Layers.map((l: { digest: string }) => l.digest),
    [image.manifest.layers[0]!.digest],
  );
  t.deepEqual(info.DiffIDs, [image.diffId]);
  const rmi = await tsbuild(root, ['rmi', 'busybox']);
  t.is(rmi.stdout, 'Untagged: busybox:latest\n');
  const after = await tsbuild(root, ['images', '-q']);
  t.is(after.stdout.trim().split('\n').length, 1);
});
