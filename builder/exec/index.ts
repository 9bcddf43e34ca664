/**
 * builder/exec — RUN steps in throwaway containers on overlayfs.
 *
 *   const snapshots = await openSnapshots(store);                  // builder/snapshot
 *   await sweepLeftovers(store);                                    // once at start: crash leftovers
 *   const upper = await snapshots.tempDir('upper');                 // same filesystem as the snapshots
 *   const { exitCode } = await runInContainer(store, {
 *     lowers: parentChainId,          // a snapshot chainID (100+ layers fine), lower dirs, or undefined = scratch
 *     upperDir: upper,
 *     args: ['/bin/sh', '-c', 'make'], env, cwd, user: 'app:staff',
 *     network: 'host',                // docker build's default; 'none' = own netns with lo up
 *     mounts: [{ type: 'cache', target: '/root/.cache', sharing: 'locked' },
 *              { type: 'bind', target: '/src', source: contextDir },          // read-only unless readwrite
 *              { type: 'tmpfs', target: '/scratch' },
 *              { type: 'secret', id: 'npmrc', source: '/host/secret' }],      // /run/secrets/npmrc, 0400
 *     onStdout, onStderr, signal,     // abort → container killed, exit code 137
 *   });
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
export { mountOverlay, unmount, overlayFeatureOptions, overlayOptions, mountPoints, MOUNT_OPTIONS_LIMIT, type OverlayMount } from './overlay.js';
export { runcRun, runcPath, listContainers, deleteContainer, RUNC_ROOT, CONTAINER_PREFIX } from './runc.js';
export { unshareRun, unshareAvailable } from './unshare.js';
export { runtimeSpec, withDefaults, DEFAULT_CAPABILITIES, type BundleOptions, type SpecMount } from './bundle.js';
export { resolveUser, type ExecUser } from './user.js';
export { MountStubs } from './mount-stubs.js';
export { isolatedNetwork, sweepNetworks } from './netns.js';
