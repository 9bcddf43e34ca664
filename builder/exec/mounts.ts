import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { processAlive } from '../../oci/process.js';
import { trackMount } from './cleanup.js';
import { mountOverlay, unmount } from './overlay.js';
import type { SpecMount } from './bundle.js';

/** `RUN --mount=...` as the solver hands it over (paths on the host already resolved). */
export type RunMount =
  | {
      type: 'cache';
      target: string;
      /** Defaults to the target. */
      id?: string;
      /** shared (default): used by concurrent builds together; private: a separate dir while in use; locked: wait for it. */
      sharing?: 'shared' | 'private' | 'locked';
      readonly?: boolean;
      /** Owner and mode of the cache dir when it is first created (default root, 0755). */
      mode?: number;
      uid?: number;
      gid?: number;
    }
  | {
      type: 'bind';
      target: string;
      /** A host dir or file (a context dir, a stage's rootfs…). */
      source: string;
      /** rw: the step may write, but changes are discarded afterwards. */
      readwrite?: boolean;
    }
  | { type: 'tmpfs'; target: string; size?: number }
  | {
      type: 'secret';
      id: string;
      /** The host file with the secret. */
      source: string;
      /** Defaults to /run/secrets/<id>. */
      target?: string;
      mode?: number;
      uid?: number;
      gid?: number;
    }
  | {
      /** `RUN --mount=type=ssh`: an SSH agent socket on the host, reached in the container at `target`. */
      type: 'ssh';
      id: string;
      /** The agent's socket on the host (`--ssh default` is $SSH_AUTH_SOCK). */
      socket: string;
      target: string;
      mode?: number;
      uid?: number;
      gid?: number;
    };

export interface PreparedMounts {
  spec: SpecMount[];
  /** Mount destinations with whether they are files (a stub of the right kind must exist). */
  targets: Array<{ path: string; kind: 'dir' | 'file' }>;
  release(): Promise<void>;
}

function cacheKey(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}

async function tryLock(lockFile: string): Promise<boolean> {
  try {
    await fs.writeFile(lockFile, String(process.pid), { flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const owner = Number(await fs.readFile(lockFile, 'utf8').catch(() => '0'));
    if (owner && !processAlive(owner)) {
      await fs.rm(lockFile, { force: true });
      return tryLock(lockFile);
    }
    return false;
  }
}

async function cacheDir(root: string, m: Extract<RunMount, { type: 'cache' }>): Promise<{ dir: string; unlock?: () => Promise<void> }> {
  const key = cacheKey(m.id || m.target);
  const create = async (dir: string) => {
    try {
      await fs.mkdir(dir);
      await fs.chown(dir, m.uid ?? 0, m.gid ?? 0);
      await fs.chmod(dir, m.mode ?? 0o755);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    return dir;
  };
  const sharing = m.sharing ?? 'shared';
  if (sharing === 'shared') return { dir: await create(join(root, key)) };
  if (sharing === 'locked') {
    const lock = join(root, `${key}.lock`);
    while (!(await tryLock(lock))) await new Promise((r) => setTimeout(r, 100));
    return { dir: await create(join(root, key)), unlock: () => fs.rm(lock, { force: true }) };
  }
  for (let n = 0; ; n++) {
    const name = n === 0 ? key : `${key}-${n}`;
    const lock = join(root, `${name}.lock`);
    if (await tryLock(lock)) return { dir: await create(join(root, name)), unlock: () => fs.rm(lock, { force: true }) };
  }
}

/**
 * Host-side preparation of RUN --mount mounts: cache dirs under `cacheRoot`, read-write binds as a
 * throwaway overlay over the source, secrets copied into the run's private dir with their mode/owner.
 */
export async function prepareMounts(cacheRoot: string, runDir: string, mounts: RunMount[]): Promise<PreparedMounts> {
  const spec: SpecMount[] = [];
  const targets: PreparedMounts['targets'] = [];
  const releases: Array<() => Promise<void>> = [];
  const release = async () => {
    for (const r of releases.reverse()) await r().catch(() => undefined);
  };
  try {
    for (const [i, m] of mounts.entries()) {
      if (m.type === 'cache') {
        const { dir, unlock } = await cacheDir(cacheRoot, m);
        if (unlock) releases.push(unlock);
        spec.push({ destination: m.target, type: 'bind', source: dir, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
        targets.push({ path: m.target, kind: 'dir' });
      } else if (m.type === 'bind') {
        const st = await fs.stat(m.source).catch(() => {
          throw new Error(`RUN --mount=type=bind source ${m.source} does not exist`);
        });
        let source = m.source;
        if (m.readwrite && st.isDirectory()) {
          const base = join(runDir, `bind-${i}`);
          await Promise.all(['upper', 'work', 'merged'].map((d) => fs.mkdir(join(base, d), { recursive: true })));
          const merged = join(base, 'merged');
          await mountOverlay({ lowers: [m.source], upper: join(base, 'upper'), work: join(base, 'work'), target: merged });
          const untrack = trackMount(merged, unmount);
          releases.push(async () => {
            await unmount(merged);
            untrack();
          });
          source = merged;
        } else if (m.readwrite) {
          source = join(runDir, `bind-${i}`);
          await fs.copyFile(m.source, source);
        }
        spec.push({ destination: m.target, type: 'bind', source, options: ['rbind', m.readwrite ? 'rw' : 'ro'] });
        targets.push({ path: m.target, kind: st.isDirectory() ? 'dir' : 'file' });
      } else if (m.type === 'tmpfs') {
        spec.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', ...(m.size ? [`size=${m.size}`] : [])] });
        targets.push({ path: m.target, kind: 'dir' });
      } else if (m.type === 'ssh') {
        // A socket of our own in the run dir, forwarding each connection to the agent: it gets the mount's
        // owner and mode (BuildKit's defaults: root, 0600) whatever the agent socket's are.
        const proxy = join(runDir, `ssh-${i}.sock`);
        const open = new Set<net.Socket>();
        const server = net.createServer((conn) => {
          const agent = net.connect(m.socket);
          open.add(conn).add(agent);
          conn.pipe(agent).pipe(conn);
          const close = () => {
            conn.destroy();
            agent.destroy();
          };
          conn.on('error', close);
          agent.on('error', close);
        });
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(proxy, () => resolve());
        });
        server.unref();
        releases.push(
          () =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              for (const c of open) c.destroy();
            }),
        );
        await fs.chown(proxy, m.uid ?? 0, m.gid ?? 0);
        await fs.chmod(proxy, m.mode ?? 0o600);
        spec.push({ destination: m.target, type: 'bind', source: proxy, options: ['rbind', 'rw'] });
        targets.push({ path: m.target, kind: 'file' });
      } else {
        const target = m.target ?? `/run/secrets/${m.id}`;
        const copy = join(runDir, `secret-${i}`);
        await fs.copyFile(m.source, copy).catch(() => {
          throw new Error(`secret "${m.id}" cannot be read from ${m.source}; pass it with --secret id=${m.id},src=FILE`);
        });
        await fs.chown(copy, m.uid ?? 0, m.gid ?? 0);
        await fs.chmod(copy, m.mode ?? 0o400);
        spec.push({ destination: target, type: 'bind', source: copy, options: ['rbind', 'ro'] });
        targets.push({ path: target, kind: 'file' });
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { spec, targets, release };
}
