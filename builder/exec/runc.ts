import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { promisify } from 'node:util';
import { track } from './cleanup.js';

const exec = promisify(execFile);

/** runc keeps our containers' state apart from anyone else's (docker, buildah, a user's runc). */
export const RUNC_ROOT = '/run/tsbuild-runc';
/** Container ids are `tsbuild-<pid>-<random>`: the sweep knows ours and whether their owner is alive. */
export const CONTAINER_PREFIX = 'tsbuild-';

export function runcPath(): string {
  for (const p of ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc', '/sbin/runc']) if (existsSync(p)) return p;
  throw new Error('runc is not installed; install the "runc" package (scripts/setup.sh) to run RUN steps');
}

export function newContainerId(): string {
  return `${CONTAINER_PREFIX}${process.pid}-${randomBytes(5).toString('hex')}`;
}

export interface RuncRunOptions {
  bundle: string;
  id?: string;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Aborting kills the container (SIGKILL) and resolves with its exit code. */
  signal?: AbortSignal;
}

async function runc(args: string[]): Promise<void> {
  await exec(runcPath(), ['--root', RUNC_ROOT, ...args]);
}

/** Kills and removes a container, ignoring one that is already gone. */
export async function deleteContainer(id: string): Promise<void> {
  await runc(['delete', '-f', id]).catch(() => undefined);
}

/** Container ids in our runc root. */
export async function listContainers(): Promise<Array<{ id: string; status: string; pid: number }>> {
  try {
    const { stdout } = await exec(runcPath(), ['--root', RUNC_ROOT, 'list', '--format', 'json']);
    const list = JSON.parse(stdout || 'null') as Array<{ id: string; status: string; pid: number }> | null;
    return list ?? [];
  } catch {
    return [];
  }
}

/**
 * `runc run --bundle DIR ID`: output streamed to the callbacks, resolves with the exit code (128+n when
 * killed by signal n). The container is always deleted afterwards, also when the process is interrupted.
 */
export async function runcRun(options: RuncRunOptions): Promise<number> {
  const id = options.id ?? newContainerId();
  const untrack = track({
    label: `runc container ${id}`,
    release: () => deleteContainer(id),
    releaseSync: () => void spawnSync(runcPath(), ['--root', RUNC_ROOT, 'delete', '-f', id]),
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn(runcPath(), ['--root', RUNC_ROOT, 'run', '--bundle', options.bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d: Buffer) => options.onStdout?.(d));
      child.stderr.on('data', (d: Buffer) => options.onStderr?.(d));
      const onAbort = () => {
        void (async () => {
          // the container may not exist yet while runc sets it up: retry briefly, then stop runc itself
          for (let i = 0; i < 50 && child.exitCode === null; i++) {
            try {
              await runc(['kill', id, 'KILL']);
              return;
            } catch {
              await new Promise((r) => setTimeout(r, 100));
            }
          }
          if (child.exitCode === null) child.kill('SIGKILL');
        })();
      };
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => reject(new Error(`cannot start runc: ${e.message}`)));
      child.on('close', (code, signal) => {
        options.signal?.removeEventListener('abort', onAbort);
        resolve(code ?? 128 + (signal ? osSignal(signal) : 9));
      });
    });
  } finally {
    await deleteContainer(id);
    untrack();
  }
}

function osSignal(name: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[name] ?? 9;
}
