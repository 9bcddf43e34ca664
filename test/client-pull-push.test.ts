import test from 'ava';
import { testWith } from './helpers/tools.js';
import { startDistribution, type RunningRegistry } from './helpers/distribution.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { tempDir } from './helpers/temp.js';
import { run } from './helpers/run.js';
import { Store, resolveImage, exportOciLayout } from '../store/index.js';
import { PassThrough } from 'node:stream';
import { MediaType, parseNormalized, parsePlatform } from '../oci/index.js';
import { RegistryClient, NotFoundError, headManifest, openBlob, pullImage, pushImage } from '../registry/client/index.js';
import { ProgressPrinter } from '../cli/progress-printer.js';

const withTools = testWith(['docker-registry', 'skopeo']);
let registry: RegistryRunning | undefined;
type RegistryRunning = RunningRegistry;

test.before(async () => {
  registry = await startDistribution();
});
test.after.always(async () => {
  await registry?.stop();
});

const anonymous = async () => undefined;

withTools('push then anonymous pull over plain HTTP on loopback', async (t) => {
  const source = await Store.open(tempDir());
  const image = await makeBusyboxImage(source, `${registry!.host}/tests/busybox:v1`);
  const client = new RegistryClient({ credentials: anonymous });
  const pushed = await pushImage(client, source, `${registry!.host}/tests/busybox:v1`);
  t.is(pushed.digest, image.digest);
  t.is(pushed.uploaded, 2);
  // skopeo (a real client) sees what we pushed
  const inspect = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${registry!.host}/tests/busybox:v1`]);
  t.is(inspect.code, 0, inspect.stderr);
  t.is(JSON.parse(inspect.stdout).Digest, image.digest);

  const dest = await Store.open(tempDir());
  const pulled = await pullImage(client, dest, `${registry!.host}/tests/busybox:v1`);
  t.is(pulled.digest, image.digest);
  const rec = await dest.images.get(`${registry!.host}/tests/busybox:v1`);
  t.is(rec.digest, image.digest);
  const resolved = await resolveImage(dest.blobs, rec.digest);
  t.deepEqual(resolved.config.rootfs.diff_ids, [image.diffId]);
  t.true(await dest.blobs.has(image.manifest.layers[0]!.digest));
  // a second push finds everything there
  const again = await pushImage(client, source, `${registry!.host}/tests/busybox:v1`);
  t.is(again.existing, 2);
  t.is(again.uploaded, 0);
  client.close();
});

withTools('an unknown image fails with "not found: REF"', async (t) => {
  const client = new RegistryClient({ credentials: anonymous });
  const dest = await Store.open(tempDir());
  const e = await t.throwsAsync(pullImage(client, dest, `${registry!.host}/tests/nope:v1`));
  t.true(e instanceof NotFoundError);
  t.regex(e!.message, new RegExp(`^not found: ${registry!.host.replace(/\./g, '\\.')}/tests/nope:v1`));
  client.close();
});

withTools('multi-platform index: pushed by digest and tag, pulled for the default and a chosen platform', async (t) => {
  const source = await Store.open(tempDir());
  const base = await makeBusyboxImage(source, 'scratch/base:latest');
  const manifests = [];
  for (const architecture of ['arm64', 'amd64']) {
    const cfg = await source.blobs.put(JSON.stringify({ ...base.config, architecture }));
    const manifest = { ...base.manifest, config: { ...base.manifest.config, digest: cfg.digest, size: cfg.size } };
    const m = await source.blobs.put(JSON.stringify(manifest));
    manifests.push({ mediaType: MediaType.ociManifest, digest: m.digest, size: m.size, platform: { os: 'linux', architecture } });
  }
  const index = await source.blobs.put(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
  const name = `${registry!.host}/tests/multi:v1`;
  await source.images.set(parseNormalized(name), index.digest, MediaType.ociIndex);
  const client = new RegistryClient({ credentials: anonymous, concurrency: 2 });
  const pushed = await pushImage(client, source, name, [name, `${registry!.host}/tests/multi@${index.digest}`], { chunkSize: 256 * 1024 });
  t.deepEqual(pushed.pushed, [name, `${registry!.host}/tests/multi@${index.digest}`]);
  t.is(pushed.uploaded, 3); // two configs, one shared layer (sent in 256 KiB chunks)
  t.regex(registry!.logs(), /"PATCH \/v2\/tests\/multi\/blobs\/uploads\/[^ ]+ HTTP\/1.1" 202/);
  const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`]);
  t.is(JSON.parse(raw.stdout).manifests.length, 2);

  const dest = await Store.open(tempDir());
  const amd = await pullImage(client, dest, name);
  t.is(amd.indexDigest, index.digest);
  t.is(amd.digest, manifests[1]!.digest);
  const arm = await pullImage(client, dest, `${registry!.host}/tests/multi@${index.digest}`, { platform: parsePlatform('linux/arm64') });
  t.is(arm.digest, manifests[0]!.digest);
  t.is(arm.downloadedBytes, arm.config.size); // the shared layer was already there
  const e = await t.throwsAsync(pullImage(client, dest, name, { platform: parsePlatform('linux/s390x') }));
  t.regex(e!.message, /no image for platform linux\/s390x/);
  client.close();
});

withTools('progress: plain lines when not on a terminal', async (t) => {
  const source = await Store.open(tempDir());
  await makeBusyboxImage(source, `${registry!.host}/tests/progress:v1`);
  let out = '';
  const sink = Object.assign(new PassThrough(), { isTTY: false });
  sink.on('data', (d) => (out += d));
  const printer = new ProgressPrinter(sink);
  const client = new RegistryClient({ credentials: anonymous, onProgress: printer.listener });
  await pushImage(client, source, `${registry!.host}/tests/progress:v1`);
  await pullImage(client, await Store.open(tempDir()), `${registry!.host}/tests/progress:v1`);
  printer.finish();
  t.regex(out, /^[a-f0-9]{12}: Pushing$/m);
  t.regex(out, /^[a-f0-9]{12}: Downloading$/m);
  t.regex(out, /^[a-f0-9]{12}: Done \d/m);
  t.false(out.includes('\u001b['), 'no terminal escape sequences');
  client.close();
});

withTools("headManifest and openBlob (the mirror's upstream calls)", async (t) => {
  const source = await Store.open(tempDir());
  const image = await makeBusyboxImage(source, `${registry!.host}/tests/upstream:v1`);
  const client = new RegistryClient({ credentials: anonymous });
  await pushImage(client, source, `${registry!.host}/tests/upstream:v1`);
  const head = await headManifest(client, parseNormalized(`${registry!.host}/tests/upstream:v1`));
  t.is(head.digest, image.digest);
  t.is(head.mediaType, MediaType.ociManifest);
  const layer = image.manifest.layers[0]!;
  const opened = await openBlob(client, parseNormalized(`${registry!.host}/tests/upstream`), layer.digest, { offset: 1000 });
  t.is(opened.offset, 1000);
  t.is(opened.size, layer.size);
  const chunks: Buffer[] = [];
  for await (const c of opened.stream) chunks.push(c as Buffer);
  t.true(Buffer.concat(chunks).equals(image.layer.subarray(1000)));
  client.close();
});

withTools('interop: pulls a Docker schema 2 image that skopeo pushed, and skopeo pulls what we push', async (t) => {
  const source = await Store.open(tempDir());
  const image = await makeBusyboxImage(source, 'local/busybox:latest');
  const layout = tempDir();
  await exportOciLayout(source.blobs, layout, [{ digest: image.digest, mediaType: MediaType.ociManifest, size: image.manifestBytes.length, tag: 'v1' }]);
  const copy = await run('skopeo', [
    'copy',
    '--quiet',
    '--format',
    'v2s2',
    '--dest-tls-verify=false',
    `oci:${layout}:v1`,
    `docker://${registry!.host}/tests/from-skopeo:v1`,
  ]);
  t.is(copy.code, 0, copy.stderr);
  const client = new RegistryClient({ credentials: anonymous });
  const dest = await Store.open(tempDir());
  const pulled = await pullImage(client, dest, `${registry!.host}/tests/from-skopeo:v1`);
  t.is(pulled.mediaType, MediaType.dockerManifest);
  t.is(pulled.layers[0]!.mediaType, MediaType.dockerLayerGzip);
  const resolved = await resolveImage(dest.blobs, pulled.digest);
  t.deepEqual(resolved.config.rootfs.diff_ids, [image.diffId]);
  // and back: push the Docker-typed image elsewhere, skopeo copies it to an OCI layout
  await pushImage(client, dest, `${registry!.host}/tests/from-skopeo:v1`, `${registry!.host}/tests/roundtrip:v1`);
  const out = tempDir();
  const back = await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${registry!.host}/tests/roundtrip:v1`, `oci:${out}:v1`]);
  t.is(back.code, 0, back.stderr);
  client.close();
});
