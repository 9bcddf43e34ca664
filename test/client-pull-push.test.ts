import test from 'ava';
import { testWith } from './helpers/tools.js';
import { startDistribution, type RunningRegistry } from './helpers/distribution.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { tempDir } from './helpers/temp.js';
import { run } from './helpers/run.js';
import { Store, resolveImage } from '../store/index.js';
import { RegistryClient, NotFoundError } from '../registry/client/index.js';

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
  const pushed = await client.pushImage(source, `${registry!.host}/tests/busybox:v1`);
  t.is(pushed.digest, image.digest);
  t.is(pushed.uploaded, 2);
  // skopeo (a real client) sees what we pushed
  const inspect = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${registry!.host}/tests/busybox:v1`]);
  t.is(inspect.code, 0, inspect.stderr);
  t.is(JSON.parse(inspect.stdout).Digest, image.digest);

  const dest = await Store.open(tempDir());
  const pulled = await client.pullImage(dest, `${registry!.host}/tests/busybox:v1`);
  t.is(pulled.digest, image.digest);
  const rec = await dest.images.get(`${registry!.host}/tests/busybox:v1`);
  t.is(rec.digest, image.digest);
  const resolved = await resolveImage(dest.blobs, rec.digest);
  t.deepEqual(resolved.config.rootfs.diff_ids, [image.diffId]);
  t.true(await dest.blobs.has(image.manifest.layers[0]!.digest));
  // a second push finds everything there
  const again = await client.pushImage(source, `${registry!.host}/tests/busybox:v1`);
  t.is(again.existing, 2);
  t.is(again.uploaded, 0);
  client.close();
});

withTools('an unknown image fails with "not found: REF"', async (t) => {
  const client = new RegistryClient({ credentials: anonymous });
  const dest = await Store.open(tempDir());
  const e = await t.throwsAsync(client.pullImage(dest, `${registry!.host}/tests/nope:v1`));
  t.true(e instanceof NotFoundError);
  t.regex(e!.message, new RegExp(`^not found: ${registry!.host.replace(/\./g, '\\.')}/tests/nope:v1`));
  client.close();
});
