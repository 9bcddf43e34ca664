import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { containerNofile, runtimeSpec, standardMountTargets, withDefaults } from './bundle.js';
import { trackDir, trackMount } from './cleanup.js';
import { MountStubs } from './mount-stubs.js';
import { prepareMounts, type RunMount } from './mounts.js';
import { isolatedNetwork, type IsolatedNetwork } from './netns.js';
import { mountAll, unmount, type Mount } from './overlay.js';
import { runcPath, runcRun } from './runc.js';
import { unshareAvailable, unshareRun } from './unshare.js';
import { resolveUser } from './user.js';

export interface RunOptions {
  /**
   * The container's root filesystem as its snapshot's prepare hands it over (builder/solver/overlay.ts
   * `prepareSnapshot`): mounted in order at the rootfs; an overlay's upperdir receives the step's changes.
   */
  rootfs: Mount[];
  /** Where the run's private dir (`run-<pid>-<hex>`: bundle, /etc files, secrets) is made; the sweep looks there. */
  runRoot: string;
  /** The dir that holds `RUN --mount=type=cache` dirs. */
  cacheRoot: string;
  args: string[];
  env?: string[];
  /** Working directory inside the container; created when missing. Default `/`. */
  cwd?: string;
  /** `name`, `uid`, `name:group`, `uid:gid`, resolved in the image's /etc/passwd and /etc/group. */
  user?: string;
  /** Default `host`, like `docker build`. */
  network?: 'host' | 'none';
  mounts?: RunMount[];
  hostname?: string;
  /** `--add-host HOST:IP`: lines added to the container's /etc/hosts, as docker adds them. */
  extraHosts?: Array<{ host: string; ip: string }>;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Aborting kills the container; the call then resolves with exit code 137 and cleans up. */
  signal?: AbortSignal;
  /**
   * `runc` (default when installed) or the `unshare` fallback; `TSBUILD_RUNTIME=unshare` forces the
   * fallback for the whole process.
   */
  runtime?: 'runc' | 'unshare';
}

function chooseRuntime(wanted: RunOptions['runtime']): 'runc' | 'unshare' {
  const choice = wanted ?? (process.env.TSBUILD_RUNTIME as RunOptions['runtime']) ?? undefined;
  if (choice === 'runc' || choice === 'unshare') return choice;
  try {
    runcPath();
    return 'runc';
  } catch {
    if (unshareAvailable()) return 'unshare';
    throw new Error('neither runc nor util-linux unshare is installed; install runc (scripts/setup.sh) to run RUN steps');
  }
}

export interface RunResult {
  exitCode: number;
}

function hostsFile(hostname: string, network: 'host' | 'none', hostHosts: string, extra: Array<{ host: string; ip: string }> = []): string {
  const base = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';
  const own = `127.0.1.1\t${hostname}\n`;
  const added = extra.map((e) => `${e.ip}\t${e.host}\n`).join('');
  return (network === 'host' && hostHosts ? `${hostHosts.trimEnd()}\n${own}` : `${base}${own}`) + added;
}

/**
 * Runs one RUN step: mounts `rootfs` (the snapshot's mounts), runs `args` with runc in it, and takes
 * everything down again — also on failure, abort, SIGINT or SIGTERM. The snapshot's upper dir then holds
 * exactly the step's changes (no mount stubs), ready for `commitUpperDir`.
 */
export async function runInContainer(options: RunOptions): Promise<RunResult> {
  const tag = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const runDir = join(options.runRoot, `run-${tag}`);
  await fs.mkdir(join(runDir, 'rootfs'), { recursive: true });
  const untrackRunDir = trackDir(runDir);
  const rootfs = join(runDir, 'rootfs');
  const untrackMounts: Array<() => void> = [];
  let mounted: string[] = [];
  try {
    const runtime = chooseRuntime(options.runtime);
    // Without runc there is no device cgroup: device nodes shipped in an image must not open host devices.
    const flags = runtime === 'unshare' ? ['nodev'] : [];
    mounted = await mountAll(options.rootfs, rootfs, flags);
    for (const m of mounted) untrackMounts.push(trackMount(m, unmount));

    const network = options.network ?? 'host';
    const hostname = options.hostname ?? 'tsbuild';
    const hostHosts = await fs.readFile('/etc/hosts', 'utf8').catch(() => '');
    const etcFiles = { hosts: join(runDir, 'hosts'), resolvConf: join(runDir, 'resolv.conf'), hostname: join(runDir, 'hostname') };
    await fs.writeFile(etcFiles.hosts, hostsFile(hostname, network, hostHosts, options.extraHosts));
    await fs.writeFile(etcFiles.resolvConf, await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
    await fs.writeFile(etcFiles.hostname, `${hostname}\n`);

    const user = await resolveUser(rootfs, options.user);
    const prepared = await prepareMounts(options.cacheRoot, runDir, options.mounts ?? []);
    let netns: IsolatedNetwork | undefined;
    try {
      if (network === 'none' && runtime === 'runc') netns = await isolatedNetwork();
      const stubs = await MountStubs.create(rootfs, [...standardMountTargets(), ...prepared.targets]);
      try {
        if (runtime === 'unshare') {
          const exitCode = await unshareRun({
            rootfs,
            args: options.args,
            env: withDefaults(options.env ?? [], user.home),
            cwd: options.cwd || '/',
            user,
            hostname,
            network,
            etcFiles,
            mounts: prepared.spec,
            onStdout: options.onStdout,
            onStderr: options.onStderr,
            signal: options.signal,
          });
          return { exitCode };
        }
        const spec = runtimeSpec({
          rootfs,
          args: options.args,
          env: options.env ?? [],
          cwd: options.cwd || '/',
          user,
          hostname,
          network,
          netnsPath: netns?.path,
          etcFiles,
          mounts: prepared.spec,
          nofile: containerNofile(),
        });
        await fs.writeFile(join(runDir, 'config.json'), JSON.stringify(spec, null, 2));
        const exitCode = await runcRun({ bundle: runDir, onStdout: options.onStdout, onStderr: options.onStderr, signal: options.signal });
        return { exitCode };
      } finally {
        await stubs.remove();
      }
    } finally {
      await netns?.release();
      await prepared.release();
    }
  } finally {
    for (const m of mounted.reverse()) await unmount(m);
    for (const untrack of untrackMounts.reverse()) untrack();
    await fs.rm(runDir, { recursive: true, force: true });
    untrackRunDir();
  }
}
