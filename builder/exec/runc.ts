import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
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
  id?: string | undefined;
  onStdout?: ((chunk: Buffer) => void) | undefined;
  onStderr?: ((chunk: Buffer) => void) | undefined;
  /** Aborting kills the container (SIGKILL) and resolves with its exit code. */
  signal?: AbortSignal | undefined;
}

async function runc(args: string[]): Promise<void> {
  await exec(runcPath(), ['--root', RUNC_ROOT, ...args]);
}

/** Kills and removes a container, ignoring one that is already gone. */
export async function deleteContainer(id: string): Promise<void> {
  // runc keeps a container's state in RUNC_ROOT/ID and `runc run` removes it as the container exits: without
  // it there is nothing to delete, and a RUN that ended normally costs no further runc start
  if (!existsSync(join(RUNC_ROOT, id))) return;
  await runc(['delete', '-f', id]).catch(() => undefined);
}

/**
 * The containers in our runc root (`runc list`). `runc list` fails when a container's state dir goes
 * while it reads them (another build's container ending): that is retried, so the answer is never an
 * empty list in place of an error. No root yet: none. Throws after five failed tries.
 */
export async function listContainers(): Promise<Array<{ id: string; status: string; pid: number }>> {
  if (!existsSync(RUNC_ROOT)) return [];
  for (let attempt = 1; ; attempt++) {
    try {
      const { stdout } = await exec(runcPath(), ['--root', RUNC_ROOT, 'list', '--format', 'json']);
      const list = JSON.parse(stdout || 'null') as Array<{ id: string; status: string; pid: number }> | null;
      return list ?? [];
    } catch (e) {
      if (attempt >= 5) throw e;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

/**
 * The keeper: a shell in a session of its own that runs `runc run` as its child and watches its stdin, a
 * pipe only tsbuild holds the other end of. End of file there means tsbuild is gone — it closed the pipe to
 * cancel the step, or it died, however (SIGKILL included; runc itself would outlive it and the container
 * would run on) — and the keeper kills the container until `runc run` has exited, then deletes it. Its own
 * session keeps a terminal's Ctrl-C away from it and from runc: tsbuild decides what happens then.
 * `runc run` exits once it has reaped the container's init, and the kernel reaps every other process of
 * the container's pid namespace before that: when the keeper exits, no process of the step is left.
 */
const KEEPER = `
exec 3<&0 </dev/null
"$0" --root "$1" run --bundle "$2" "$3" 3<&- &
child=$!
(
  while read -r _ <&3; do :; done
  while kill -0 "$child" 2>/dev/null; do
    "$0" --root "$1" kill "$3" KILL >/dev/null 2>&1
    sleep 0.05
  done
  "$0" --root "$1" delete -f "$3" >/dev/null 2>&1
) &
watcher=$!
exec 3<&-
wait "$child"
code=$?
kill "$watcher" 2>/dev/null
exit "$code"
`;

/**
 * `runc run --bundle DIR ID` under a keeper (see KEEPER): output streamed to the callbacks, resolves with
 * the exit code (128+n when killed by signal n) once every process of the container is gone. Aborting, an
 * interrupt (SIGINT/SIGTERM through the cleanup registry) or the death of this process kills the
 * container; it is always deleted afterwards.
 */
export async function runcRun(options: RuncRunOptions): Promise<number> {
  const id = options.id ?? newContainerId();
  const child = spawn('/bin/sh', ['-c', KEEPER, runcPath(), RUNC_ROOT, options.bundle, id], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`cannot start runc: ${e.message}`)));
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? osSignal(signal) : 9)));
  });
  exited.catch(() => undefined);
  child.stdin.on('error', () => undefined);
  // closing the keeper's stdin is how the container is stopped: the keeper kills it until runc is gone
  const stop = () => child.stdin.end();
  const untrack = track({
    label: `runc container ${id}`,
    release: async () => {
      stop();
      await Promise.race([exited.catch(() => undefined), new Promise((r) => setTimeout(r, 15_000))]);
      await deleteContainer(id);
    },
    releaseSync: () => void spawnSync(runcPath(), ['--root', RUNC_ROOT, 'delete', '-f', id]),
  });
  try {
    child.stdout.on('data', (d: Buffer) => options.onStdout?.(d));
    child.stderr.on('data', (d: Buffer) => options.onStderr?.(d));
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener('abort', stop, { once: true });
    try {
      return await exited;
    } finally {
      options.signal?.removeEventListener('abort', stop);
      stop();
    }
  } finally {
    await deleteContainer(id);
    untrack();
  }
}

function osSignal(name: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[name] ?? 9;
}
