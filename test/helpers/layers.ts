import { execFileSync } from 'node:child_process';
import { promises as fs, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { decompress, openSnapshots, readTar, unpackImageLayers, type TarHeader } from '../../builder/snapshot/index.js';
import { listContainers, mountPoints } from '../../builder/exec/index.js';
import { digestOf, MediaType, type Descriptor, type DiffID } from '../../oci/index.js';
import type { Snapshot, Store } from '../../store/index.js';
import { makeBusyboxImage } from './busybox-image.js';

export interface FixtureEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'fifo';
  body?: string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
}

/** A layer tar written with tar-stream (an implementation independent of ours). */
export async function layerTar(entries: FixtureEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    pack.entry(
      {
        name: e.name,
        type,
        ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
        mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        mtime: e.mtime ?? new Date(1_600_000_000_000),
        ...(e.devmajor !== undefined ? { devmajor: e.devmajor } : {}),
        ...(e.devminor !== undefined ? { devminor: e.devminor } : {}),
      },
      ...((type === 'file' ? [e.body ?? ''] : []) as [string]),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function putLayer(store: Store, tarBytes: Buffer): Promise<{ descriptor: Descriptor; diffId: DiffID }> {
  const gz = gzipSync(tarBytes);
  const blob = await store.blobs.put(gz);
  return { descriptor: { mediaType: MediaType.ociLayerGzip, digest: blob.digest, size: blob.size }, diffId: digestOf(tarBytes) as DiffID };
}

/** The busybox base image unpacked, plus optional extra layers on top; returns the top snapshot. */
export async function baseSnapshot(store: Store, extra: FixtureEntry[][] = []): Promise<Snapshot> {
  const img = await makeBusyboxImage(store);
  const [baseLayer] = img.manifest.layers;
  if (!baseLayer) throw new Error('the busybox image has no layer');
  const layers = [{ descriptor: baseLayer, diffId: img.diffId }];
  for (const entries of extra) layers.push(await putLayer(store, await layerTar(entries)));
  return (await unpackImageLayers(store, await openSnapshots(store), layers))!;
}

export interface ListedEntry {
  header: TarHeader;
  body: string;
}

/** A layer blob's entries (with small bodies as text). */
export async function listLayer(store: Store, descriptor: Descriptor): Promise<ListedEntry[]> {
  const out: ListedEntry[] = [];
  for await (const { header, body } of readTar(await decompress(await store.blobs.read(descriptor.digest)))) {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c);
    out.push({ header, body: Buffer.concat(parts).toString() });
  }
  return out;
}

/** What a build could have left behind: mounts under the store root, runc containers, run dirs, network namespaces. */
export async function leftovers(root: string, pid?: number): Promise<{ mounts: string[]; containers: string[]; dirs: string[]; networks: string[] }> {
  const real = realpathSync(root);
  const mounts = (await mountPoints()).filter((m) => m.startsWith(real + '/'));
  const containers = (await listContainers()).map((c) => c.id).filter((id) => pid === undefined || id.startsWith(`tsbuild-${pid}-`));
  const dirs: string[] = [];
  for (const d of [join(real, 'tmp'), join(real, 'snapshots')]) {
    for (const n of await fs.readdir(d).catch(() => [] as string[])) if (/^(run|tmp-[a-z]+)-\d+-/.test(n)) dirs.push(join(d, n));
  }
  const networks = execFileSync('ip', ['netns', 'list'])
    .toString()
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n): n is string => !!n && n.startsWith(pid === undefined ? 'tsbuild-' : `tsbuild-${pid}-`));
  return { mounts, containers, dirs, networks };
}
