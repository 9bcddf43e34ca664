/**
 * Image ids are references everywhere, as in docker: `tsbuild tag $(tsbuild build -q .) app:v1`, the
 * 12-character short id `images` shows, and the full `sha256:` id work for tag, rmi, inspect, history, save
 * and push.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testWith } from './helpers/tools.js';
import { startDistribution } from './helpers/distribution.js';
import { run, tsbuild } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { storeWithBusybox } from './helpers/build-compare.js';

const test = testWith(['runc', 'skopeo', 'docker-registry']);

async function ok(root: string, args: string[]) {
  const r = await tsbuild(root, args);
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function built(): Promise<{ root: string; id: string }> {
  const root = await storeWithBusybox();
  const ctx = tempDir('ids-ctx-');
  await fs.writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo one > /one\nCMD ["cat", "/one"]\n');
  // no -t: the image has no name and is found by its id alone, as docker's dangling images are
  const id = (await ok(root, ['build', '-q', ctx])).trim();
  return { root, id };
}

test('tag, inspect and history take the full id, the bare hex and the short id', async (t) => {
  const { root, id } = await built();
  t.regex(id, /^sha256:[a-f0-9]{64}$/);
  const short = id.slice(7, 19);
  await ok(root, ['tag', id, 'app:full']);
  await ok(root, ['tag', id.slice(7), 'app:hex']);
  await ok(root, ['tag', short, 'app:short']);
  const images = await ok(root, ['images']);
  for (const tag of ['full', 'hex', 'short']) t.regex(images, new RegExp(`app\\s+${tag}\\s+${short}`));
  t.is((JSON.parse(await ok(root, ['inspect', short])) as { Id: string }).Id, id);
  const history = await ok(root, ['history', short]);
  t.regex(history, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/m);
  t.regex(history, new RegExp(`^${short}\\s.*CMD \\["cat","/one"\\]`, 'm'), 'newest step first, with the image id');
  t.regex(history, /RUN \/bin\/sh -c echo one > \/one/);
  t.is((await ok(root, ['history', '-q', id])).trim(), short);
  const missing = await tsbuild(root, ['tag', 'ffffffffffff', 'app:none']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^tsbuild: image not found: ffffffffffff$/m);
});

test('rmi by id removes its only name (and then the image, as docker does), refuses several names without -f, and removes them all with it', async (t) => {
  const first = await built();
  await ok(first.root, ['tag', first.id, 'one:v1']);
  const removed = await ok(first.root, ['rmi', first.id.slice(7, 19)]);
  t.is(removed, `Untagged: one:v1\nDeleted: ${first.id}\n`, 'its last name gone, the image goes: docker prints its id, not a manifest digest');
  t.is((await tsbuild(first.root, ['tag', first.id, 'two:a'])).code, 1);
  const { root, id } = await built();
  const short = id.slice(7, 19);
  await ok(root, ['tag', id, 'two:a']);
  await ok(root, ['tag', id, 'two:b']);
  const refused = await tsbuild(root, ['rmi', short]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /has 2 names \(two:a, two:b\).*-f/);
  const forced = await ok(root, ['rmi', '-f', id]);
  t.regex(forced, /Untagged: two:a/);
  t.regex(forced, /Untagged: two:b/);
  t.notRegex(await ok(root, ['images']), /two/);
  t.is(forced, `Untagged: two:a\nUntagged: two:b\nDeleted: ${id}\n`);
});

test('rmi removes an image without a name by its short id, full id or bare hex, with or without -f, as docker rmi $(docker images -q -f dangling=true)', async (t) => {
  const root = await storeWithBusybox();
  const ctx = tempDir('ids-dangling-');
  const ids: string[] = [];
  for (const n of ['1', '2', '3', '4']) {
    await fs.writeFile(join(ctx, 'Dockerfile'), `FROM busybox\nRUN echo ${n} > /n\n`);
    ids.push((await ok(root, ['build', '-q', ctx])).trim());
  }
  // one more whose name moved on to a newer build: dangling, as in docker
  await fs.writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo 5 > /n\n');
  const moved = (await ok(root, ['build', '-q', '-t', 'app:v1', ctx])).trim();
  await fs.writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo 6 > /n\n');
  const current = (await ok(root, ['build', '-q', '-t', 'app:v1', ctx])).trim();
  const dangling = (await ok(root, ['images', '-q', '-f', 'dangling=true'])).trim().split('\n').sort();
  t.deepEqual(dangling, [...ids, moved].map((i) => i.slice(7, 19)).sort());
  t.is(await ok(root, ['rmi', moved.slice(7, 19)]), `Deleted: ${moved}\n`);
  t.is(await ok(root, ['rmi', ids[0]!]), `Deleted: ${ids[0]}\n`);
  t.is(await ok(root, ['rmi', ids[1]!.slice(7)]), `Deleted: ${ids[1]}\n`);
  t.is(await ok(root, ['rmi', '-f', ids[2]!.slice(7, 19), ids[3]!]), `Deleted: ${ids[2]}\nDeleted: ${ids[3]}\n`);
  t.is(await ok(root, ['images', '-q', '-f', 'dangling=true']), '');
  t.regex(await ok(root, ['images']), new RegExp(`app\\s+v1\\s+${current.slice(7, 19)}`), 'the named image stays');
  const again = await tsbuild(root, ['rmi', ids[0]!]);
  t.is(again.code, 1);
  t.is(again.stderr, `tsbuild: image not found: ${ids[0]}\n`);
});

test('save and push take an id; push by id needs a destination', async (t) => {
  const { root, id } = await built();
  const short = id.slice(7, 19);
  await ok(root, ['tag', id, 'named:v1']);
  const archive = join(tempDir('ids-save-'), 'image.tar');
  await ok(root, ['save', '-o', archive, short]);
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', archive, 'manifest.json']).toString()) as Array<{ Config: string }>;
  t.is(manifest[0]!.Config, `blobs/sha256/${id.slice(7)}`);
  const noDest = await tsbuild(root, ['push', short]);
  t.is(noDest.code, 2);
  t.regex(noDest.stderr, /names no repository/);
  const registry = await startDistribution();
  try {
    await ok(root, ['push', short, `${registry.host}/ids/app:v1`]);
    const r = await run('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${registry.host}/ids/app:v1`]);
    t.is(r.code, 0, r.stderr);
    const config = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${registry.host}/ids/app:v1`]);
    t.is((JSON.parse(config.stdout) as { config: { digest: string } }).config.digest, id);
  } finally {
    await registry.stop();
  }
});
