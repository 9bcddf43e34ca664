/**
 * Garbage collection on S3 with several replicas serving (issue 16), coordinated through Redis
 * (store/shared-gc-claims.ts): three `tsbuild registry` replicas on one bucket prefix and Redis behind
 * haproxy, and GCs run by `tsbuild registry garbage-collect`, by this process, by a process SIGKILLed
 * midway, and by the replicas themselves (`gc.interval`). Skipped with the reason without Ceph RGW and
 * Redis (scripts/scaleout.sh), failing under CI=true.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { digestHex, digestOf, MediaType, type Digest } from '../oci/index.js';
import { openScaleout, type Scaleout } from '../registry/repository/scaleout.js';
import { collectGarbage, PathNotFoundError } from '../store/index.js';
import { S3Driver } from '../store/driver/s3-driver.js';
import { withDeadline } from './helpers/deadline.js';
import { call, pushBlob, pushImage, type TestRegistry } from './helpers/registry-http.js';
import { startReplicaSet, type ReplicaSet } from './helpers/replicas.js';
import { testWithScaleout } from './helpers/scaleout.js';
import { tempDir } from './helpers/temp.js';

const { test, peers } = await testWithScaleout();
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const STORE_INDEX = new URL('../store/index.js', import.meta.url).href;
const SCALEOUT = new URL('../registry/repository/scaleout.js', import.meta.url).href;

let set: ReplicaSet;
let driver: S3Driver;
/** The balancer as the registry helpers' target. */
let lb: TestRegistry;
test.before(async () => {
  set = await startReplicaSet(peers!, 3);
  driver = new S3Driver({ ...peers!.s3, rootDirectory: set.rootDirectory });
  lb = { call: (m, p, o) => call(set.url, m, p, o) } as TestRegistry;
});
test.after.always(async () => {
  for (const r of set?.replicas ?? []) if (r.process.exitCode !== null) console.error(`replica ${r.port} exited ${r.process.exitCode}: ${r.log()}`);
  driver?.client.destroy();
  await set?.stop();
});

/** Whether the blob's object is in the bucket (asked of S3 itself, not of a replica). */
async function inBucket(digest: Digest): Promise<boolean> {
  try {
    await driver.stat(`blobs/sha256/${digestHex(digest)}`);
    return true;
  } catch (e) {
    if (e instanceof PathNotFoundError) return false;
    throw e;
  }
}

/** `tsbuild registry garbage-collect` on the replicas' config (`--config FILE`, or distribution's form: the file as the argument). */
function gcCli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const config = args[0] === 'positional' ? [set.config] : ['--config', set.config];
  if (args[0] === 'positional') args.shift();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'registry', 'garbage-collect', ...config, '--storage', tempDir('gc-cli-'), ...args], {
      env: { ...process.env, ...peers!.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function openHere(): Promise<Scaleout> {
  return openScaleout({ s3: { ...peers!.s3, rootDirectory: set.rootDirectory }, redisUrl: peers!.redisUrl, root: tempDir('gc-here-') });
}

function manifestOver(config: Digest, configSize: number, layer: Digest, layerSize: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: config, size: configSize },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: layer, size: layerSize }],
    }),
  );
}

/** Pulls `name:tag` through the balancer three times (so through each replica) and checks every byte. */
async function pullsExactly(
  t: { is: (a: unknown, b: unknown, m?: string) => void },
  name: string,
  tag: string,
  manifest: Buffer,
  layer: Buffer,
): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const m = await lb.call('GET', `/v2/${name}/manifests/${tag}`, { headers: { Accept: MediaType.ociManifest } });
    t.is(m.status, 200, `${name}:${tag} manifest`);
    t.is(digestOf(m.body), digestOf(manifest));
    const l = await lb.call('GET', `/v2/${name}/blobs/${digestOf(layer)}`);
    t.is(l.status, 200, `${name}:${tag} layer`);
    t.is(digestOf(l.body), digestOf(layer));
  }
}

test.serial('garbage-collect beside three serving replicas deletes from the bucket exactly what nothing holds', async (t) => {
  const kept = await pushImage(lb, 'gc/kept', 'v1', 'kept');
  const gone = await pushImage(lb, 'gc/gone', 'v1', 'gone');
  const orphan = await pushBlob(lb, 'gc/orphan', randomBytes(3000));
  t.is((await lb.call('DELETE', `/v2/gc/gone/manifests/${gone.digest}`)).status, 202);
  for (const d of [kept.digest, kept.config, kept.layer, gone.digest, gone.config, gone.layer, orphan]) t.true(await inBucket(d));

  const dry = await gcCli('--grace-period', '0s', '--dry-run');
  t.is(dry.code, 0, dry.stderr);
  t.true(await inBucket(gone.layer), 'a dry run deletes nothing');
  const run = await gcCli('--grace-period', '0s');
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /4 blobs and 0 manifests deleted/);
  for (const d of [gone.digest, gone.config, gone.layer, orphan]) t.false(await inBucket(d), `${d} deleted`);
  for (const d of [kept.digest, kept.config, kept.layer]) t.true(await inBucket(d), `${d} kept`);
  await pullsExactly(t, 'gc/kept', 'v1', kept.bytes, Buffer.from('layer kept'));
  t.is((await lb.call('GET', `/v2/gc/gone/blobs/${gone.layer}`)).status, 404);
  t.is((await lb.call('HEAD', `/v2/gc/orphan/blobs/${orphan}`)).status, 404);
  // the same bytes pushed again come back whole
  t.is(await pushBlob(lb, 'gc/orphan', Buffer.from('layer gone')), gone.layer);
  t.true(await inBucket(gone.layer));
});

test.serial(
  'writers on the replicas keep the blobs a GC elsewhere has claimed; a second GC meanwhile is refused in one line, or waits with --wait',
  async (t) => {
    const mounted = randomBytes(4000);
    const reuploaded = randomBytes(5000);
    const unused = randomBytes(6000);
    const [m, r, u] = [await pushBlob(lb, 'gc/src', mounted), await pushBlob(lb, 'gc/src', reuploaded), await pushBlob(lb, 'gc/src', unused)];
    const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    const here = await openHere();
    let manifest: Buffer = Buffer.alloc(0);
    try {
      let second: Awaited<ReturnType<typeof gcCli>> | undefined;
      let waiter: ReturnType<typeof gcCli> | undefined;
      const report = await collectGarbage(here.store, {
        graceMs: 0,
        registryOnly: true,
        // before the GC's second mark: a cross-repository mount and a manifest over it, through the balancer
        onClaimed: async (count) => {
          t.true(count >= 3);
          second = await gcCli('--grace-period', '0s');
          waiter = gcCli('positional', '--grace-period', '1h', '--wait', '60s');
          await new Promise((r) => setTimeout(r, 1500));
          const mount = await lb.call('POST', `/v2/gc/dst/blobs/uploads/?mount=${m}&from=gc/src`);
          t.is(mount.status, 201, 'the claimed blob is mounted');
          const config = await pushBlob(lb, 'gc/dst', configBytes);
          manifest = manifestOver(config, Buffer.byteLength(configBytes), m, mounted.length);
          const put = await lb.call('PUT', '/v2/gc/dst/manifests/v1', { headers: { 'Content-Type': MediaType.ociManifest }, body: manifest });
          t.is(put.status, 201, put.body.toString());
        },
        // after it: the same bytes uploaded again (the commit finds them in place and confirms them)
        onMarkedAgain: async () => {
          t.is(await pushBlob(lb, 'gc/again', reuploaded), r);
        },
      });
      t.is(second?.code, 1);
      t.regex(second?.stderr ?? '', /another garbage collection is running on this store .*\(or pass --wait DURATION\)/);
      t.is(second?.stderr.trim().split('\n').length, 1, 'one line');
      t.true(report.deletedDigests.includes(u), 'the blob nobody wanted is deleted');
      t.false(report.deletedDigests.includes(m) || report.deletedDigests.includes(r), 'the wanted ones are not');
      t.false(await inBucket(u));
      t.true(await inBucket(m));
      t.true(await inBucket(r));
      await pullsExactly(t, 'gc/dst', 'v1', manifest, mounted);
      const got = await lb.call('GET', `/v2/gc/again/blobs/${r}`);
      t.is(got.status, 200);
      t.true(got.body.equals(reuploaded));
      const waited = await waiter!;
      t.is(waited.code, 0, waited.stderr);
      t.regex(waited.stderr, /another garbage collection is running on this store \(.+\): waiting up to 60s/);
      t.regex(waited.stdout, /blobs marked/);
    } finally {
      await here.close();
    }
  },
);

test.serial('a GC SIGKILLed midway blocks no push; the next GC, once its lock lapses, clears its claims and loses nothing reachable', async (t) => {
  const held = randomBytes(7000);
  const h = await pushBlob(lb, 'gc/crash', held);
  const idle = await pushBlob(lb, 'gc/crash', randomBytes(8000));
  const script = `
    const { openScaleout } = await import(${JSON.stringify(SCALEOUT)});
    const { collectGarbage } = await import(${JSON.stringify(STORE_INDEX)});
    const so = await openScaleout(JSON.parse(process.env.GC_SCALEOUT));
    setInterval(() => undefined, 1000);
    await collectGarbage(so.store, { graceMs: 0, registryOnly: true, onClaimed: async (n) => { process.stdout.write('claimed ' + n + '\\n'); await new Promise(() => {}); } });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: {
      ...process.env,
      ...peers!.env,
      GC_SCALEOUT: JSON.stringify({ s3: { ...peers!.s3, rootDirectory: set.rootDirectory }, redisUrl: peers!.redisUrl, root: tempDir('gc-killed-') }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('claimed') && resolve());
      child.on('exit', (code) => reject(new Error(`the GC exited (${code}) before claiming: ${err}`)));
    }),
    30_000,
    'the GC to claim',
  );
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));

  // Its claims bind nobody: a manifest over a claimed blob is pushed at once.
  const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, crash: true });
  const config = await pushBlob(lb, 'gc/crash', configBytes);
  const put = await withDeadline(
    lb.call('PUT', '/v2/gc/crash/manifests/v1', {
      headers: { 'Content-Type': MediaType.ociManifest },
      body: manifestOver(config, Buffer.byteLength(configBytes), h, held.length),
    }),
    15_000,
    'a manifest push beside a killed GC',
  );
  t.is(put.status, 201);

  // Its lock lapses (LOCK_MS, 30 s); then a GC runs, puts back what was left claimed, and deletes only the idle blob.
  let run: Awaited<ReturnType<typeof gcCli>> | undefined;
  for (const until = Date.now() + 60_000; Date.now() < until; await new Promise((r) => setTimeout(r, 2000))) {
    run = await gcCli('--grace-period', '0s');
    if (run.code === 0 || !/another garbage collection/.test(run.stderr)) break;
  }
  t.is(run?.code, 0, run?.stderr);
  t.regex(run?.stdout ?? '', /an interrupted GC had set aside were put back first/);
  t.true(await inBucket(h));
  t.false(await inBucket(idle));
  const got = await lb.call('GET', `/v2/gc/crash/blobs/${h}`);
  t.true(got.body.equals(held));
});

test.serial('replicas with gc.interval collect on their own, one at a time, while 16 parallel pushes go on and keep every byte', async (t) => {
  const periodic = await startReplicaSet(peers!, 3, { configLines: ['gc:', '  interval: 1s', '  grace-period: 3s'] });
  const plb = { call: (m, p, o) => call(periodic.url, m, p, o) } as TestRegistry;
  const pdriver = new S3Driver({ ...peers!.s3, rootDirectory: periodic.rootDirectory });
  try {
    const orphan = await pushBlob(plb, 'gc/periodic', randomBytes(2000));
    const images = await Promise.all(Array.from({ length: 16 }, (_, i) => pushImage(plb, `gc/busy${i % 4}`, `t${i}`, `busy-${i}`)));
    const path = `blobs/sha256/${digestHex(orphan)}`;
    const gone = async () =>
      pdriver.stat(path).then(
        () => false,
        (e: unknown) => e instanceof PathNotFoundError,
      );
    let collected = false;
    for (const until = Date.now() + 30_000; Date.now() < until && !collected; await new Promise((r) => setTimeout(r, 500))) collected = await gone();
    t.true(collected, 'the orphan was collected by a replica');
    const last = JSON.parse((await pdriver.getContent('gc/last.json')).toString('utf8')) as { startedAt: number };
    t.true(Date.now() - last.startedAt < 60_000);
    for (const [i, img] of images.entries()) {
      const m = await plb.call('GET', `/v2/gc/busy${i % 4}/manifests/t${i}`, { headers: { Accept: MediaType.ociManifest } });
      t.is(m.status, 200);
      t.true(m.body.equals(img.bytes));
      const l = await plb.call('GET', `/v2/gc/busy${i % 4}/blobs/${img.layer}`);
      t.is(l.body.toString(), `layer busy-${i}`);
    }
    for (const r of periodic.replicas) {
      t.is(r.process.exitCode, null, r.log());
      t.notRegex(r.log(), /garbage collection failed/);
    }
  } finally {
    pdriver.client.destroy();
    await periodic.stop();
  }
});
