import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './temp.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export async function waitForHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface RunningRegistry {
  host: string;
  url: string;
  dir: string;
  logs(): string;
  stop(): Promise<void>;
}

/** distribution's config: filesystem storage under `root`, deletes on, access logs at info, loopback `port`. */
export function distributionConfig(root: string, port: number, extraConfig = ''): string {
  return `version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${extraConfig}`;
}

/** Starts distribution's `docker-registry` (Debian) on a free loopback port with extra config YAML. */
export async function startDistribution(extraConfig = '', env: Record<string, string> = {}): Promise<RunningRegistry> {
  const dir = tempDir('distribution-');
  const port = await freePort();
  writeFileSync(join(dir, 'config.yml'), distributionConfig(join(dir, 'data'), port, extraConfig));
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`);
  return {
    host: `127.0.0.1:${port}`,
    url,
    dir,
    logs: () => log,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
