/**
 * The two registries the registry benches compare, as child processes on loopback: tsbuild's
 * (`tsbuild registry`) and distribution's (`docker-registry serve`), each over its own storage under a
 * bench directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { closeSync, createWriteStream, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { distributionConfig, freePort } from '../test/helpers/distribution.js';

export const tsbuildBin = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface Peer {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function waitUp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const until = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early: ${log().slice(-500)}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      return;
    } catch {
      if (Date.now() > until) throw new Error(`timed out waiting for ${url}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Logs go to a file, never to a pipe this process drains: while the load generator runs, a full pipe
 * would stall the server on its own log writes.
 */
async function startChild(name: string, cmd: string, args: string[], url: string, logFile: string): Promise<Peer> {
  const fd = openSync(logFile, 'w');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  try {
    await waitUp(url, child, () => readFileSync(logFile, 'utf8').slice(-4000));
  } catch (e) {
    await stop();
    throw e;
  }
  return { name, url, pid: child.pid ?? 0, stop };
}

/** `tsbuild registry` over `<dir>/tsbuild`, logging at info to `<dir>/tsbuild.log`. */
export async function startTsbuild(dir: string): Promise<Peer> {
  const port = await freePort();
  return startChild(
    'tsbuild',
    process.execPath,
    [tsbuildBin, 'registry', '--storage', join(dir, 'tsbuild'), '--listen', `127.0.0.1:${port}`, '--log-level', 'info'],
    `http://127.0.0.1:${port}`,
    join(dir, 'tsbuild.log'),
  );
}

/** distribution over `<dir>/distribution` (filesystem driver, deletes on), logging to `<dir>/distribution.log`. */
export async function startDistribution(dir: string): Promise<Peer> {
  const port = await freePort();
  const config = join(dir, 'distribution.yml');
  writeFileSync(config, distributionConfig(join(dir, 'distribution'), port));
  return startChild('distribution', '/usr/bin/docker-registry', ['serve', config], `http://127.0.0.1:${port}`, join(dir, 'distribution.log'));
}

/** The pull with curl as the client: its own CPU use is a fraction of Node's, so the server is what is measured. */
export function curlPull(base: string, repo: string, digest: string, size: number): void {
  const r = spawnSync('/usr/bin/curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `${base}/v2/${repo}/blobs/${digest}`], {
    encoding: 'utf8',
  });
  if (r.stdout !== `200 ${size}`) throw new Error(`curl GET blob: ${r.stdout} ${r.stderr}`.trim());
}

/** A file of `size` bytes (whole MiB blocks, distinct per seed) at `path`; returns its sha256 digest. */
export async function makeFile(path: string, size: number, seed: number): Promise<string> {
  const block = randomBytes(1 << 20);
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let done = 0; done < size; done += block.length) {
    block.writeUInt32LE(seed, 0);
    block.writeUInt32LE(done, 4);
    hash.update(block);
    if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Requests per second of GETs (each path from `nextPath`) over `connections` keep-alive connections for
 * `seconds`: the load generator when wrk is not installed. Any status but 200 fails the run.
 */
export async function nodeGetRate(
  base: string,
  nextPath: () => string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const until = Date.now() + seconds * 1000;
  let done = 0;
  const worker = async () => {
    while (Date.now() < until) {
      const path = nextPath();
      await new Promise<void>((resolve, reject) => {
        http
          .get(`${base}${path}`, { agent, headers }, (res) => {
            if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
            res.resume();
            res.on('end', () => resolve());
          })
          .on('error', reject);
      });
      done++;
    }
  };
  const start = Date.now();
  await Promise.all(Array.from({ length: connections }, worker));
  agent.destroy();
  return done / ((Date.now() - start) / 1000);
}

/**
 * One HTTP request of a bench through `agent`: the status, headers, body length in bytes, and the
 * body's first 2,000 characters for error messages (a large body is counted, never held).
 */
export function request(
  agent: http.Agent,
  method: string,
  url: string,
  headers: Record<string, string | number> = {},
  body?: Buffer | NodeJS.ReadableStream,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      let bytes = 0;
      let text = '';
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (text.length < 2000) text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else pipeline(body, req).catch(reject);
  });
}

/**
 * Pushes a config blob, a 4 KiB layer blob and an OCI manifest over them tagged `v1` into `repo` (POST then
 * PUT with the body: distribution 2.8 has no single-request upload); returns the manifest's path.
 */
export async function pushManifest(agent: http.Agent, base: string, repo: string): Promise<string> {
  const expect = (what: string, r: { status: number; body: string }, want: number) => {
    if (r.status !== want) throw new Error(`${what}: HTTP ${r.status}, expected ${want}: ${r.body.slice(0, 300)}`);
  };
  const blob = async (bytes: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const post = await request(agent, 'POST', `${base}/v2/${repo}/blobs/uploads/`, { 'Content-Length': 0 });
    expect('POST upload', post, 202);
    const url = new URL(post.headers.location ?? '', base);
    url.searchParams.set('digest', digest);
    expect(
      'PUT upload',
      await request(agent, 'PUT', url.toString(), { 'Content-Length': bytes.length, 'Content-Type': 'application/octet-stream' }, bytes),
      201,
    );
    return { digest, size: bytes.length };
  };
  const config = await blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const layer = await blob(randomBytes(4096));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    }),
  );
  const headers = { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': manifest.length };
  expect('PUT manifest', await request(agent, 'PUT', `${base}/v2/${repo}/manifests/v1`, headers, manifest), 201);
  return `/v2/${repo}/manifests/v1`;
}
