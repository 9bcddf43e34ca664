/**
 * Registry throughput: `tsbuild registry` against distribution's `docker-registry` (Debian), both started
 * here as child processes on loopback, same client, same run. Measures a 512 MiB blob push (POST, one
 * streamed PATCH, PUT ?digest= — what docker sends) and pull (with this process's Node client, and with
 * curl), 8 parallel pushes of 32 MiB blobs, and manifest GETs per second by tag at 64 keep-alive
 * connections (wrk when installed, else a Node load generator). Prints each figure and the ratio
 * tsbuild / distribution (higher is better for tsbuild), and for blobs the ratio of the servers' CPU
 * seconds for the same bytes (lower is leaner: it shows the server's cost where the client is the
 * bottleneck, as the Node client is on pulls). BENCH_VERBOSE=1 prints every round;
 * BENCH_OPS=push,parallel measures only those blob operations.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mbps, row, time } from './_measure.js';
import {
  curlPull,
  pushManifest as pushSmallImage,
  request as benchRequest,
  makeFile,
  nodeGetRate,
  startDistribution,
  startTsbuild,
  type Peer,
} from './_peers.js';

const BIG = 512 << 20;
const SMALL = 32 << 20;
const PARALLEL = 8;
const CONNECTIONS = 64;
const LOAD_SECONDS = 10;

/** CPU seconds a process (all its threads) has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const request = (...args: [string, string, Record<string, string | number>?, (Buffer | NodeJS.ReadableStream)?]) => benchRequest(agent, ...args);

function expectStatus(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: HTTP ${got}, expected ${want}`);
}

/** docker's upload sequence: POST, one streamed PATCH of the whole blob, PUT ?digest=. */
async function pushBlob(base: string, repo: string, file: string, digest: string): Promise<void> {
  const start = await request('POST', `${base}/v2/${repo}/blobs/uploads/`, { 'Content-Length': 0 });
  expectStatus('POST upload', start.status, 202);
  const location = new URL(start.headers.location!, base).toString();
  const patch = await request(
    'PATCH',
    location,
    { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' },
    createReadStream(file, { highWaterMark: 1 << 20 }),
  );
  expectStatus('PATCH upload', patch.status, 202);
  const next = new URL(patch.headers.location!, base);
  next.searchParams.set('digest', digest);
  const put = await request('PUT', next.toString(), { 'Content-Length': 0 });
  expectStatus('PUT upload', put.status, 201);
}

async function pullBlob(base: string, repo: string, digest: string, size: number): Promise<void> {
  const res = await request('GET', `${base}/v2/${repo}/blobs/${digest}`);
  expectStatus('GET blob', res.status, 200);
  if (res.bytes !== size) throw new Error(`GET blob: ${res.bytes} bytes, expected ${size}`);
}

const ACCEPT =
  'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json';

/** Requests per second with wrk, or with a bounded Node load generator when wrk is not installed. */
async function manifestLoad(base: string, path: string): Promise<number> {
  if (existsSync('/usr/bin/wrk')) {
    const r = spawnSync('/usr/bin/wrk', ['-t', '2', '-c', String(CONNECTIONS), '-d', `${LOAD_SECONDS}s`, '-H', `Accept: ${ACCEPT}`, `${base}${path}`], {
      encoding: 'utf8',
    });
    const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
    if (!m || /Non-2xx/.test(r.stdout)) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
    return Number(m[1]);
  }
  return nodeGetRate(base, () => path, { Accept: ACCEPT }, CONNECTIONS, LOAD_SECONDS);
}

type Blob = { path: string; digest: string };
type Op = 'push' | 'pull' | 'pull-curl' | 'parallel';
/** pull-curl: the same pull with curl as the client (native, like docker's and containerd's Go clients). */
const ALL_OPS: Op[] = ['push', 'pull', ...(existsSync('/usr/bin/curl') ? ['pull-curl' as const] : []), 'parallel'];
/** BENCH_OPS=push,parallel measures only those (pull needs push). */
const OPS = process.env.BENCH_OPS ? ALL_OPS.filter((op) => process.env.BENCH_OPS!.split(',').includes(op)) : ALL_OPS;

/**
 * Rounds per blob figure: even, so each server goes first equally often. The VM's speed drifts by ±30%
 * within a run, so one figure needs many pairs.
 */
const ROUNDS = 12;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Bytes per second of one sample of an operation against one server. */
async function sample(op: Op, peer: Peer, round: number, big: Blob, smalls: Blob[]): Promise<number> {
  const repo = `bench/big${round}`;
  if (op === 'push') return BIG / (await time(() => pushBlob(peer.url, repo, big.path, big.digest)));
  if (op === 'pull') return BIG / (await time(() => pullBlob(peer.url, repo, big.digest, BIG)));
  if (op === 'pull-curl') return BIG / (await time(async () => curlPull(peer.url, repo, big.digest, BIG)));
  return (SMALL * PARALLEL) / (await time(() => Promise.all(smalls.map((b, i) => pushBlob(peer.url, `bench/r${round}/small${i}`, b.path, b.digest)))));
}

interface Figure {
  /** Median bytes/s per server. */
  rates: Record<string, number>;
  /** Median over rounds of tsbuild ÷ distribution, each pair measured back to back. */
  ratio: number;
  /** Median over rounds of the servers' CPU seconds per byte, tsbuild ÷ distribution (lower is leaner). */
  cpuRatio: number;
}

/**
 * A paired design: each round measures every operation on both servers back to back (the order swapped
 * every round, all dirty pages written back before each sample), so the two samples of a pair see the
 * machine in the same state; the ratio is the median of the pairs' ratios. Medians of each server's
 * own samples are printed too.
 */
async function measureBlobs(peers: Peer[], big: Blob, smalls: Blob[]): Promise<Record<Op, Figure>> {
  const samples = Object.fromEntries(OPS.map((op) => [op, {}])) as Record<Op, Record<string, number[]>>;
  /** Server CPU seconds per sample (the bytes moved are the same for both servers). */
  const cpu = Object.fromEntries(OPS.map((op) => [op, {}])) as Record<Op, Record<string, number[]>>;
  for (let round = 0; round < ROUNDS; round++) {
    for (const op of OPS) {
      for (const peer of round % 2 ? [...peers].reverse() : peers) {
        spawnSync('sync');
        const before = cpuSeconds(peer.pid);
        (samples[op][peer.name] ??= []).push(await sample(op, peer, round, big, smalls));
        (cpu[op][peer.name] ??= []).push(cpuSeconds(peer.pid) - before);
      }
    }
    if (process.env.BENCH_VERBOSE) {
      console.log(`round ${round}: ${OPS.map((op) => `${op} ${peers.map((p) => mbps(samples[op][p.name]!.at(-1)!, 1)).join(' / ')}`).join(', ')}`);
    }
  }
  const figures = {} as Record<Op, Figure>;
  for (const op of OPS) {
    const t = samples[op].tsbuild!;
    const d = samples[op].distribution!;
    figures[op] = {
      rates: Object.fromEntries(peers.map((p) => [p.name, median(samples[op][p.name]!)])),
      ratio: median(t.map((v, i) => v / d[i]!)),
      cpuRatio: median(cpu[op].tsbuild!.map((v, i) => v / cpu[op].distribution![i]!)),
    };
  }
  return figures;
}

export async function run(): Promise<void> {
  if (!existsSync('/usr/bin/docker-registry')) {
    console.log('registry bench: /usr/bin/docker-registry (Debian docker-registry) is not installed; run scripts/setup.sh');
    return;
  }
  const dir = join(tmpdir(), `tsbuild-bench-registry-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const big = { path: join(dir, 'big'), digest: '' };
    big.digest = await makeFile(big.path, BIG, 1);
    const smalls: { path: string; digest: string }[] = [];
    for (let i = 0; i < PARALLEL; i++) {
      const path = join(dir, `small${i}`);
      smalls.push({ path, digest: await makeFile(path, SMALL, 100 + i) });
    }
    const peers = [await startDistribution(dir), await startTsbuild(dir)];
    let blobs: Record<Op, Figure>;
    const manifests: Record<string, number> = {};
    try {
      blobs = await measureBlobs(peers, big, smalls);
      for (const peer of peers) manifests[peer.name] = await manifestLoad(peer.url, await pushSmallImage(agent, peer.url, 'bench/app'));
    } finally {
      await Promise.all(peers.map((p) => p.stop()));
    }
    const w = [34, 16, 16, 8, 12];
    console.log(row(['', 'tsbuild', 'distribution', 'ratio', 'server CPU'], w));
    const rate = (v: number) => mbps(v, 1);
    const labels: Record<Op, string> = {
      push: 'push 512 MiB blob',
      pull: 'pull 512 MiB blob',
      'pull-curl': 'pull 512 MiB blob, curl client',
      parallel: `${PARALLEL} parallel pushes of 32 MiB`,
    };
    for (const op of OPS)
      console.log(
        row([labels[op], rate(blobs[op].rates.tsbuild!), rate(blobs[op].rates.distribution!), blobs[op].ratio.toFixed(2), blobs[op].cpuRatio.toFixed(2)], w),
      );
    const t = manifests.tsbuild!;
    const d = manifests.distribution!;
    console.log(row([`manifest GET/s, ${CONNECTIONS} connections`, `${t.toFixed(0)}/s`, `${d.toFixed(0)}/s`, (t / d).toFixed(2)], w));
    console.log(
      `(blob ratios: median of ${ROUNDS} back-to-back pairs; server CPU: tsbuild's CPU seconds for the same bytes ÷ distribution's, median of the pairs, lower is leaner; rates: each server's median; targets: blob ratios ≥ 1.00, manifest GET ratio ≥ 1.50; load by ${existsSync('/usr/bin/wrk') ? 'wrk' : 'node'})`,
    );
  } finally {
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
