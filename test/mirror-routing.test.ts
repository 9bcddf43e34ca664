/**
 * One mirror, two upstreams (issue 12, "Routing" and pushes): docker.io and ghcr.io are two local
 * distributions with different content under the same names. containerd's `?ns=`, a path prefix and
 * the default upstream (with `library/` added to one-component names) pick the upstream; pushes beside
 * the mirrored namespaces are stored locally and served locally, pushes into a mirrored one are refused.
 * Also: the mirror started by the CLI (`--mirror` flags) and by a YAML `mirrors:` section.
 */
import { MediaType } from '../oci/index.js';
import { Store, exportOciLayout } from '../store/index.js';
import {
  getManifest,
  layoutProblems,
  MIRROR_IMPL,
  pushImageHttp,
  request,
  runFor,
  skopeoPull,
  smallImage,
  startMirror,
  startUpstream,
  timedGet,
  type RunningMirror,
  type Upstream,
} from './helpers/mirror-upstream.js';
import { tempDir } from './helpers/temp.js';
import { testWith } from './helpers/tools.js';

const tools = testWith(['docker-registry', 'skopeo']);
// Routing to two upstreams and pushes are tsbuild's: distribution's proxy mode has neither.
const test = MIRROR_IMPL === 'tsbuild' ? tools.serial : tools.skip;

let hub: Upstream;
let ghcr: Upstream;
let mirror: RunningMirror;
let orgApp: Awaited<ReturnType<typeof smallImage>>;

tools.before(async () => {
  if (MIRROR_IMPL !== 'tsbuild') return;
  [hub, ghcr] = await Promise.all([startUpstream({ label: 'docker-hub' }), startUpstream({ label: 'ghcr' })]);
  orgApp = await smallImage('ghcr-org-app', 'org/app');
  await ghcr.push(orgApp);
  mirror = await startMirror({
    upstreams: [
      { registry: 'docker.io', url: hub.url },
      { registry: 'ghcr.io', url: ghcr.url },
    ],
    defaultUpstream: 'docker.io',
    revalidateTimeoutMs: 1000,
    upstreamTimeoutMs: 10_000,
  });
});

tools.after.always(async () => {
  await mirror?.close();
  await hub?.stop();
  await ghcr?.stop();
});

const digestOf = async (path: string) => {
  const r = await getManifest(mirror.url, path);
  return r.status === 200 ? (r.headers['docker-content-digest'] as string) : `${r.status} ${r.body.toString().slice(0, 200)}`;
};

test('the default upstream: /v2/busybox, /v2/library/busybox and /v2/docker.io/library/busybox are docker.io library/busybox', async (t) => {
  t.not(hub.busybox.digest, ghcr.busybox.digest, 'the two upstreams differ');
  t.is(await digestOf('/v2/busybox/manifests/latest'), hub.busybox.digest);
  t.is(await digestOf('/v2/library/busybox/manifests/latest'), hub.busybox.digest);
  t.is(await digestOf('/v2/docker.io/library/busybox/manifests/latest'), hub.busybox.digest);
  t.is(await digestOf('/v2/library/busybox/manifests/latest?ns=docker.io'), hub.busybox.digest);
  const marker = hub.busybox.layers[1]!;
  const viaShort = await timedGet(mirror.url, `/v2/busybox/blobs/${marker.digest}`);
  t.is(viaShort.status, 200);
  t.is(viaShort.digest, marker.digest);
  t.is(ghcr.proxy.requests.filter((r) => r.url.includes('busybox')).length, 0, 'ghcr.io was not asked for docker.io names');
});

test('?ns=ghcr.io and the /v2/ghcr.io/ prefix reach ghcr.io, for manifests and blobs', async (t) => {
  t.is(await digestOf('/v2/org/app/manifests/v1?ns=ghcr.io'), orgApp.digest);
  t.is(await digestOf('/v2/ghcr.io/org/app/manifests/v1'), orgApp.digest);
  t.is(await digestOf('/v2/library/busybox/manifests/latest?ns=ghcr.io'), ghcr.busybox.digest, 'the same name on the other upstream');
  t.is(await digestOf('/v2/ghcr.io/library/busybox/manifests/latest'), ghcr.busybox.digest);
  const layer = orgApp.layers[0]!;
  for (const path of [`/v2/org/app/blobs/${layer.digest}?ns=ghcr.io`, `/v2/ghcr.io/org/app/blobs/${layer.digest}`]) {
    const read = await timedGet(mirror.url, path);
    t.is(read.status, 200, path);
    t.is(read.digest, layer.digest, path);
  }
  t.is(hub.proxy.requests.filter((r) => r.url.includes('org/app')).length, 0, 'docker.io was not asked for ghcr.io names');
  const pull = await skopeoPull(mirror.host, 'ghcr.io/org/app:v1');
  t.is(pull.code, 0, pull.stderr);
  t.deepEqual(layoutProblems(pull.dir, orgApp), []);
});

test('a name no upstream has, under the default upstream, is unknown with the spec error', async (t) => {
  const r = await getManifest(mirror.url, '/v2/nobody/here/manifests/v1');
  t.is(r.status, 404);
  t.is(r.code, 'MANIFEST_UNKNOWN');
  const prefixed = await getManifest(mirror.url, '/v2/ghcr.io/nobody/here/manifests/v1');
  t.is(prefixed.status, 404);
});

test('a push beside the mirrored namespaces is stored and served locally; docker.io is not asked for it', async (t) => {
  const store = await Store.open(tempDir('mirror-push-src-'));
  const image = await smallImage('pushed-locally', 'myteam/app');
  for (const b of image.blobs) await store.blobs.put(b.bytes);
  await store.blobs.put(image.manifest);
  const layout = tempDir('mirror-push-layout-');
  await exportOciLayout(store.blobs, layout, [{ digest: image.digest as never, mediaType: MediaType.ociManifest, size: image.manifest.length, tag: 'v1' }]);
  const push = await runFor('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${mirror.host}/myteam/app:v1`], 60_000, {
    CONTAINERS_REGISTRIES_CONF: '/dev/null',
  });
  t.is(push.code, 0, `skopeo push beside the mirrored namespaces: ${push.stderr}`);
  hub.proxy.reset();
  t.is(await digestOf('/v2/myteam/app/manifests/v1'), image.digest);
  const pull = await skopeoPull(mirror.host, 'myteam/app:v1');
  t.is(pull.code, 0, pull.stderr);
  t.deepEqual(layoutProblems(pull.dir, image), []);
  t.deepEqual(
    hub.proxy.requests.map((r) => `${r.method} ${r.url}`),
    [],
    'the local repository was served without asking the default upstream',
  );
  const tags = await request(mirror.url, 'GET', '/v2/myteam/app/tags/list');
  t.deepEqual(JSON.parse(tags.body.toString()).tags, ['v1']);
  // A plain HTTP push (the spec's POST + PUT) beside them too.
  const other = await smallImage('pushed-http', 'myteam/other');
  await pushImageHttp(mirror.url, other);
  t.is(await digestOf('/v2/myteam/other/manifests/v1'), other.digest);
});

test('an image built on a base pulled through the mirror pushes beside it: the shared layers do not make the new name a mirrored one', async (t) => {
  const pulled = await skopeoPull(mirror.host, 'library/busybox:latest');
  t.is(pulled.code, 0, pulled.stderr);
  // Pushed under a new unprefixed name: the client asks (HEAD) for layers the mirror already caches.
  const push = await runFor(
    'skopeo',
    ['copy', '--quiet', '--dest-tls-verify=false', `oci:${pulled.dir}:pulled`, `docker://${mirror.host}/myteam/based:v1`],
    60_000,
    { CONTAINERS_REGISTRIES_CONF: '/dev/null' },
  );
  t.is(push.code, 0, `push of an image sharing cached layers: ${push.stderr}`);
  const local = await request(mirror.url, 'GET', '/v2/myteam/based/tags/list');
  t.deepEqual(JSON.parse(local.body.toString()).tags, ['v1']);
  const again = await skopeoPull(mirror.host, 'myteam/based:v1');
  t.is(again.code, 0, again.stderr);
});

test('a push into a mirrored namespace (path prefix or ?ns=) is refused with 403 DENIED and a clear message', async (t) => {
  for (const path of [
    '/v2/ghcr.io/org/app/blobs/uploads/',
    '/v2/org/app/blobs/uploads/?ns=ghcr.io',
    '/v2/docker.io/library/busybox/blobs/uploads/',
    '/v2/library/busybox/blobs/uploads/?ns=docker.io',
  ]) {
    const r = await request(mirror.url, 'POST', path, { headers: { 'Content-Length': 0 } });
    t.is(r.status, 403, `${path}: ${r.status} ${r.body}`);
    t.is(r.code, 'DENIED', path);
    t.regex(r.body.toString(), /mirror|upstream|read-only|cannot push|not allowed/i, `${path}: the message says why: ${r.body}`);
  }
  const manifest = await request(mirror.url, 'PUT', '/v2/ghcr.io/org/app/manifests/v2', {
    headers: { 'Content-Type': MediaType.ociManifest },
    body: orgApp.manifest,
  });
  t.is(manifest.status, 403, `manifest PUT: ${manifest.body}`);
  t.is(manifest.code, 'DENIED');
  const store = await Store.open(tempDir('mirror-deny-src-'));
  const image = await smallImage('denied', 'org/app');
  for (const b of image.blobs) await store.blobs.put(b.bytes);
  await store.blobs.put(image.manifest);
  const layout = tempDir('mirror-deny-layout-');
  await exportOciLayout(store.blobs, layout, [{ digest: image.digest as never, mediaType: MediaType.ociManifest, size: image.manifest.length, tag: 'v1' }]);
  const push = await runFor(
    'skopeo',
    ['copy', '--quiet', '--retry-times', '0', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${mirror.host}/ghcr.io/org/app:denied`],
    60_000,
    { CONTAINERS_REGISTRIES_CONF: '/dev/null' },
  );
  t.not(push.code, 0);
  t.log(`skopeo push into ghcr.io/: ${push.stderr.trim()}`);
  t.regex(push.stderr, /denied/i);
  t.is(ghcr.proxy.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD').length, 0, 'nothing was written upstream');
});

test('mirror metrics are by upstream', async (t) => {
  t.is(await digestOf('/v2/ghcr.io/org/app/manifests/v1'), orgApp.digest);
  t.is(await digestOf('/v2/busybox/manifests/latest'), hub.busybox.digest);
  const text = await (await fetch(`${mirror.url}/metrics`)).text();
  t.regex(text, /tsbuild_mirror_requests_total\{[^}]*upstream="ghcr.io"/);
  t.regex(text, /tsbuild_mirror_requests_total\{[^}]*upstream="docker.io"/);
  t.regex(text, /tsbuild_mirror_upstream_bytes_total\{[^}]*upstream="ghcr.io"/);
  t.regex(text, /# TYPE tsbuild_mirror_upstream_errors_total counter/);
});

test('the CLI: tsbuild registry --mirror docker.io=URL --mirror ghcr.io=URL routes to both', async (t) => {
  const cli = await startMirror({
    via: 'cli',
    upstreams: [
      { registry: 'docker.io', url: hub.url },
      { registry: 'ghcr.io', url: ghcr.url },
    ],
  });
  t.teardown(() => cli.close());
  const busybox = await skopeoPull(cli.host, 'busybox:latest');
  t.is(busybox.code, 0, `${busybox.stderr}\n${cli.logs()}`);
  t.deepEqual(layoutProblems(busybox.dir, hub.busybox), []);
  const app = await skopeoPull(cli.host, 'ghcr.io/org/app:v1');
  t.is(app.code, 0, `${app.stderr}\n${cli.logs()}`);
  t.deepEqual(layoutProblems(app.dir, orgApp), []);
});

test('the YAML config: mirrors: and mirror: sections (tag-ttl, timeouts, default-upstream)', async (t) => {
  const yaml = await startMirror({
    via: 'yaml',
    upstreams: [
      { registry: 'docker.io', url: hub.url, tagTtlMs: 0 },
      { registry: 'ghcr.io', url: ghcr.url, tagTtlMs: 60_000 },
    ],
    defaultUpstream: 'ghcr.io',
    revalidateTimeoutMs: 500,
    upstreamTimeoutMs: 5000,
  });
  t.teardown(() => yaml.close());
  // default-upstream ghcr.io: a plain name goes there.
  const plain = await getManifest(yaml.url, '/v2/library/busybox/manifests/latest');
  t.is(plain.status, 200, `${plain.body}\n${yaml.logs()}`);
  t.is(plain.headers['docker-content-digest'], ghcr.busybox.digest);
  const hubBusybox = await getManifest(yaml.url, '/v2/docker.io/library/busybox/manifests/latest');
  t.is(hubBusybox.headers['docker-content-digest'], hub.busybox.digest);
  // docker.io's tag-ttl 0: every tag request revalidates with a HEAD.
  hub.proxy.reset();
  await getManifest(yaml.url, '/v2/docker.io/library/busybox/manifests/latest');
  t.true(
    hub.proxy.requests.some((r) => r.method === 'HEAD' && r.url.includes('/library/busybox/manifests/latest')),
    'tag-ttl 0 revalidates',
  );
  // ghcr.io's tag-ttl 60 s: not asked again.
  ghcr.proxy.reset();
  await getManifest(yaml.url, '/v2/library/busybox/manifests/latest');
  t.deepEqual(
    ghcr.proxy.requests.map((r) => `${r.method} ${r.url}`),
    [],
    'within tag-ttl the upstream is not asked',
  );
});
