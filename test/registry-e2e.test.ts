/**
 * `tsbuild registry` with the real clients from Debian: docker push/pull (dockerd), skopeo copy both ways
 * and delete, buildah push. Everything on 127.0.0.1, which docker treats as an insecure registry.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MediaType, digestOf } from '../oci/index.js';
import { Store, exportOciLayout } from '../store/index.js';
import { makeBusyboxImage, type FixtureImage } from './helpers/busybox-image.js';
import { startTestRegistry, type TestRegistry } from './helpers/registry-http.js';
import { run } from './helpers/run.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

const test = testWith(['dockerd', 'skopeo', 'buildah']);
const DOCKER = '/usr/bin/docker';

let reg: TestRegistry;
let layout: string;
let fixture: FixtureImage;

async function ok(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(cmd, args, env ? { env: { ...process.env, ...env } } : {});
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

test.before(async () => {
  reg = await startTestRegistry();
  const store = await Store.open(tempDir('registry-e2e-store-'));
  fixture = await makeBusyboxImage(store, 'busybox:latest');
  layout = tempDir('registry-e2e-layout-');
  await exportOciLayout(store.blobs, layout, [{ digest: fixture.digest, mediaType: MediaType.ociManifest, size: fixture.manifestBytes.length, tag: 'latest' }]);
});

test.after.always(async () => {
  await reg?.close();
});

test.serial('skopeo copy oci: → docker:// → oci: round-trips the image', async (t) => {
  await ok('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${reg.host}/e2e/skopeo:v1`]);
  const manifest = await reg.call('GET', '/v2/e2e/skopeo/manifests/v1', { headers: { Accept: MediaType.ociManifest } });
  t.is(manifest.status, 200);
  const pushed = manifest.json();
  t.is(pushed.layers.length, 1);
  t.is(pushed.layers[0].digest, fixture.manifest.layers[0]!.digest);
  t.is(pushed.config.digest, fixture.manifest.config.digest);
  const out = tempDir('registry-e2e-out-');
  await ok('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/e2e/skopeo:v1`, `oci:${out}:v1`]);
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
  t.is(index.manifests[0].digest, manifest.headers['docker-content-digest']);
  const layer = readFileSync(join(out, 'blobs', 'sha256', fixture.manifest.layers[0]!.digest.slice(7)));
  t.true(layer.equals(fixture.layer));
  const inspect = JSON.parse(await ok('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/e2e/skopeo:v1`]));
  t.is(inspect.Digest, manifest.headers['docker-content-digest']);
  const tags = JSON.parse(await ok('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/e2e/skopeo`]));
  t.deepEqual(tags.Tags, ['v1']);
});

test.serial('skopeo delete removes the manifest', async (t) => {
  await ok('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${reg.host}/e2e/delete:v1`]);
  t.is((await reg.call('GET', '/v2/e2e/delete/manifests/v1')).status, 200);
  await ok('skopeo', ['delete', '--tls-verify=false', `docker://${reg.host}/e2e/delete:v1`]);
  const after = await reg.call('GET', '/v2/e2e/delete/manifests/v1');
  t.is(after.status, 404);
  t.is(after.code, 'MANIFEST_UNKNOWN');
});

test.serial('docker push and docker pull, then the pulled image runs', async (t) => {
  const local = `tsbuild-registry-e2e/busybox:${process.pid}`;
  const remote = `${reg.host}/e2e/docker:v1`;
  await ok('skopeo', ['copy', `oci:${layout}:latest`, `docker-daemon:${local}`]);
  t.teardown(async () => {
    await run(DOCKER, ['rmi', '-f', local, remote]);
  });
  await ok(DOCKER, ['tag', local, remote]);
  const push = await ok(DOCKER, ['push', remote]);
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push)?.[1];
  t.truthy(digest, push);
  const head = await reg.call('HEAD', '/v2/e2e/docker/manifests/v1', { headers: { Accept: MediaType.dockerManifest } });
  t.is(head.headers['docker-content-digest'], digest);
  t.is(head.headers['content-type'], MediaType.dockerManifest);
  await ok(DOCKER, ['rmi', '-f', local, remote]);
  const pull = await ok(DOCKER, ['pull', remote]);
  t.true(pull.includes(digest!), pull);
  const out = await ok(DOCKER, ['run', '--rm', '--network', 'none', remote, '/bin/echo', 'pulled from tsbuild']);
  t.is(out.trim(), 'pulled from tsbuild');
});

test.serial('docker push of a second tag mounts nothing new and keeps both tags', async (t) => {
  const local = `tsbuild-registry-e2e/busybox2:${process.pid}`;
  await ok('skopeo', ['copy', `oci:${layout}:latest`, `docker-daemon:${local}`]);
  const remotes = [`${reg.host}/e2e/multi:a`, `${reg.host}/e2e/multi:b`, `${reg.host}/e2e/other:c`];
  t.teardown(async () => {
    await run(DOCKER, ['rmi', '-f', local, ...remotes]);
  });
  for (const remote of remotes) {
    await ok(DOCKER, ['tag', local, remote]);
    await ok(DOCKER, ['push', remote]);
  }
  t.deepEqual((await reg.call('GET', '/v2/e2e/multi/tags/list')).json().tags, ['a', 'b']);
  t.deepEqual((await reg.call('GET', '/v2/e2e/other/tags/list')).json().tags, ['c']);
});

test.serial('buildah push to the registry', async (t) => {
  // into buildah's image store under a fixed lowercase name (buildah pull oci:DIR names it after the path)
  const local = `localhost/tsbuild-registry-e2e:${process.pid}`;
  await ok('skopeo', ['copy', `oci:${layout}:latest`, `containers-storage:${local}`]);
  t.teardown(async () => {
    await run('buildah', ['rmi', '-f', local]);
  });
  await ok('buildah', ['push', '--tls-verify=false', local, `docker://${reg.host}/e2e/buildah:v1`]);
  const manifest = await reg.call('GET', '/v2/e2e/buildah/manifests/v1', {
    headers: { Accept: [MediaType.ociManifest, MediaType.dockerManifest].join(', ') },
  });
  t.is(manifest.status, 200);
  t.is(manifest.headers['docker-content-digest'], digestOf(manifest.body));
  const config = manifest.json().config.digest as string;
  t.is((await reg.call('HEAD', `/v2/e2e/buildah/blobs/${config}`)).status, 200);
});

const withCtr = testWith(['dockerd', 'skopeo', 'ctr']);

withCtr.serial("containerd (ctr, dockerd's containerd in its own namespace) pulls and pushes", async (t) => {
  const ctr = (args: string[]) => run('ctr', ['--address', '/var/run/docker/containerd/containerd.sock', '-n', `tsbuild-test-${process.pid}`, ...args]);
  await ok('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${reg.host}/e2e/ctr:v1`]);
  t.teardown(async () => {
    // leave dockerd's containerd as we found it: images, content, snapshots, then the namespace
    await ctr(['images', 'rm', `${reg.host}/e2e/ctr:v1`]);
    const content = (await ctr(['content', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    if (content.length) await ctr(['content', 'rm', ...content]);
    const snapshots = (await ctr(['snapshots', 'ls'])).stdout
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/)[0]!)
      .filter(Boolean);
    for (const s of snapshots.reverse()) await ctr(['snapshots', 'rm', s]);
    await run('ctr', ['--address', '/var/run/docker/containerd/containerd.sock', 'namespaces', 'rm', `tsbuild-test-${process.pid}`]);
  });
  const pull = await ctr(['images', 'pull', '--plain-http', `${reg.host}/e2e/ctr:v1`]);
  t.is(pull.code, 0, pull.stderr);
  t.regex(pull.stdout, new RegExp(fixture.digest));
  const push = await ctr(['images', 'push', '--plain-http', `${reg.host}/e2e/ctr-pushed:v1`, `${reg.host}/e2e/ctr:v1`]);
  t.is(push.code, 0, push.stderr);
  const manifest = await reg.call('GET', '/v2/e2e/ctr-pushed/manifests/v1', { headers: { Accept: MediaType.ociManifest } });
  t.is(manifest.status, 200);
  t.is(manifest.json().layers[0].digest, fixture.manifest.layers[0]!.digest);
});
