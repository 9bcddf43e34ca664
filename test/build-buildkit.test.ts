/**
 * BuildKit-only features docker's legacy builder lacks, checked by their results in the image:
 * heredocs (RUN, shebang files, COPY), --chmod, --link, --exclude, --parents and RUN mounts (cache,
 * bind, tmpfs, secret) — mounts and secrets never reach a layer or the history.
 */
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import tar from 'tar-stream';
import { Store, resolveImage } from '../store/index.js';
import { layerCompression } from '../oci/index.js';
import { testWith } from './helpers/tools.js';
import { projectRoot, tsbuild } from './helpers/run.js';
import { dockerRun, filesystemListing, loadBusyboxIntoDocker, removeImages, storeWithBusybox } from './helpers/build-compare.js';
import { tempDir } from './helpers/temp.js';
import { run } from './helpers/run.js';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const test = testWith(['runc', 'dockerd']);
const fixture = join(projectRoot, 'fixtures', 'buildkit-features');
const secretArgs = ['--secret', `id=token,src=${join(fixture, 'secret.txt')}`];

/** Every path and every file body in the image's layers. */
async function layerContents(root: string, ref: string): Promise<{ paths: string[]; bodies: string }> {
  const store = await Store.open(root);
  const rec = await store.images.get(ref);
  const image = await resolveImage(store.blobs, rec.digest);
  const paths: string[] = [];
  let bodies = '';
  for (const layer of image.manifest.layers) {
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      paths.push(h.name);
      stream.on('data', (c: unknown) => void (bodies += (c as Buffer).toString('latin1')));
      stream.on('end', next);
    });
    const done = new Promise<void>((r, j) => extract.on('finish', () => r()).on('error', j));
    const blob = await store.blobs.read(layer.digest);
    Readable.from(layerCompression(layer.mediaType) === 'gzip' ? blob.pipe(createGunzip()) : blob).pipe(extract);
    await done;
  }
  return { paths, bodies };
}

test.serial('heredocs, --chmod, --link, --exclude, --parents and RUN mounts give the expected files', async (t) => {
  const root = await storeWithBusybox();
  const tag = 'tsbuild-buildkit:v1';
  const r = await tsbuild(root, ['build', '--progress', 'plain', ...secretArgs, '-t', tag, fixture]);
  t.is(r.code, 0, r.stderr);
  const archive = join(tempDir('bk-'), 'bk.tar');
  await tsbuild(root, ['save', '-o', archive, tag]);
  await loadBusyboxIntoDocker();
  await run('/usr/bin/docker', ['load', '-i', archive]);
  try {
    const files = (await filesystemListing(tag)).filter((l) => l.startsWith('/out/')).map((l) => l.replace(/ [0-9a-f]{16}$/, ''));
    t.deepEqual(files, [
      '/out/cache-runs file 100644 0:0',
      '/out/chmod-octal file 100700 0:0',
      '/out/chmod-symbolic file 100744 0:0',
      '/out/excluded directory 40755 0:0',
      '/out/excluded/main.sh file 100644 0:0',
      '/out/from-bind file 100644 0:0',
      '/out/from-tmpfs file 100644 0:0',
      '/out/heredoc-run file 100644 0:0',
      '/out/inline.txt file 100664 0:0',
      '/out/linked directory 40755 0:0',
      '/out/linked/util.sh file 100644 0:0',
      '/out/literal.txt file 100664 0:0',
      '/out/parents directory 40755 0:0',
      '/out/parents/src directory 40755 0:0',
      '/out/parents/src/app directory 40755 0:0',
      '/out/parents/src/app/main.sh file 100644 0:0',
      '/out/parents/src/lib directory 40755 0:0',
      '/out/parents/src/lib/util.sh file 100644 0:0',
      '/out/secret-length file 100644 0:0',
      '/out/secret-present file 100644 0:0',
      '/out/shebang file 100644 0:0',
    ]);
    const cat = async (f: string) => (await dockerRun(tag, ['cat', f])).stdout;
    t.is(await cat('/out/heredoc-run'), 'hello world\n');
    t.is(await cat('/out/shebang'), 'from a shebang file\n');
    t.is(await cat('/out/inline.txt'), 'name=world\n');
    t.is(await cat('/out/literal.txt'), 'name=$NAME\n');
    t.is(await cat('/out/from-bind'), 'bind me\n');
    t.is(await cat('/out/from-tmpfs'), 'temp\n');
    t.is((await cat('/out/secret-length')).trim(), '12');
    t.is(await cat('/out/secret-present'), 'present\n');
    // Mount targets and their stubs are not in the image.
    const all = await filesystemListing(tag);
    t.false(
      all.some((l) => /^\/(cache|scratch|mnt|run|etc\/token|dev\/pipes)[ /]/.test(l)),
      'no mount leftovers',
    );
  } finally {
    await removeImages(tag);
  }
  // The secret's value is in no layer and not in the history.
  const { paths, bodies } = await layerContents(root, tag);
  t.false(bodies.includes('s3cr3t-value'));
  t.false(paths.some((p) => p.includes('secrets')));
  // Runtime mount points and the files the runtime binds in never reach a layer.
  t.deepEqual(
    paths.filter((p) => /^(etc\/(hosts|resolv\.conf|hostname)|proc|sys|dev|run|cache|scratch|mnt)(\/|$)/.test(p)),
    [],
  );
  const inspect = await tsbuild(root, ['inspect', tag]);
  t.false(inspect.stdout.includes('s3cr3t-value'));
});

test.serial('a cache mount keeps its contents across builds; a required secret that is missing fails', async (t) => {
  const root = await storeWithBusybox();
  const first = await tsbuild(root, ['build', '-q', '--no-cache', ...secretArgs, '-t', 'bk:1', fixture]);
  t.is(first.code, 0, first.stderr);
  const second = await tsbuild(root, ['build', '-q', '--no-cache', ...secretArgs, '-t', 'bk:2', fixture]);
  t.is(second.code, 0, second.stderr);
  const { bodies } = await layerContents(root, 'bk:2');
  t.regex(bodies, /(^|\0)2\n/, 'the second run saw the first run’s line in the cache');
  const missing = await tsbuild(root, ['build', '-q', '-t', 'bk:3', fixture]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /secret "token" is required/);
});

test.serial('ADD --checksum accepts the right digest and refuses a wrong one', async (t) => {
  const body = 'checked content\n';
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/file.txt`;
  const good = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  try {
    const root = await storeWithBusybox();
    const build = (sum: string) =>
      tsbuild(root, ['build', '-q', '-f', '-', '-t', 'checksum:v1', fixture], { input: `FROM busybox:latest\nADD --checksum=${sum} ${url} /file.txt\n` });
    const ok = await build(good);
    t.is(ok.code, 0, ok.stderr);
    const bad = await build(`sha256:${'0'.repeat(64)}`);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /checksum mismatch/);
  } finally {
    server.close();
  }
});
