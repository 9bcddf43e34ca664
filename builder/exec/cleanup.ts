import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { unmount as defaultUnmount } from './overlay.js';

/**
 * Everything a build holds that must not outlive it — runc containers, overlay mounts, temp dirs — is
 * registered here while it lives. Normal code releases each in its own `finally`; when the process is
 * interrupted (SIGINT/SIGTERM) or exits early, what is still registered is released newest first.
 */
export interface Resource {
  label: string;
  release(): Promise<void>;
  /** Best-effort synchronous variant for the `exit` event, where nothing async runs any more. */
  releaseSync(): void;
}

const live: Resource[] = [];
let installed = false;
let releasingAll: Promise<void> | undefined;

/** Registers a resource; call the returned function once it was released normally. */
export function track(resource: Resource): () => void {
  installCleanupHandlers();
  live.push(resource);
  return () => {
    const i = live.lastIndexOf(resource);
    if (i !== -1) live.splice(i, 1);
  };
}

export function liveResources(): string[] {
  return live.map((r) => r.label);
}

/** Releases every registered resource, newest first (containers before mounts before dirs). */
export function releaseAll(): Promise<void> {
  releasingAll ??= (async () => {
    while (live.length > 0) {
      const r = live.pop()!;
      try {
        await r.release();
      } catch (e) {
        process.stderr.write(`tsbuild: cleaning up ${r.label} failed: ${(e as Error).message}\n`);
      }
    }
  })().finally(() => (releasingAll = undefined));
  return releasingAll;
}

function releaseAllSync(): void {
  while (live.length > 0) {
    const r = live.pop()!;
    try {
      r.releaseSync();
    } catch {
      // the exit path has no one left to tell; the next start's sweep takes what remains
    }
  }
}

const interruptListeners = new Set<(signal: NodeJS.Signals) => void>();
const held = new Set<Promise<unknown>>();

/**
 * Calls `listener` when SIGINT or SIGTERM arrives, before anything is released — a build aborts its
 * steps here, so they end as "cancelled" rather than as a killed process. Returns "stop listening".
 */
export function onInterrupt(listener: (signal: NodeJS.Signals) => void): () => void {
  installCleanupHandlers();
  interruptListeners.add(listener);
  return () => void interruptListeners.delete(listener);
}

/** After an interrupt, the process ends only once `work` has settled (at most 15 s), e.g. a command reporting how it ended. */
export function holdExitFor(work: Promise<unknown>): void {
  const settled = work.then(
    () => undefined,
    () => undefined,
  );
  held.add(settled);
  void settled.then(() => held.delete(settled));
}

function onSignal(signal: NodeJS.Signals): void {
  const again = () => undefined; // a second Ctrl-C while cleaning up must not cut the cleanup short
  process.on(signal, again);
  for (const listener of interruptListeners) {
    try {
      listener(signal);
    } catch {
      // a listener's failure must not stop the cleanup
    }
  }
  const waitForHeld = Promise.race([Promise.all([...held]), new Promise((r) => setTimeout(r, 15_000).unref())]);
  void releaseAll()
    .then(() => waitForHeld)
    .finally(() => {
      process.removeListener(signal, onSignal);
      process.removeListener(signal, again);
      // leave the way the signal would have (the parent sees "killed by SIGINT", status 130), once what
      // the held work printed is out
      setImmediate(() => {
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    });
}

/** Installs the SIGINT/SIGTERM/exit handlers once per process (done by the first `track`). */
export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.on('exit', releaseAllSync);
}

// Helpers for the usual kinds of resources: the runtime's and the solver's scratch dirs and mounts alike.

export function trackDir(path: string): () => void {
  return track({
    label: `temp dir ${path}`,
    release: () => rm(path, { recursive: true, force: true }),
    releaseSync: () => rmSync(path, { recursive: true, force: true }),
  });
}

export function trackMount(target: string, unmount: (target: string) => Promise<void> = defaultUnmount): () => void {
  return track({
    label: `mount ${target}`,
    release: () => unmount(target),
    releaseSync: () => {
      if (spawnSync('umount', [target]).status !== 0) spawnSync('umount', ['-l', target]);
    },
  });
}
