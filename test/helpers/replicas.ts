import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Driver } from '../../store/driver/s3-driver.js';
import { freePort } from './distribution.js';
import { call, type TestRegistry } from './registry-http.js';
import type { ScaleoutPeers } from './scaleout.js';
import { tempDir } from './temp.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, process?: ChildProcess, log?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process && process.exitCode !== null) throw new Error(`${what} exited with ${process.exitCode}: ${log?.() ?? ''}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms: ${log?.() ?? ''}`);
}

async function healthy(port: number): Promise<boolean> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
  return r.status === 200;
}

export interface Replica {
  port: number;
  process: ChildProcess;
  /** The local root (--storage); nothing other replicas need lives there. */
  root: string;
  /** stderr so far. */
  log(): string;
}

export interface ReplicaSet {
  /** The balancer: http://127.0.0.1:PORT. */
  url: string;
  /** `127.0.0.1:PORT`, as image references name it. */
  host: string;
  replicas: Replica[];
  /** The registry config file the replicas run with. */
  config: string;
  /** The bucket key prefix (storage.s3.root-directory) of this set. */
  rootDirectory: string;
  /** Starts one more replica (fresh empty root) on port `port` or a new one; it joins the balancer when it was in its config. */
  startReplica(port?: number, nodeArgs?: string[]): Promise<Replica>;
  /** SIGKILLs replica i and waits for it to be gone. */
  kill(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** A registry YAML for a replica on the shared bucket (a fresh key prefix per set) and Redis. */
function replicaConfig(peers: ScaleoutPeers, rootDirectory: string, extra: string[]): string {
  const s3 = peers.s3;
  return [
    'storage:',
    '  s3:',
    `    endpoint: ${s3.endpoint}`,
    `    bucket: ${s3.bucket}`,
    `    region: ${s3.region ?? 'us-east-1'}`,
    `    root-directory: ${rootDirectory}`,
    '    force-path-style: true',
    'redis:',
    `  url: ${peers.redisUrl}`,
    'log:',
    '  level: warn',
    ...extra,
    '',
  ].join('\n');
}

/**
 * `count` tsbuild registry processes on one bucket prefix and Redis, behind haproxy: `balance roundrobin`,
 * `option http-server-close` (every request is balanced on its own: no stickiness), health checks on
 * /healthz every 300 ms. Connection failures are retried on another replica (idempotent requests only).
 */
export async function startReplicaSet(
  peers: ScaleoutPeers,
  count = 3,
  options: { nodeArgs?: string[]; rootDirectory?: string /** More lines of the registry YAML (e.g. a gc: section). */; configLines?: string[] } = {},
): Promise<ReplicaSet> {
  const dir = tempDir('tsbuild-replicas-');
  const config = join(dir, 'registry.yaml');
  const rootDirectory = options.rootDirectory ?? `replicas-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
  writeFileSync(config, replicaConfig(peers, rootDirectory, options.configLines ?? []));
  const replicas: Replica[] = [];
  const procs: ChildProcess[] = [];
  const startReplica = async (port?: number, nodeArgs = options.nodeArgs ?? []): Promise<Replica> => {
    port ??= await freePort();
    const root = tempDir('tsbuild-replica-root-');
    let stderr = '';
    const child = spawn(process.execPath, [...nodeArgs, CLI, 'registry', '--config', config, '--listen', `127.0.0.1:${port}`, '--storage', root], {
      env: { ...process.env, ...peers.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    procs.push(child);
    await waitFor(
      `replica on port ${port}`,
      () => healthy(port!),
      20_000,
      child,
      () => stderr,
    );
    return { port, process: child, root, log: () => stderr };
  };
  for (let i = 0; i < count; i++) replicas.push(await startReplica());
  const lbPort = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 4096',
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 300s',
      '  timeout server 300s',
      '  option http-server-close',
      '  retries 3',
      '  option redispatch 1',
      '  retry-on conn-failure empty-response',
      'frontend registry',
      `  bind 127.0.0.1:${lbPort}`,
      '  default_backend replicas',
      'backend replicas',
      '  balance roundrobin',
      '  option httpchk GET /healthz',
      '  http-check expect status 200',
      '  timeout check 2s',
      '  default-server inter 500ms fall 2 rise 1',
      ...replicas.map((r, i) => `  server r${i} 127.0.0.1:${r.port} check`),
      '',
    ].join('\n'),
  );
  let haproxyLog = '';
  const haproxy = spawn('/usr/sbin/haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.on('data', (d: Buffer) => (haproxyLog = (haproxyLog + d.toString()).slice(-4000)));
  haproxy.stderr!.on('data', (d: Buffer) => (haproxyLog = (haproxyLog + d.toString()).slice(-4000)));
  procs.push(haproxy);
  await waitFor(
    'haproxy',
    async () => (await fetch(`http://127.0.0.1:${lbPort}/v2/`, { signal: AbortSignal.timeout(2000) })).status === 200,
    10_000,
    haproxy,
    () => haproxyLog,
  );
  const stopProc = (p: ChildProcess, signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill(signal);
      setTimeout(() => {
        p.kill('SIGKILL');
        resolve();
      }, 8000).unref();
    });
  return {
    url: `http://127.0.0.1:${lbPort}`,
    host: `127.0.0.1:${lbPort}`,
    replicas,
    config,
    rootDirectory,
    startReplica,
    kill: (i) => stopProc(replicas[i]!.process, 'SIGKILL'),
    async stop() {
      await Promise.all(procs.map((p) => stopProc(p, 'SIGTERM')));
      // The OSD keeps objects in RAM: leave nothing behind.
      const driver = new S3Driver({ ...peers.s3, rootDirectory });
      await driver.delete('').catch(() => undefined);
      driver.client.destroy();
    },
  };
}

/**
 * The registry conformance suite's target behind a balancer (TSBUILD_CONFORMANCE_TARGET=scaleout): three
 * replicas on the peers of scripts/scaleout.sh, shaped as startTestRegistry's result. `server` is not
 * there (the replicas are other processes): the suite skips what needs it.
 */
export async function startBalancedTarget(): Promise<TestRegistry> {
  const { probeScaleoutPeers } = await import('./scaleout.js');
  const peers = await probeScaleoutPeers();
  if (typeof peers === 'string') throw new Error(`scale-out peers: ${peers}`);
  const set = await startReplicaSet(peers, 3);
  return {
    get server(): never {
      throw new Error('no in-process server behind the balancer');
    },
    url: set.url,
    host: set.host,
    call: (m, p, o) => call(set.url, m, p, o),
    close: () => set.stop(),
  };
}
