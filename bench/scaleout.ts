/**
 * `npm run bench -- scaleout` (issue 16): three tsbuild replicas and three distribution 2.8 replicas
 * (Debian's docker-registry, its `s3` driver and redis blob-descriptor cache) on the same Ceph RGW and
 * Redis (scripts/scaleout.sh), each trio behind its own haproxy (roundrobin, http-server-close, health
 * checks), measured in one run, alternating which goes first:
 *   - push of a 128 MiB blob (docker's sequence: POST, one streamed PATCH, PUT ?digest=)
 *   - 8 parallel pushes of 16 MiB
 *   - pull of the 128 MiB blob (curl as the client; 3 per round)
 *   - manifest GETs/s by tag (wrk, 2 threads, 32 connections)
 * and, for the choice store/shared-ingests.ts makes, the two ways to verify an upload whose PATCHes
 * went to several replicas: hashing every append with a hasher whose state Redis can keep (hash-wasm
 * save()/load()), or hashing with OpenSSL where the state is at hand and reading the bytes back from S3
 * at commit otherwise.
 * Targets: ≤ 1.0× distribution's time on blobs, ≥ 1.5× its GETs/s.
 * Knobs: BENCH_SCALEOUT_ROUNDS (default 4), BENCH_SCALEOUT_LOAD_SECONDS (default 8).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createSHA256 } from 'hash-wasm';
import { S3Driver } from '../store/driver/s3-driver.js';
import { freePort } from '../test/helpers/distribution.js';
import { row, time } from './_measure.js';
import { curlPull, pushManifest as pushSmallImage, request as benchRequest, makeFile } from './_peers.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../scripts/scaleout.sh', import.meta.url));
const ENV_FILE = process.env.TSBUILD_SCALEOUT_ENV ?? '/tmp/scaleout/env';
const ROUNDS = Number(process.env.BENCH_SCALEOUT_ROUNDS ?? 4);
const LOAD_SECONDS = Number(process.env.BENCH_SCALEOUT_LOAD_SECONDS ?? 8);
const BIG = 128 << 20;
const SMALL = 16 << 20;
const PARALLEL = 8;
/** Pulls per round per peer, alternating which goes first: a pull takes a fraction of a second, so one sample per round is at the mercy of whatever else the machine runs. */
const PULLS = 3;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function waitHttp(url: string, child: ChildProcess, log: () => string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited (${child.exitCode}): ${log().slice(-2000)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new Error(`${url} not ready after ${timeoutMs} ms: ${log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const children: ChildProcess[] = [];
function start(cmd: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; log: () => string } {
  let log = '';
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  children.push(child);
  return { child, log: () => log };
}

function haproxyConfig(port: number, backends: number[], health: string): string {
  return [
    'global',
    '  maxconn 8192',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 300s',
    '  timeout server 300s',
    '  option http-server-close',
    'frontend registry',
    `  bind 127.0.0.1:${port}`,
    '  default_backend replicas',
    'backend replicas',
    '  balance roundrobin',
    `  option httpchk GET ${health}`,
    '  timeout check 2s',
    '  default-server inter 1s fall 3 rise 1',
    ...backends.map((p, i) => `  server r${i} 127.0.0.1:${p} check`),
    '',
  ].join('\n');
}

interface Peer {
  name: string;
  url: string;
}

async function balanced(name: string, dir: string, ports: number[], health: string): Promise<Peer> {
  const port = await freePort();
  const cfg = join(dir, `${name}-haproxy.cfg`);
  writeFileSync(cfg, haproxyConfig(port, ports, health));
  const h = start('/usr/sbin/haproxy', ['-f', cfg, '-db'], process.env);
  await waitHttp(`http://127.0.0.1:${port}/v2/`, h.child, h.log);
  return { name, url: `http://127.0.0.1:${port}` };
}

async function startTsbuild(dir: string, env: Record<string, string>, prefix: string): Promise<Peer> {
  const config = join(dir, 'tsbuild.yaml');
  writeFileSync(
    config,
    `storage:\n  s3:\n    endpoint: ${env.S3_ENDPOINT}\n    bucket: ${env.S3_BUCKET}\n    region: ${env.S3_REGION}\n    root-directory: ${prefix}\n    force-path-style: true\nredis:\n  url: ${env.REDIS_URL}\nlog:\n  level: warn\n`,
  );
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const r = start(process.execPath, [CLI, 'registry', '--config', config, '--listen', `127.0.0.1:${port}`, '--storage', join(dir, `tsbuild-root-${i}`)], {
      ...process.env,
      ...env,
    });
    await waitHttp(`http://127.0.0.1:${port}/healthz`, r.child, r.log);
    ports.push(port);
  }
  return balanced('tsbuild', dir, ports, '/healthz');
}

async function startDistribution(dir: string, env: Record<string, string>, prefix: string): Promise<Peer> {
  const redis = new URL(env.REDIS_URL!);
  const ports: number[] = [];
  // Its AWS SDK panics when AWS_CA_BUNDLE is set (issue 16): not in its environment.
  const { AWS_CA_BUNDLE: _ignored, ...childEnv } = { ...process.env, ...env };
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const config = join(dir, `distribution-${i}.yml`);
    writeFileSync(
      config,
      `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: ${env.S3_ACCESS_KEY_ID}
    secretkey: ${env.S3_SECRET_ACCESS_KEY}
    region: ${env.S3_REGION}
    regionendpoint: ${env.S3_ENDPOINT}
    bucket: ${env.S3_BUCKET}
    rootdirectory: /${prefix}
    secure: false
    v4auth: true
  redirect:
    disable: true
  cache:
    blobdescriptor: redis
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
redis:
  addr: ${redis.hostname}:${redis.port}
http:
  addr: 127.0.0.1:${port}
  secret: tsbuild-bench-shared-secret
`,
    );
    const r = start('/usr/bin/docker-registry', ['serve', config], childEnv);
    await waitHttp(`http://127.0.0.1:${port}/v2/`, r.child, r.log);
    ports.push(port);
  }
  return balanced('distribution', dir, ports, '/v2/');
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const request = (...args: [string, string, Record<string, string | number>?, (Buffer | NodeJS.ReadableStream)?]) => benchRequest(agent, ...args);

function expect(what: string, r: { status: number; body: string }, want: number): void {
  if (r.status !== want) throw new Error(`${what}: HTTP ${r.status}, expected ${want}: ${r.body.slice(0, 300)}`);
}

/** docker's upload sequence: POST, one streamed PATCH of the whole blob, PUT ?digest=. */
async function pushBlob(base: string, repo: string, file: string, digest: string): Promise<void> {
  const post = await request('POST', `${base}/v2/${repo}/blobs/uploads/`, { 'Content-Length': 0 });
  expect('POST upload', post, 202);
  const patch = await request(
    'PATCH',
    new URL(post.headers.location!, base).toString(),
    { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' },
    createReadStream(file, { highWaterMark: 1 << 20 }),
  );
  expect('PATCH upload', patch, 202);
  const next = new URL(patch.headers.location!, base);
  next.searchParams.set('digest', digest);
  expect('PUT upload', await request('PUT', next.toString(), { 'Content-Length': 0 }), 201);
}

function wrk(url: string): number {
  const r = spawnSync('/usr/bin/wrk', ['-t', '2', '-c', '32', '-d', `${LOAD_SECONDS}s`, '-H', `Accept: ${ACCEPT}`, url], { encoding: 'utf8' });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!m || /Non-2xx/.test(r.stdout)) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function run(): Promise<void> {
  const up = spawnSync('bash', [SCRIPT], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (up.status !== 0) throw new Error('bench scaleout: scripts/scaleout.sh failed; see its message above');
  const env: Record<string, string> = {};
  for (const line of readFileSync(ENV_FILE, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-bench-scaleout-'));
  const stamp = `${Date.now()}`;
  const prefixes = { tsbuild: `bench-tsbuild-${stamp}`, distribution: `bench-distribution-${stamp}` };
  try {
    const peers = [await startTsbuild(dir, env, prefixes.tsbuild), await startDistribution(dir, env, prefixes.distribution)];
    console.log(
      `3 tsbuild replicas behind ${peers[0]!.url}, 3 distribution replicas behind ${peers[1]!.url}; S3 ${env.S3_ENDPOINT}, Redis ${env.REDIS_URL}; ${ROUNDS} rounds`,
    );
    // seconds per operation, per peer
    const times: Record<string, Record<string, number[]>> = { push: {}, parallel: {}, pull: {} };
    for (const op of Object.keys(times)) for (const p of peers) times[op]![p.name] = [];
    let lastBig = '';
    for (let round = 0; round < ROUNDS; round++) {
      const big = join(dir, 'big');
      const bigDigest = await makeFile(big, BIG, round);
      lastBig = bigDigest;
      const smalls = await Promise.all(
        Array.from({ length: PARALLEL }, async (_, i) => ({
          path: join(dir, `small${i}`),
          digest: await makeFile(join(dir, `small${i}`), SMALL, 1000 + round * PARALLEL + i),
        })),
      );
      const order = round % 2 === 0 ? peers : [...peers].reverse();
      for (const p of order) times.push![p.name]!.push(await time(() => pushBlob(p.url, `bench/big${round}`, big, bigDigest)));
      for (const p of order)
        times.parallel![p.name]!.push(await time(() => Promise.all(smalls.map((s, i) => pushBlob(p.url, `bench/r${round}/small${i}`, s.path, s.digest)))));
      for (let i = 0; i < PULLS; i++) {
        for (const p of i % 2 === 0 ? order : [...order].reverse()) {
          times.pull![p.name]!.push(await time(async () => curlPull(p.url, `bench/big${round}`, bigDigest, BIG)));
        }
      }
    }
    // Verification cost per 128 MiB: hash-wasm on the append path vs an S3 read back + OpenSSL at commit.
    const wasm = await createSHA256();
    const block = randomBytes(1 << 20);
    const wasmSeconds = await time(async () => {
      wasm.init();
      for (let i = 0; i < 128; i++) {
        wasm.load(wasm.save()); // a state round trip per MiB is more than an upload needs
        wasm.update(block);
      }
      wasm.digest();
    });
    const opensslSeconds = await time(async () => {
      const h = createHash('sha256');
      for (let i = 0; i < 128; i++) h.update(block);
      h.digest();
    });
    const reader = new S3Driver({
      endpoint: env.S3_ENDPOINT,
      bucket: env.S3_BUCKET ?? 'registry',
      rootDirectory: prefixes.tsbuild,
      accessKeyId: env.S3_ACCESS_KEY_ID,
      secretAccessKey: env.S3_SECRET_ACCESS_KEY,
    });
    const blobKey = reader.key(`blobs/sha256/${lastBig.slice(7)}`);
    const readBacks: number[] = [];
    for (let i = 0; i < 3; i++) {
      readBacks.push(
        await time(async () => {
          const got = await reader.client.send(new GetObjectCommand({ Bucket: reader.bucket, Key: blobKey }));
          const h = createHash('sha256');
          for await (const c of got.Body as NodeJS.ReadableStream) h.update(c as Buffer);
          h.digest();
        }),
      );
    }
    const readBackSeconds = median(readBacks);
    reader.client.destroy();
    const gets: Record<string, number> = {};
    for (const p of peers) {
      const path = await pushSmallImage(agent, p.url, 'bench/app');
      wrk(`${p.url}${path}`); // warm: caches filled, connections made
      gets[p.name] = wrk(`${p.url}${path}`);
    }
    const w = [30, 16, 16, 22, 10];
    console.log(row(['operation', 'tsbuild', 'distribution', 'ratio (tsbuild/dist)', 'target'], w));
    const line = (label: string, op: string, bytes: number) => {
      const ts = median(times[op]!.tsbuild!);
      const dist = median(times[op]!.distribution!);
      console.log(
        row(
          [
            label,
            `${ts.toFixed(2)} s ${(bytes / 1e6 / ts).toFixed(0)} MB/s`,
            `${dist.toFixed(2)} s ${(bytes / 1e6 / dist).toFixed(0)} MB/s`,
            `${(ts / dist).toFixed(2)}x time`,
            '<= 1.0x',
          ],
          w,
        ),
      );
    };
    line('push 128 MiB', 'push', BIG);
    line(`${PARALLEL} parallel pushes of 16 MiB`, 'parallel', PARALLEL * SMALL);
    line('pull 128 MiB (curl)', 'pull', BIG);
    console.log(
      `verifying 128 MiB: hash-wasm (state kept in Redis) ${wasmSeconds.toFixed(2)} s; OpenSSL ${opensslSeconds.toFixed(2)} s; ` +
        `S3 read back + OpenSSL ${readBackSeconds.toFixed(2)} s (used only when the appends were spread over replicas)`,
    );
    console.log(
      row(
        [
          'manifest GETs/s (wrk -c32)',
          gets.tsbuild!.toFixed(0),
          gets.distribution!.toFixed(0),
          `${(gets.tsbuild! / gets.distribution!).toFixed(2)}x rate`,
          '>= 1.5x',
        ],
        w,
      ),
    );
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    agent.destroy();
    const driver = new S3Driver({
      endpoint: env.S3_ENDPOINT,
      bucket: env.S3_BUCKET ?? 'registry',
      rootDirectory: prefixes.tsbuild,
      accessKeyId: env.S3_ACCESS_KEY_ID,
      secretAccessKey: env.S3_SECRET_ACCESS_KEY,
    });
    await driver.delete('').catch(() => undefined);
    await new S3Driver({ ...driver.options, rootDirectory: prefixes.distribution }).delete('').catch(() => undefined);
    driver.client.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
