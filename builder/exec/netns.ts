import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { processAlive } from '../../oci/process.js';
import { track } from './cleanup.js';

const exec = promisify(execFile);

const NETNS_DIR = '/var/run/netns';

/** Network namespaces are named `tsbuild-<pid>-<random>` so the sweep can tell whose they are. */
export const NETNS_PREFIX = 'tsbuild-';

export interface IsolatedNetwork {
  /** The namespace file to give runc (`linux.namespaces[].path`). */
  path: string;
  release(): Promise<void>;
}

/**
 * A network namespace with only the loopback interface, up — what `docker build --network=none` gives a
 * step (a fresh namespace from runc alone would leave `lo` down, and 127.0.0.1 unusable).
 */
export async function isolatedNetwork(): Promise<IsolatedNetwork> {
  const name = `${NETNS_PREFIX}${process.pid}-${randomBytes(5).toString('hex')}`;
  try {
    await exec('ip', ['netns', 'add', name]);
  } catch (e) {
    throw new Error(
      `cannot create a network namespace for --network=none: ${String((e as { stderr?: string }).stderr ?? (e as Error).message).trim()} (needs root and iproute2)`,
    );
  }
  const untrack = track({
    label: `network namespace ${name}`,
    release: () =>
      exec('ip', ['netns', 'delete', name]).then(
        () => undefined,
        () => undefined,
      ),
    releaseSync: () => void spawnSync('ip', ['netns', 'delete', name]),
  });
  const release = async () => {
    await exec('ip', ['netns', 'delete', name]).catch(() => undefined);
    untrack();
  };
  try {
    await exec('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    await release();
    throw e;
  }
  return { path: `${NETNS_DIR}/${name}`, release };
}

/** Deletes namespaces left by dead tsbuild processes. */
export async function sweepNetworks(): Promise<string[]> {
  const removed: string[] = [];
  // `ip netns` keeps one file per namespace in /run/netns: reading it costs no process
  for (const name of await readdir(NETNS_DIR).catch(() => [] as string[])) {
    if (!name?.startsWith(NETNS_PREFIX)) continue;
    const owner = Number(name.slice(NETNS_PREFIX.length).split('-')[0]);
    if (!owner || owner === process.pid || processAlive(owner)) continue;
    await exec('ip', ['netns', 'delete', name]).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}
