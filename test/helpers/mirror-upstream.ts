/**
 * The pieces the mirror's end-to-end tests and bench stand on: a local distribution as "the upstream"
 * seeded with `library/busybox` (the busybox fixture plus a marker layer naming the upstream, so an image
 * pulled through a mirror shows where it came from) and `library/multi:v1` (4 layers, one of 8 MiB of
 * random bytes), a fault proxy in front of it, and a mirror pointing at the proxy: tsbuild's
 * (`tsbuild registry --mirror`, in process or as the CLI) or, with MIRROR_IMPL=distribution, distribution's
 * proxy mode (one upstream, no routing, no pushes: to check the harness against a known mirror).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { RegistryServerOptions } from '../../registry/index.js';
import { Store } from '../../store/index.js';
import { makeBusyboxImage } from './busybox-image.js';
import { call, startTestRegistry, type TestRegistry } from './registry-http.js';
import { distributionConfig, freePort, startDistribution, waitForHttp, type RunningRegistry } from './distribution.js';
import { startFaultProxy, type FaultProxy, type FaultRules } from './fault-proxy.js';
import { tempDir } from './temp.js';
import { tsbuildBin } from './run.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MANIFEST_ACCEPT = [
  OCI_MANIFEST,
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** The size of multi:v1's big layer. */
export const BIG_LAYER_BYTES = 8 << 20;

export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
  mediaType: string;
}

/** An image as pushed to an upstream: its manifest's exact bytes, config and layers. */
export interface SeededImage {
  /** Repository on the upstream, e.g. library/busybox. */
  repo: string;
  tags: string[];
  digest: string;
  manifest: Buffer;
  config: Blob;
  layers: Blob[];
  /** Manifest + config + layers, in bytes: what a cold pull moves from the upstream. */
  totalBytes: number;
  /** Every blob of the image (config first). */
  blobs: Blob[];
}

function blob(bytes: Buffer, mediaType: string): Blob {
  return { digest: sha256(bytes), size: bytes.length, bytes, mediaType };
}

/** A gzipped tar layer of the given files, and its diff ID. */
async function tarLayer(files: Record<string, Buffer | string>, level = 1): Promise<{ layer: Blob; diffId: string }> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  const mtime = new Date(0);
  const dirs = new Set<string>();
  for (const name of Object.keys(files)) {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(dir)) {
        dirs.add(dir);
        pack.entry({ name: dir, type: 'directory', mode: 0o755, mtime, uid: 0, gid: 0 });
      }
    }
    const body = Buffer.from(files[name]!);
    pack.entry({ name, mode: 0o644, mtime, uid: 0, gid: 0, size: body.length }, body);
  }
  pack.finalize();
  await done;
  const raw = Buffer.concat(chunks);
  return { layer: blob(gzipSync(raw, { level }), OCI_LAYER_GZIP), diffId: sha256(raw) };
}

function imageOf(repo: string, tags: string[], layers: { layer: Blob; diffId: string }[], label: string): SeededImage {
  const config = blob(
    Buffer.from(
      JSON.stringify({
        created: '2024-01-01T00:00:00Z',
        architecture: 'amd64',
        os: 'linux',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], Labels: { 'tsbuild.test.upstream': label } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'tsbuild mirror test fixture' })),
      }),
    ),
    OCI_CONFIG,
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: l.layer.mediaType, digest: l.layer.digest, size: l.layer.size })),
    }),
  );
  const blobs = [config, ...layers.map((l) => l.layer)];
  return {
    repo,
    tags,
    digest: sha256(manifest),
    manifest,
    config,
    layers: layers.map((l) => l.layer),
    blobs,
    totalBytes: manifest.length + blobs.reduce((a, b) => a + b.size, 0),
  };
}

let busyboxLayer: Promise<{ layer: Blob; diffId: string }> | undefined;

/** The busybox fixture's rootfs layer (test/helpers/busybox-image.ts), made once per process. */
function busyboxRootfsLayer(): Promise<{ layer: Blob; diffId: string }> {
  busyboxLayer ??= (async () => {
    const fixture = await makeBusyboxImage(await Store.open(tempDir('mirror-busybox-')));
    return { layer: blob(fixture.layer, OCI_LAYER_GZIP), diffId: fixture.diffId };
  })();
  return busyboxLayer;
}

/**
 * busybox: the fixture's rootfs plus a small layer with /etc/mirror-upstream holding `label` — its own
 * image ID, so docker fetches it (not a busybox base other tests loaded), and `cat /etc/mirror-upstream`
 * names the upstream it came from.
 */
export async function busyboxImage(label: string, repo = 'library/busybox', tags = ['latest']): Promise<SeededImage> {
  return imageOf(repo, tags, [await busyboxRootfsLayer(), await tarLayer({ 'etc/mirror-upstream': `${label}\n` })], label);
}

/** multi: busybox rootfs, 8 MiB of random bytes, 1 MiB of random bytes and a small text file; 4 layers. */
export async function multiImage(label: string, repo = 'library/multi', tags = ['v1']): Promise<SeededImage> {
  return imageOf(
    repo,
    tags,
    [
      await busyboxRootfsLayer(),
      await tarLayer({ 'data/big.bin': randomBytes(BIG_LAYER_BYTES - 2048) }, 0),
      await tarLayer({ 'data/mid.bin': randomBytes(1 << 20) }, 0),
      await tarLayer({ 'data/label.txt': `${label}\n` }),
    ],
    label,
  );
}

/** An image of random (incompressible) layers of the given sizes, stored uncompressed-in-gzip (level 0). */
export async function randomImage(label: string, repo: string, tags: string[], layerSizes: number[]): Promise<SeededImage> {
  const layers = [];
  for (const [i, size] of layerSizes.entries()) layers.push(await tarLayer({ [`data/layer${i}.bin`]: randomBytes(size) }, 0));
  return imageOf(repo, tags, layers, label);
}

/** An image of one small random layer (for names that must be unique to one test). */
export async function smallImage(label: string, repo: string, tags = ['v1']): Promise<SeededImage> {
  return imageOf(repo, tags, [await tarLayer({ 'data/small.bin': randomBytes(4096), 'data/label.txt': `${label}\n` })], label);
}

function pathOf(location: string, base: string): string {
  const u = new URL(location, base);
  return `${u.pathname}${u.search}`;
}

/** Pushes an image with plain HTTP (POST + PUT ?digest=, then the manifest by each tag). */
export async function pushImageHttp(base: string, image: SeededImage, repo = image.repo, headers: Record<string, string> = {}): Promise<void> {
  for (const b of image.blobs) {
    if ((await call(base, 'HEAD', `/v2/${repo}/blobs/${b.digest}`, { headers })).status === 200) continue;
    const start = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`, { headers: { ...headers, 'Content-Length': 0 } });
    if (start.status !== 202) throw new Error(`push ${repo}: POST upload answered ${start.status} ${start.body}`);
    const location = new URL(pathOf(start.headers.location!, base), base);
    location.searchParams.set('digest', b.digest);
    const put = await call(base, 'PUT', `${location.pathname}${location.search}`, {
      headers: { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': b.size },
      body: b.bytes,
    });
    if (put.status !== 201) throw new Error(`push ${repo}: PUT blob answered ${put.status} ${put.body}`);
  }
  for (const tag of image.tags.length ? image.tags : [image.digest]) {
    const put = await call(base, 'PUT', `/v2/${repo}/manifests/${tag}`, {
      headers: { ...headers, 'Content-Type': OCI_MANIFEST, 'Content-Length': image.manifest.length },
      body: image.manifest,
    });
    if (put.status !== 201) throw new Error(`push ${repo}:${tag}: PUT manifest answered ${put.status} ${put.body}`);
  }
}

export interface Upstream {
  /** The distribution serving the images (talk to it directly to change them behind the mirror's back). */
  registry: RunningRegistry;
  /** The fault proxy in front of it: what mirrors are pointed at, and where upstream fetches are counted. */
  proxy: FaultProxy;
  /** `proxy.url`. */
  url: string;
  label: string;
  busybox: SeededImage;
  multi: SeededImage;
  /** Pushes another image to the upstream (directly, not through the proxy). */
  push(image: SeededImage): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A local distribution seeded with library/busybox (tags latest + `busyboxTags`) and library/multi:v1,
 * behind a fault proxy. `label` is written into the images (default: a random id).
 */
export async function startUpstream(options: { label?: string; busyboxTags?: string[]; rules?: FaultRules } = {}): Promise<Upstream> {
  const label = options.label ?? `upstream-${randomBytes(4).toString('hex')}`;
  const registry = await startDistribution();
  try {
    const busybox = await busyboxImage(label, 'library/busybox', ['latest', ...(options.busyboxTags ?? [])]);
    const multi = await multiImage(label);
    await pushImageHttp(registry.url, busybox);
    await pushImageHttp(registry.url, multi);
    const proxy = await startFaultProxy(registry.url, options.rules ?? {});
    return {
      registry,
      proxy,
      url: proxy.url,
      label,
      busybox,
      multi,
      push: (image) => pushImageHttp(registry.url, image),
      stop: async () => {
        await proxy.close();
        await registry.stop();
      },
    };
  } catch (e) {
    await registry.stop();
    throw e;
  }
}

export type MirrorImpl = 'tsbuild' | 'distribution';

/** Which mirror the tests run against: tsbuild's, unless MIRROR_IMPL=distribution (harness checks). */
export const MIRROR_IMPL: MirrorImpl = process.env.MIRROR_IMPL === 'distribution' ? 'distribution' : 'tsbuild';

/** What tsbuild's mirror does that distribution's proxy mode does not (tests of those skip under distribution). */
export const tsbuildOnly = MIRROR_IMPL !== 'tsbuild';

export interface UpstreamConfig {
  registry: string;
  url: string;
  username?: string;
  password?: string;
  insecure?: boolean;
  /** How long a cached tag is believed before a HEAD revalidates it; 0 = every time. */
  tagTtlMs?: number;
}

export interface MirrorOptions {
  impl?: MirrorImpl;
  upstreams: UpstreamConfig[];
  defaultUpstream?: string;
  revalidateTimeoutMs?: number;
  upstreamTimeoutMs?: number;
  /** Listen port (default: a free one). */
  port?: number;
  /** Store directory (default: a fresh one); pass a previous mirror's to restart on its cache. */
  storage?: string;
  /**
   * How tsbuild's mirror is started: in this process (`api`), or as `tsbuild registry` with `--mirror`
   * flags (`cli`) or with a YAML `mirrors:` section (`yaml`). Ignored for distribution.
   */
  via?: 'api' | 'cli' | 'yaml';
  /** More options of createRegistryServer (in process only). */
  serverOptions?: Partial<RegistryServerOptions>;
  /** The CLI's --log-level (default warn). */
  logLevel?: string;
}

export interface RunningMirror {
  impl: MirrorImpl;
  url: string;
  host: string;
  storage: string;
  /** Output of a child process mirror (empty in process). */
  logs(): string;
  /** The value of a metric summed over the series whose labels include `labels` (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/** The sum of a Prometheus text exposition's samples of `name` whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

async function metricsOf(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  return res.text();
}

function childMirror(impl: MirrorImpl, child: ChildProcess, port: number, storage: string, logFile: string): Promise<RunningMirror> {
  const url = `http://127.0.0.1:${port}`;
  const logs = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const close = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${impl} mirror exited (${code}) before serving: ${logs().slice(-2000)}`))),
  );
  exited.catch(() => undefined);
  return Promise.race([waitForHttp(`${url}/v2/`, 20_000), exited]).then(
    () => ({ impl, url, host: `127.0.0.1:${port}`, storage, logs, metric: async (name, labels) => metricValue(await metricsOf(url), name, labels), close }),
    async (e) => {
      await close();
      throw e;
    },
  );
}

function ms(value: number): string {
  return `${value}ms`;
}

/** A mirror of `upstreams`: tsbuild's (in process, CLI or YAML), or distribution's proxy mode. */
export async function startMirror(options: MirrorOptions): Promise<RunningMirror> {
  const impl = options.impl ?? MIRROR_IMPL;
  const storage = options.storage ?? tempDir(`mirror-${impl}-`);
  if (impl === 'distribution') {
    // distribution's proxy mode: the first upstream only, under the names the client asks for.
    const port = options.port ?? (await freePort());
    const up = options.upstreams[0]!;
    const config = join(storage, 'config.yml');
    const creds = up.username ? `  username: ${up.username}\n  password: ${up.password}\n` : '';
    writeFileSync(config, distributionConfig(join(storage, 'data'), port, `proxy:\n  remoteurl: ${up.url}\n${creds}`));
    const logFile = join(storage, 'mirror.log');
    const fd = openSync(logFile, 'a');
    const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    return childMirror(impl, child, port, storage, logFile);
  }
  const via = options.via ?? 'api';
  if (via === 'api') {
    const mirrorOptions: Record<string, unknown> = {
      ...options.serverOptions,
      storage,
      port: options.port ?? 0,
      mirrors: options.upstreams.map((u) => ({ ...u })),
      mirror: {
        defaultUpstream: options.defaultUpstream ?? 'docker.io',
        ...(options.revalidateTimeoutMs !== undefined ? { revalidateTimeoutMs: options.revalidateTimeoutMs } : {}),
        ...(options.upstreamTimeoutMs !== undefined ? { upstreamTimeoutMs: options.upstreamTimeoutMs } : {}),
      },
    };
    const reg: TestRegistry = await startTestRegistry(mirrorOptions as Partial<RegistryServerOptions>);
    return {
      impl,
      url: reg.url,
      host: reg.host,
      storage,
      logs: () => '',
      metric: async (name, labels) => metricValue(await metricsOf(reg.url), name, labels),
      close: () => reg.close(),
    };
  }
  const port = options.port ?? (await freePort());
  const aux = tempDir('mirror-cli-');
  const args = [tsbuildBin, 'registry', '--log-level', options.logLevel ?? 'warn'];
  if (via === 'cli') {
    args.push('--listen', `127.0.0.1:${port}`, '--storage', storage);
    for (const u of options.upstreams) args.push('--mirror', `${u.registry}=${u.url}`);
  } else {
    const lines = [`listen: 127.0.0.1:${port}`, `storage: ${storage}`, 'mirrors:'];
    for (const u of options.upstreams) {
      lines.push(`  ${u.registry}:`, `    url: ${u.url}`);
      if (u.username) lines.push(`    username: ${u.username}`, `    password: ${u.password}`);
      if (u.insecure !== undefined) lines.push(`    insecure: ${u.insecure}`);
      if (u.tagTtlMs !== undefined) lines.push(`    tag-ttl: ${ms(u.tagTtlMs)}`);
    }
    lines.push('mirror:', `  default-upstream: ${options.defaultUpstream ?? 'docker.io'}`);
    if (options.revalidateTimeoutMs !== undefined) lines.push(`  revalidate-timeout: ${ms(options.revalidateTimeoutMs)}`);
    if (options.upstreamTimeoutMs !== undefined) lines.push(`  upstream-timeout: ${ms(options.upstreamTimeoutMs)}`);
    const config = join(aux, 'registry.yaml');
    writeFileSync(config, `${lines.join('\n')}\n`);
    args.push('--config', config);
  }
  const logFile = join(aux, 'mirror.log');
  const fd = openSync(logFile, 'a');
  const env = { ...process.env, TSBUILD_ROOT: storage, DOCKER_CONFIG: join(aux, 'docker'), TSBUILD_CONFIG: '/dev/null' };
  const child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  return childMirror(impl, child, port, storage, logFile);
}

// ---- clients and checks --------------------------------------------------------------------------

export interface Timed {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  ms: number;
  timedOut: boolean;
}

/** Runs a command with a deadline (the child is killed when it passes); never throws on failure. */
export function runFor(cmd: string, args: string[], deadlineMs: number, env: NodeJS.ProcessEnv = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started, timedOut });
    });
  });
}

/** skopeo without the machine's registries.conf (no mirrors or aliases of its own). */
function skopeoEnv(): NodeJS.ProcessEnv {
  const dir = tempDir('skopeo-env-');
  writeFileSync(join(dir, 'registries.conf'), '');
  return { CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'), REGISTRY_AUTH_FILE: join(dir, 'auth.json') };
}

/** `skopeo copy docker://HOST/REPO:TAG oci:DIR:pulled` from a plain-HTTP registry; the layout is in `dir`. */
export async function skopeoPull(host: string, ref: string, deadlineMs = 120_000): Promise<Timed & { dir: string }> {
  const dir = tempDir('mirror-pull-');
  const r = await runFor(
    'skopeo',
    ['copy', '--quiet', '--retry-times', '0', '--src-tls-verify=false', `docker://${host}/${ref}`, `oci:${dir}:pulled`],
    deadlineMs,
    skopeoEnv(),
  );
  return { ...r, dir };
}

/** `skopeo inspect --raw`: the manifest bytes by tag or digest (no blob is read). */
export function skopeoInspectRaw(host: string, ref: string, deadlineMs = 60_000): Promise<Timed> {
  return runFor('skopeo', ['inspect', '--raw', '--retry-times', '0', '--tls-verify=false', `docker://${host}/${ref}`], deadlineMs, skopeoEnv());
}

/**
 * Checks an OCI layout skopeo wrote holds exactly `image`: the manifest digest it names, and every blob
 * present with bytes that hash to its name. Returns problems (empty when the layout is right).
 */
export function layoutProblems(dir: string, image: SeededImage): string[] {
  const problems: string[] = [];
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const named = index.manifests?.[0]?.digest;
  if (named !== image.digest) problems.push(`index.json names ${named}, expected ${image.digest}`);
  const present = new Set(readdirSync(join(dir, 'blobs', 'sha256')));
  for (const b of [...image.blobs, { digest: image.digest }]) {
    const hex = b.digest.slice(7);
    if (!present.has(hex)) {
      problems.push(`blob ${b.digest} missing`);
      continue;
    }
    const actual = sha256(readFileSync(join(dir, 'blobs', 'sha256', hex)));
    if (actual !== b.digest) problems.push(`blob ${b.digest} holds bytes hashing to ${actual}`);
  }
  return problems;
}

export interface BlobRead {
  status: number;
  /** Milliseconds from the request to its headers, and to the first body byte (undefined: none came). */
  headersMs: number;
  firstByteMs?: number;
  /** Milliseconds to the end of the body (or the failure). */
  totalMs: number;
  bytes: number;
  digest: string;
  /** The body ended short of Content-Length or the connection was cut. */
  failed: boolean;
  error?: string;
}

/**
 * GETs `path` from `base` with a deadline, timing headers and first byte, hashing the body; a cut
 * connection or a short body is reported as `failed`, never thrown.
 */
export function timedGet(base: string, path: string, headers: Record<string, string> = {}, deadlineMs = 60_000): Promise<BlobRead> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const started = performance.now();
    const hash = createHash('sha256');
    let result: Omit<BlobRead, 'digest' | 'totalMs'> = { status: 0, headersMs: 0, bytes: 0, failed: true };
    let settled = false;
    const finish = (failed: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, failed, ...(error ? { error } : {}), totalMs: performance.now() - started, digest: `sha256:${hash.digest('hex')}` });
    };
    const req = http.request({ host: url.hostname, port: url.port, method: 'GET', path, headers, agent: false }, (res) => {
      result = { ...result, status: res.statusCode!, headersMs: performance.now() - started };
      const expected = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
      res.on('data', (c: Buffer) => {
        if (result.firstByteMs === undefined) result.firstByteMs = performance.now() - started;
        result.bytes += c.length;
        hash.update(c);
      });
      res.on('end', () =>
        finish(
          expected !== undefined && result.bytes !== expected,
          expected !== undefined && result.bytes !== expected ? `short body: ${result.bytes} of ${expected} bytes` : undefined,
        ),
      );
      res.on('aborted', () => finish(true, 'aborted'));
      res.on('error', (e) => finish(true, e.message));
      res.on('close', () => finish(!res.complete, res.complete ? undefined : 'connection closed before the body ended'));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish(true, `no complete answer within ${deadlineMs} ms`);
    }, deadlineMs);
    req.on('error', (e) => finish(true, e.message));
    req.end();
  });
}

/** Rejects with "`what` did not finish within `ms` ms" when `work` takes longer (the work is not cancelled). */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A mirror with `upstream` as docker.io (the contract's defaults: revalidate 1 s, upstream timeout 10 s). */
export function mirrorOf(upstream: Upstream, options: Partial<MirrorOptions> & { tagTtlMs?: number } = {}): Promise<RunningMirror> {
  const { tagTtlMs, ...rest } = options;
  return startMirror({
    upstreams: [{ registry: 'docker.io', url: upstream.url, ...(tagTtlMs !== undefined ? { tagTtlMs } : {}) }],
    revalidateTimeoutMs: 1000,
    upstreamTimeoutMs: 10_000,
    ...rest,
  });
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The first error code of a spec error body. */
  code?: string;
  /** Milliseconds to the complete answer. */
  ms: number;
}

/**
 * One request with the path sent as given and a deadline: when it passes the request is destroyed and
 * the promise rejects naming it (a hang fails the test instead of waiting for ava's timeout).
 */
export function request(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string | number>; body?: Buffer | string; deadlineMs?: number } = {},
): Promise<Answer> {
  const url = new URL(base);
  const deadlineMs = options.deadlineMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks);
        let code: string | undefined;
        try {
          code = JSON.parse(body.toString('utf8'))?.errors?.[0]?.code;
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, ...(code ? { code } : {}), ms: performance.now() - started });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${path} did not finish within ${deadlineMs} ms`));
    }, deadlineMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(options.body);
  });
}

/** GET a manifest with every manifest type accepted. */
export function getManifest(base: string, path: string, deadlineMs = 30_000): Promise<Answer> {
  return request(base, 'GET', path, { headers: { Accept: MANIFEST_ACCEPT }, deadlineMs });
}
