import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { resolveInRoot } from '../snapshot/index.js';
import type { BundleOptions } from './bundle.js';
import { track } from './cleanup.js';

/**
 * The fallback runtime for machines without runc: util-linux `unshare` gives the step its own mount, pid,
 * ipc, uts (and, for --network=none, network) namespaces; a host shell sets up /proc, /dev, /sys, the
 * /etc files and the RUN --mount mounts inside the new mount namespace, then `unshare --root --wd
 * --setuid --setgid` enters the rootfs as the step's user. Everything it mounts dies with the namespace.
 * Weaker than runc: no capability bounding set, no cgroup, no supplementary groups, no masked /proc paths.
 */
export interface UnshareRunOptions extends Pick<BundleOptions, 'rootfs' | 'args' | 'env' | 'cwd' | 'user' | 'hostname' | 'network' | 'etcFiles' | 'mounts'> {
  onStdout?: ((chunk: Buffer) => void) | undefined;
  onStderr?: ((chunk: Buffer) => void) | undefined;
  signal?: AbortSignal | undefined;
}

function tool(name: string): string {
  for (const dir of ['/usr/bin', '/usr/sbin', '/bin', '/sbin']) if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  throw new Error(`the unshare runtime needs "${name}" on the host (util-linux, iproute2)`);
}

export function unshareAvailable(): boolean {
  try {
    tool('unshare');
    tool('mount');
    return true;
  } catch {
    return false;
  }
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function setupScript(o: UnshareRunOptions, resolved: Map<string, string>): string {
  const mount = tool('mount');
  // mount points resolved inside the rootfs beforehand (the host shell must never follow the image's symlinks)
  const r = (p: string) => q(resolved.get(p) ?? join(o.rootfs, p));
  const lines = [
    'set -e',
    `${mount} --make-rprivate /`,
    `${mount} -t proc -o nosuid,noexec,nodev proc ${r('/proc')}`,
    `${mount} -t tmpfs -o nosuid,strictatime,mode=755,size=65536k tmpfs ${r('/dev')}`,
  ];
  for (const dev of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) {
    lines.push(`: > ${r(`/dev/${dev}`)}`, `${mount} --bind /dev/${dev} ${r(`/dev/${dev}`)}`);
  }
  lines.push(
    `mkdir -p ${r('/dev/pts')} ${r('/dev/shm')}`,
    `${mount} -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620 devpts ${r('/dev/pts')}`,
    `ln -s pts/ptmx ${r('/dev/ptmx')}`,
    `${mount} -t tmpfs -o nosuid,noexec,nodev,mode=1777,size=65536k shm ${r('/dev/shm')}`,
    `ln -s /proc/self/fd ${r('/dev/fd')}`,
    `ln -s /proc/self/fd/0 ${r('/dev/stdin')}`,
    `ln -s /proc/self/fd/1 ${r('/dev/stdout')}`,
    `ln -s /proc/self/fd/2 ${r('/dev/stderr')}`,
    `${mount} -t sysfs -o nosuid,noexec,nodev,ro sysfs ${r('/sys')}`,
    `${mount} --bind ${q(o.etcFiles.hosts)} ${r('/etc/hosts')}`,
    `${mount} --bind ${q(o.etcFiles.resolvConf)} ${r('/etc/resolv.conf')}`,
    `${mount} --bind ${q(o.etcFiles.hostname)} ${r('/etc/hostname')}`,
  );
  for (const m of o.mounts) {
    if (m.type === 'tmpfs') lines.push(`${mount} -t tmpfs -o ${q((m.options ?? []).join(',') || 'mode=1777')} tmpfs ${r(m.destination)}`);
    else {
      lines.push(`${mount} --rbind ${q(m.source)} ${r(m.destination)}`);
      if (m.options?.includes('ro')) lines.push(`${mount} -o remount,bind,ro ${r(m.destination)}`);
    }
  }
  if (o.network === 'none') lines.push(`${tool('ip')} link set lo up`);
  if (existsSync('/usr/bin/hostname') || existsSync('/bin/hostname')) lines.push(`hostname ${q(o.hostname)}`);
  lines.push(`exec ${tool('unshare')} --root=${q(o.rootfs)} --wd=${q(o.cwd)} --setgid ${o.user.gid} --setuid ${o.user.uid} -- "$@"`);
  return lines.join('\n');
}

/** Runs the step; resolves with its exit code (128+n when killed by signal n). */
export async function unshareRun(o: UnshareRunOptions): Promise<number> {
  const resolved = new Map<string, string>();
  for (const p of ['/proc', '/dev', '/sys', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname', ...o.mounts.map((m) => m.destination)]) {
    resolved.set(p, await resolveInRoot(o.rootfs, p, true));
  }
  // the working dir is created the way runc does, inside the rootfs
  await fs.mkdir(await resolveInRoot(o.rootfs, o.cwd, true), { recursive: true, mode: 0o755 });
  const namespaces = ['--mount', '--pid', '--ipc', '--uts', '--fork', '--kill-child', ...(o.network === 'none' ? ['--net'] : [])];
  const child = spawn(tool('unshare'), [...namespaces, '--', '/bin/sh', '-c', setupScript(o, resolved), 'tsbuild-step', ...o.args], {
    env: Object.fromEntries(o.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const kill = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const untrack = track({ label: `step process ${child.pid}`, release: async () => kill(), releaseSync: kill });
  try {
    return await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => o.onStdout?.(d));
      child.stderr.on('data', (d: Buffer) => o.onStderr?.(d));
      if (o.signal?.aborted) kill();
      else o.signal?.addEventListener('abort', kill, { once: true });
      child.on('error', (e) => reject(new Error(`cannot start unshare: ${e.message}`)));
      child.on('close', (code, signal) => {
        o.signal?.removeEventListener('abort', kill);
        resolve(code ?? 128 + ((constants.signals as Record<string, number>)[signal ?? 'SIGKILL'] ?? 9));
      });
    });
  } finally {
    kill();
    untrack();
  }
}
