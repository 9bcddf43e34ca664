import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** The kernel's mount option page: the whole `-o` string must fit in it. */
export const MOUNT_OPTIONS_LIMIT = 4095;

let featureOptions: string[] | undefined;

/**
 * `redirect_dir=off,index=off,metacopy=off` where this kernel knows the option: a rename then copies data
 * up instead of leaving a redirect xattr, and no index/metacopy state ties the upper dir to the mount, so
 * the upper dir can be read as a plain tree and turned into a tar.
 */
export function overlayFeatureOptions(): string[] {
  if (!featureOptions) {
    featureOptions = ['redirect_dir', 'index', 'metacopy'].filter((name) => existsSync(`/sys/module/overlay/parameters/${name}`)).map((name) => `${name}=off`);
  }
  return featureOptions;
}

export interface OverlayMount {
  /** Lower dirs, topmost first. Relative paths resolve against `cwd` (short snapshot links). */
  lowers: string[];
  upper?: string;
  work?: string;
  target: string;
  /** Working directory for the mount call (the snapshots root when `lowers` are `l/<short>` links). */
  cwd?: string;
  readonly?: boolean;
  /** Generic mount flags to add, e.g. `nodev`. */
  flags?: string[];
}

/**
 * One mount as a snapshot hands it over (containerd's `mount.Mount`): `mount -t type -o options source
 * <root>/<target>`. A snapshot's prepare/view returns these; builder/exec only performs them.
 */
export interface Mount {
  /** `overlay`, `bind`… */
  type: string;
  source: string;
  /** Inside the root it is mounted at; default the root itself. */
  target?: string;
  options: string[];
  /** Working directory for the mount call: relative `lowerdir` entries (short snapshot links) resolve against it. */
  cwd?: string;
}

/** An overlay as a `Mount` (the kernel feature options included). */
export function overlayMount(m: Omit<OverlayMount, 'target'>): Mount {
  if (m.lowers.length === 0) throw new Error('an overlay mount needs at least one lower dir');
  return { type: 'overlay', source: 'overlay', options: overlayOptions({ ...m, target: '' }).split(','), ...(m.cwd ? { cwd: m.cwd } : {}) };
}

/**
 * Performs `mounts` in order under `root`, each with `extraOptions` added (e.g. `nodev`). On failure what
 * was mounted is taken down again. Returns the mount points, deepest last.
 */
export async function mountAll(mounts: Mount[], root: string, extraOptions: string[] = []): Promise<string[]> {
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const target = m.target ? join(root, m.target) : root;
      const options = [...m.options, ...extraOptions].join(',');
      if (options.length > MOUNT_OPTIONS_LIMIT) {
        throw new Error(
          `${m.type} mount options for ${target} are ${options.length} bytes, over the kernel's limit of ${MOUNT_OPTIONS_LIMIT}; squash the base image`,
        );
      }
      const bind = m.type === 'bind';
      const args = bind ? ['--bind', m.source, target] : ['-t', m.type, m.source, target];
      try {
        await exec('mount', [...args, ...(options ? ['-o', options] : [])], m.cwd ? { cwd: m.cwd } : {});
      } catch (e) {
        const stderr = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim();
        throw new Error(`mounting the ${m.type} for ${target} failed: ${stderr} (needs root and overlayfs)`);
      }
      done.push(target);
    }
  } catch (e) {
    for (const t of done.reverse()) await unmount(t).catch(() => undefined);
    throw e;
  }
  return done;
}

export function overlayOptions(m: OverlayMount): string {
  const parts = [`lowerdir=${m.lowers.join(':')}`];
  if (m.upper && m.work && !m.readonly) parts.push(`upperdir=${m.upper}`, `workdir=${m.work}`);
  parts.push(...overlayFeatureOptions(), ...(m.flags ?? []));
  return parts.join(',');
}

export async function mountOverlay(m: OverlayMount): Promise<void> {
  if (m.lowers.length === 0) throw new Error('an overlay mount needs at least one lower dir');
  const options = overlayOptions(m);
  if (options.length > MOUNT_OPTIONS_LIMIT) {
    throw new Error(
      `overlay mount options for ${m.lowers.length} layers are ${options.length} bytes, over the kernel's limit of ${MOUNT_OPTIONS_LIMIT}; squash the base image`,
    );
  }
  try {
    await exec('mount', ['-t', 'overlay', 'overlay', '-o', options, m.target], { cwd: m.cwd });
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim();
    throw new Error(`mounting the overlay for ${m.target} failed: ${stderr} (needs root and overlayfs)`);
  }
}

/** Unmounts; a busy mount is detached lazily so it disappears once the last user is gone. */
export async function unmount(target: string): Promise<void> {
  try {
    await exec('umount', [target]);
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? '');
    if (/not mounted|no mount point|not found/i.test(stderr)) return;
    await exec('umount', ['-l', target]);
  }
}

/** Mount points listed in /proc/self/mountinfo (decoded), in mount order. */
export async function mountPoints(): Promise<string[]> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}
