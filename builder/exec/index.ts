/**
 * builder/exec — RUN steps in throwaway containers on overlayfs.
 *
 *   await sweepLeftovers(store);                                    // once at start: crash leftovers
 *   // builder/solver/overlay.ts resolves the chain into mounts (the only place that does):
 *   const snapshot = await prepareSnapshot(snapshots, parentChainId, upper);   // { mounts, upper, work }
 *   const { exitCode } = await runInContainer({
 *     rootfs: snapshot.mounts,        // Mount[]: an overlay of short `l/` links (100+ layers fine)
 *     runRoot: await store.localDir('tmp'), cacheRoot: await store.localDir('cache'),
 *     args: ['/bin/sh', '-c', 'make'], env, cwd, user: 'app:staff',
 *     network: 'host',                // docker build's default; 'none' = own netns with lo up
 *     mounts: [{ type: 'cache', target: '/root/.cache', sharing: 'locked' },
 *              { type: 'bind', target: '/src', source: contextDir },          // read-only unless readwrite
 *              { type: 'tmpfs', target: '/scratch' },
 *              { type: 'secret', id: 'npmrc', source: '/host/secret' }],      // /run/secrets/npmrc, 0400
 *     onStdout, onStderr, signal,     // abort → container killed, exit code 137
 *   });
 *   // (`runOnSnapshot(store, { lowers, upperDir, ... })` in builder/solver does these steps in one call)
 *   // upper now holds exactly the step's changes (no /proc, /etc/hosts, mount-target stubs):
 *   // commitUpperDir(store, { upper, lowers: chain diff dirs, ... }) then snapshots.adopt(...)
 *
 * Runtime: runc (Debian's 1.1.5) with mount/pid/ipc/uts (+net) namespaces, docker's default capability set,
 * /proc /dev /dev/pts /dev/shm /sys, and /etc/hosts /etc/resolv.conf /etc/hostname bound from a per-run
 * dir. Without runc (or with `runtime: 'unshare'` / TSBUILD_RUNTIME=unshare) util-linux unshare + chroot.
 *
 * Everything a run holds (container, mounts, netns, temp dirs) is registered in cleanup.ts and released on
 * failure, abort, SIGINT/SIGTERM (the process then ends by the same signal) and exit. `trackDir` and
 * `trackMount` register the caller's own scratch dirs and mounts the same way.
 */
export { runInContainer, type RunOptions, type RunResult } from './run-container.js';
export { type RunMount } from './mounts.js';
export { sweepLeftovers, type SweepReport } from './sweep.js';
export { track, trackDir, trackMount, releaseAll, installCleanupHandlers, liveResources, onInterrupt, holdExitFor, type Resource } from './cleanup.js';
export {
  mountOverlay,
  mountAll,
  overlayMount,
  unmount,
  overlayFeatureOptions,
  overlayOptions,
  mountPoints,
  MOUNT_OPTIONS_LIMIT,
  type Mount,
  type OverlayMount,
} from './overlay.js';
export { runcRun, runcPath, listContainers, deleteContainer, RUNC_ROOT, CONTAINER_PREFIX } from './runc.js';
export { unshareRun, unshareAvailable } from './unshare.js';
export { runtimeSpec, withDefaults, DEFAULT_CAPABILITIES, type BundleOptions, type SpecMount } from './bundle.js';
export { resolveUser, type ExecUser } from './user.js';
export { MountStubs } from './mount-stubs.js';
export { isolatedNetwork, sweepNetworks } from './netns.js';
