/**
 * Whether a process id is alive on this host (EPERM: alive, someone else's). Shared by the store's and
 * the runtime's stale-owner checks (lock files, temp dirs, mounts, containers named by their pid).
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
