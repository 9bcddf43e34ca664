/**
 * Replicas on S3 whose Redis goes away (issue 16): pulls go on from the bucket, pushes answer 503
 * UNAVAILABLE at once, `/healthz` answers at once (degraded, still in the balancer: every replica shares
 * the one Redis), and everything works again when Redis is back. A Redis of the test's own is started and
 * SIGKILLed; the bucket is the one of scripts/scaleout.sh (skipped with the reason without it, failing
 * under CI=true).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { MediaType } from '../oci/index.js';
import { withDeadline } from './helpers/deadline.js';
import { call, pushImage, type TestRegistry } from './helpers/registry-http.js';
import { freePort } from './helpers/distribution.js';
import { startReplicaSet, type ReplicaSet } from './helpers/replicas.js';
import { testWithScaleout } from './helpers/scaleout.js';

const { test, peers } = await testWithScaleout();

let redisPort: number;
let redis: ChildProcess | undefined;
let set: ReplicaSet;
let lb: TestRegistry;

async function startRedis(): Promise<void> {
  const child = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  redis = child;
  for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
    const pong = await new Promise<boolean>((resolve) => {
      const probe = spawn('redis-cli', ['-p', String(redisPort), 'ping'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      probe.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      probe.on('close', () => resolve(out.includes('PONG')));
    });
    if (pong) return;
  }
  throw new Error(`redis-server on port ${redisPort} did not start`);
}

async function killRedis(): Promise<void> {
  const child = redis;
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

test.before(async () => {
  redisPort = await freePort();
  await startRedis();
  set = await startReplicaSet({ ...peers!, redisUrl: `redis://127.0.0.1:${redisPort}` }, 2);
  lb = { call: (m, p, o) => call(set.url, m, p, o) } as TestRegistry;
});
test.after.always(async () => {
  await set?.stop();
  await killRedis();
});

test.serial('with Redis gone, pulls go on from the bucket, pushes get 503 UNAVAILABLE at once, /healthz answers at once; all is back with Redis', async (t) => {
  const image = await pushImage(lb, 'rd/x', 'v1', 'redis-down');
  await killRedis();

  const replica = `http://127.0.0.1:${set.replicas[0]!.port}`;
  await withDeadline(
    (async () => {
      for (let i = 0; i < 4; i++) {
        const m = await lb.call('GET', '/v2/rd/x/manifests/v1', { headers: { Accept: MediaType.ociManifest } });
        t.is(m.status, 200, `tag read ${i}: ${m.body}`);
        t.true(m.body.equals(image.bytes));
        const head = await lb.call('HEAD', `/v2/rd/x/blobs/${image.layer}`);
        t.is(head.status, 200, `blob HEAD ${i}`);
        const layer = await lb.call('GET', `/v2/rd/x/blobs/${image.layer}`);
        t.is(layer.status, 200, `blob GET ${i}`);
        t.is(layer.body.toString(), 'layer redis-down');
      }
    })(),
    20_000,
    'pulls with Redis gone',
  );
  const push = await withDeadline(lb.call('POST', '/v2/rd/y/blobs/uploads/'), 8000, 'a push with Redis gone');
  t.is(push.status, 503);
  t.is(push.code, 'UNAVAILABLE');
  t.regex(push.body.toString(), /Redis/);
  const health = await withDeadline(call(replica, 'GET', '/healthz'), 8000, '/healthz with Redis gone');
  t.is(health.status, 200, 'still in the balancer: every replica shares the one Redis');
  t.regex(health.body.toString(), /degraded/);

  await startRedis();
  await withDeadline(
    (async () => {
      for (;;) {
        const h = await call(replica, 'GET', '/healthz');
        if (!/degraded/.test(h.body.toString())) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    })(),
    15_000,
    'the replicas to reconnect',
  );
  // a push now succeeds through either replica, and the tag is seen by both
  let again: Awaited<ReturnType<typeof pushImage>> | undefined;
  for (const until = Date.now() + 10_000; !again && Date.now() < until; ) {
    again = await pushImage(lb, 'rd/y', 'v1', 'redis-back').catch(async () => {
      await new Promise((r) => setTimeout(r, 300));
      return undefined;
    });
  }
  t.truthy(again, 'a push after Redis is back');
  for (let i = 0; i < 2; i++) {
    const m = await lb.call('GET', '/v2/rd/y/manifests/v1', { headers: { Accept: MediaType.ociManifest } });
    t.is(m.status, 200);
    t.true(m.body.equals(again!.bytes));
  }
});
