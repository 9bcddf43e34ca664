import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { track, unmount } from '../exec/index.js';

/**
 * The solver's own mounts and scratch dirs, registered with builder/exec's cleanup registry so that a
 * failure, SIGINT or SIGTERM releases them like the runtime's own. Each returns "untrack".
 */
export function trackDir(path: string): () => void {
  return track({
    label: `temp dir ${path}`,
    release: () => rm(path, { recursive: true, force: true }),
    releaseSync: () => rmSync(path, { recursive: true, force: true }),
  });
}

export function trackMount(target: string): () => void {
  return track({
    label: `mount ${target}`,
    release: () => unmount(target),
    releaseSync: () => {
      if (spawnSync('umount', [target]).status !== 0) spawnSync('umount', ['-l', target]);
    },
  });
}
