/**
 * builder/exec — RUN steps in runc containers on overlayfs.
 *
 *   const snapshots = await openSnapshots(store);                 // builder/snapshot
 *   const upper = await snapshots.tempDir('upper');
 *   const { exitCode } = await runInContainer(store, {
 *     lowers: parentChainId,            // or undefined for FROM scratch
 *     upperDir: upper, args: ['/bin/sh', '-c', 'make'], env, cwd, user, network: 'host',
 *     mounts: [{ type: 'cache', target: '/root/.cache' }, { type: 'secret', id: 'npmrc', source: '/host/file' }],
 *     onStdout, onStderr, signal,
 *   });
 *   // then commitUpperDir(store, { upper, lowers: chain diff dirs, ... }) and snapshots.adopt(...)
 *
 * Everything a run holds (container, mounts, temp dirs) is registered in cleanup.ts and released on
 * failure, abort, SIGINT/SIGTERM and exit; `sweepLeftovers(store)` at start removes what a crash left.
 */
export { runInContainer, type RunOptions, type RunResult } from './run-container.js';
export { type RunMount } from './mounts.js';
export { sweepLeftovers, type SweepReport } from './sweep.js';
export { track, trackDir, trackMount, releaseAll, installCleanupHandlers, liveResources, type Resource } from './cleanup.js';
export { mountOverlay, unmount, overlayFeatureOptions, mountPoints, type OverlayMount } from './overlay.js';
export { runcRun, listContainers, deleteContainer, RUNC_ROOT, CONTAINER_PREFIX } from './runc.js';
export { runtimeSpec, DEFAULT_CAPABILITIES, type BundleOptions, type SpecMount } from './bundle.js';
export { resolveUser, type ExecUser } from './user.js';
