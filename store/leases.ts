/**
 * Leases: a running build (or any writer that makes blobs before it names them) holds one, so garbage
 * collection spares everything written since the oldest live lease began, however long the build runs
 * (containerd's leases, reduced to what a daemonless tool needs). A lease is a file `<root>/leases/<pid>-<rand>`
 * holding its start time; a lease whose process is gone (a crash) counts for nothing and is removed by GC.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from './image-index.js';

export interface LeaseInfo {
  pid: number;
  /** ms since the epoch */
  startedAt: number;
  purpose: string;
}

const DIR = 'leases';

/** Takes a lease under the store root; returns its release function (idempotent). */
export async function acquireLease(root: string, purpose: string): Promise<() => Promise<void>> {
  const dir = join(root, DIR);
  await fs.mkdir(dir, { recursive: true });
  const file = join(dir, `${process.pid}-${randomBytes(4).toString('hex')}`);
  const info: LeaseInfo = { pid: process.pid, startedAt: Date.now(), purpose };
  await fs.writeFile(file, JSON.stringify(info));
  return async () => void (await fs.rm(file, { force: true }));
}

/**
 * Takes a lease held until this process exits (a CLI command: a build, pull or load names what it wrote
 * only at its end). Removed on exit; one left by a crash counts for nothing.
 */
export async function holdLeaseUntilExit(root: string, purpose: string): Promise<void> {
  const dir = join(root, DIR);
  await fs.mkdir(dir, { recursive: true });
  const file = join(dir, `${process.pid}-${randomBytes(4).toString('hex')}`);
  await fs.writeFile(file, JSON.stringify({ pid: process.pid, startedAt: Date.now(), purpose } satisfies LeaseInfo));
  process.once('exit', () => rmSync(file, { force: true }));
}

/**
 * Live leases of other processes (a process's own leases never hold back its own GC); dead ones are
 * removed on the way.
 */
export async function liveLeases(root: string): Promise<LeaseInfo[]> {
  const dir = join(root, DIR);
  const out: LeaseInfo[] = [];
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const file = join(dir, name);
    try {
      const info = JSON.parse(await fs.readFile(file, 'utf8')) as LeaseInfo;
      if (info.pid === process.pid) continue;
      if (processAlive(info.pid)) out.push(info);
      else await fs.rm(file, { force: true });
    } catch {
      // being written: young by definition; count it as starting now
      out.push({ pid: 0, startedAt: Date.now(), purpose: 'unknown' });
    }
  }
  return out;
}
