import { readFileSync } from 'node:fs';
import type { ExecUser } from './user.js';
import { DEFAULT_PATH_ENV } from '../frontend/index.js';

/** An OCI runtime-spec mount. */
export interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

export interface BundleOptions {
  /** Absolute path of the container's root filesystem (the overlay merged dir). */
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  user: ExecUser;
  hostname: string;
  /** `host` (docker build's default) shares the host's network; `none` gets a namespace with only lo. */
  network: 'host' | 'none';
  /** For `none`: an existing namespace to join (one with lo up); a fresh one from runc otherwise. */
  netnsPath?: string | undefined;
  /** Files bind-mounted at /etc/hosts, /etc/resolv.conf, /etc/hostname. */
  etcFiles: { hosts: string; resolvConf: string; hostname: string };
  /** RLIMIT_NOFILE for the step (docker: 1048576); never above what this process may grant. */
  nofile?: number | undefined;
  /** RUN --mount mounts, after the standard ones. */
  mounts: SpecMount[];
}

/** docker's default capability set for containers. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Where the runtime mounts over the root filesystem (the stubs for these never reach a layer). */
export function standardMountTargets(): Array<{ path: string; kind: 'dir' | 'file' }> {
  return [
    { path: '/proc', kind: 'dir' },
    { path: '/dev', kind: 'dir' },
    { path: '/sys', kind: 'dir' },
    { path: '/etc/hosts', kind: 'file' },
    { path: '/etc/resolv.conf', kind: 'file' },
    { path: '/etc/hostname', kind: 'file' },
  ];
}

/** The config.json of an OCI runtime bundle for one RUN step. */
/** The step's environment with docker's defaults for PATH and HOME when the image sets neither. */
export function withDefaults(env: string[], home: string): string[] {
  const out = [...env];
  if (!out.some((e) => e.startsWith('PATH='))) out.unshift(DEFAULT_PATH_ENV);
  if (!out.some((e) => e.startsWith('HOME='))) out.push(`HOME=${home}`);
  return out;
}

export function runtimeSpec(o: BundleOptions): Record<string, unknown> {
  const env = withDefaults(o.env, o.user.home);
  const root = o.user.uid === 0;
  const namespaces: Array<{ type: string; path?: string }> = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (o.network === 'none') namespaces.push(o.netnsPath ? { type: 'network', path: o.netnsPath } : { type: 'network' });
  const bindFile = (destination: string, source: string): SpecMount => ({ destination, type: 'bind', source, options: ['rbind', 'rprivate'] });
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: o.user.uid, gid: o.user.gid, additionalGids: o.user.additionalGids },
      args: o.args,
      env,
      cwd: o.cwd,
      capabilities: {
        bounding: DEFAULT_CAPABILITIES,
        effective: root ? DEFAULT_CAPABILITIES : [],
        permitted: root ? DEFAULT_CAPABILITIES : [],
        inheritable: [],
        ambient: [],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: o.nofile ?? 1048576, soft: o.nofile ?? 1048576 }],
      noNewPrivileges: false,
    },
    root: { path: o.rootfs, readonly: false },
    hostname: o.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      bindFile('/etc/hosts', o.etcFiles.hosts),
      bindFile('/etc/resolv.conf', o.etcFiles.resolvConf),
      bindFile('/etc/hostname', o.etcFiles.hostname),
      ...o.mounts,
    ],
    linux: {
      namespaces,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/proc/scsi',
        '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** The open-files limit to give a container: docker's 1048576, capped at this process's hard limit. */
export function containerNofile(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const hard = line?.split(/\s+/)[4];
    if (hard && /^\d+$/.test(hard)) return Math.min(1048576, Number(hard));
  } catch {
    // not Linux /proc: keep docker's value
  }
  return 1048576;
}
