/**
 * Scale-out with real clients and real sizes (issue 16): docker push, pull and run through haproxy in front
 * of three replicas on S3 (Ceph RGW) + Redis; a 1 GiB push through a replica whose heap is capped at
 * 256 MiB keeps its memory flat. Peers from scripts/scaleout.sh; docker and skopeo from scripts/setup.sh.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { MediaType } from '../oci/index.js';
import { Store, exportOciLayout } from '../store/index.js';
import { makeBusyboxImage } from './helpers/busybox-image.js';
import { call } from './helpers/registry-http.js';
import { startReplicaSet, type ReplicaSet } from './helpers/replicas.js';
import { run } from './helpers/run.js';
import { testWithScaleout } from './helpers/scaleout.js';
import { tempDir } from './helpers/temp.js';
import { dockerAvailable, findTool } from './helpers/tools.js';

const { test, peers } = await testWithScaleout();
const DOCKER = '/usr/bin/docker';

let set: ReplicaSet;
test.before(async () => {
  set = await startReplicaSet(peers!, 3);
});
test.after.always(async () => {
  await set?.stop();
});

async function ok(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

test.serial('docker push, then docker pull and run, through the balancer', async (t) => {
  const missing = [!dockerAvailable() && 'dockerd', !findTool('skopeo') && 'skopeo'].filter(Boolean);
  if (missing.length > 0) {
    if (process.env.CI) t.fail(`missing under CI: ${missing.join(', ')} (scripts/setup.sh, scripts/services.sh)`);
    else t.log(`skipped: needs ${missing.join(', ')}`);
    if (!process.env.CI) t.pass();
    return;
  }
  const store = await Store.open(tempDir('scaleout-docker-store-'));
  const fixture = await makeBusyboxImage(store, 'busybox:latest');
  const layout = tempDir('scaleout-docker-layout-');
  await exportOciLayout(store.blobs, layout, [{ digest: fixture.digest, mediaType: MediaType.ociManifest, size: fixture.manifestBytes.length, tag: 'latest' }]);
  const local = `tsbuild-scaleout/busybox:${process.pid}`;
  const remote = `${set.host}/scaleout/docker:v1`;
  await ok('skopeo', ['copy', `oci:${layout}:latest`, `docker-daemon:${local}`]);
  t.teardown(async () => {
    await run(DOCKER, ['rmi', '-f', local, remote]);
  });
  await ok(DOCKER, ['tag', local, remote]);
  const push = await ok(DOCKER, ['push', remote]);
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push)?.[1];
  t.truthy(digest, push);
  for (let i = 0; i < 3; i++) {
    const head = await call(set.url, 'HEAD', '/v2/scaleout/docker/manifests/v1', { headers: { Accept: MediaType.dockerManifest } });
    t.is(head.headers['docker-content-digest'], digest);
  }
  await ok(DOCKER, ['rmi', '-f', local, remote]);
  const pull = await ok(DOCKER, ['pull', remote]);
  t.true(pull.includes(digest!), pull);
  const out = await ok(DOCKER, ['run', '--rm', '--network', 'none', remote, '/bin/echo', 'pulled through the replicas']);
  t.is(out.trim(), 'pulled through the replicas');
});

/** Resident memory of a process, MiB (Linux /proc). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

test.serial('a 1 GiB push through a replica started with --max-old-space-size=256 keeps its memory flat', async (t) => {
  const replica = await set.startReplica(undefined, ['--max-old-space-size=256']);
  t.teardown(() => {
    replica.process.kill('SIGTERM');
  });
  const base = `http://127.0.0.1:${replica.port}`;
  const start = await call(base, 'POST', '/v2/scaleout/huge/blobs/uploads/');
  t.is(start.status, 202);
  const size = 1024 << 20;
  const block = randomBytes(1 << 20);
  const hash = createHash('sha256');
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(replica.process.pid!))), 100);
  const idle = rssMiB(replica.process.pid!);
  try {
    // one streamed PATCH, as docker sends a layer
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(start.headers.location!, base);
      const req = http.request(
        { host: url.hostname, port: url.port, method: 'PATCH', path: url.pathname, headers: { 'Content-Type': 'application/octet-stream' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        },
      );
      req.on('error', reject);
      let sent = 0;
      const more = () => {
        while (sent < size) {
          const chunk = Buffer.from(block);
          chunk.writeUInt32BE(sent >>> 20, 0);
          hash.update(chunk);
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', more);
        }
        req.end();
      };
      more();
    });
    t.is(status, 202);
    const digest = `sha256:${hash.digest('hex')}`;
    const put = await call(base, 'PUT', `${start.headers.location}?digest=${digest}`);
    t.is(put.status, 201, put.body.toString());
    const head = await call(set.url, 'HEAD', `/v2/scaleout/huge/blobs/${digest}`);
    t.is(head.headers['content-length'], String(size));
    // read back through the balancer: the same bytes
    const check = createHash('sha256');
    await new Promise<void>((resolve, reject) => {
      http.get(`${set.url}/v2/scaleout/huge/blobs/${digest}`, (res) => {
        res.on('data', (c: Buffer) => check.update(c));
        res.on('end', resolve);
        res.on('error', reject);
      });
    });
    t.is(`sha256:${check.digest('hex')}`, digest);
  } finally {
    clearInterval(sampler);
  }
  t.log(`replica RSS: ${idle.toFixed(0)} MiB idle, ${peak.toFixed(0)} MiB peak during a 1 GiB push`);
  // The heap is capped at 256 MiB; buffers live outside it: at most a part (8 MiB) and a batch per upload.
  t.true(peak < 400, `peak RSS ${peak.toFixed(0)} MiB`);
  t.is(replica.process.exitCode, null);
});
