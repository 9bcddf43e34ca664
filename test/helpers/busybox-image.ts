import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { digestOf, MediaType, parseNormalized, type Digest, type ImageConfig, type ImageManifest } from '../../oci/index.js';
import type { Store } from '../../store/index.js';

export const BUSYBOX = '/bin/busybox';

export interface FixtureImage {
  digest: Digest;
  manifest: ImageManifest;
  manifestBytes: Buffer;
  config: ImageConfig;
  layer: Buffer;
  diffId: Digest;
}

/** A tar of a tiny root filesystem: busybox-static with its applet symlinks, /etc/passwd and /etc/group. */
export async function busyboxRootfsTar(): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  const mtime = new Date(0);
  const dir = (name: string, mode = 0o755) => pack.entry({ name, type: 'directory', mode, mtime, uid: 0, gid: 0 });
  for (const d of ['bin/', 'etc/', 'root/', 'var/', 'home/', 'usr/', 'usr/bin/']) dir(d, d === 'root/' ? 0o700 : 0o755);
  dir('tmp/', 0o1777);
  const bin = readFileSync(BUSYBOX);
  pack.entry({ name: 'bin/busybox', mode: statSync(BUSYBOX).mode & 0o7777, mtime, uid: 0, gid: 0, size: bin.length }, bin);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox');
  for (const a of applets) pack.entry({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox', mode: 0o777, mtime, uid: 0, gid: 0 });
  const text = (name: string, body: string) => pack.entry({ name, mode: 0o644, mtime, uid: 0, gid: 0 }, body);
  text(
    'etc/passwd',
    'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n',
  );
  text('etc/group', 'root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\napp:x:1000:\n');
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Writes the busybox base image into a store and names it (default `busybox:latest`). */
export async function makeBusyboxImage(store: Store, name = 'busybox:latest'): Promise<FixtureImage> {
  const rootfs = await busyboxRootfsTar();
  const diffId = digestOf(rootfs);
  const layer = gzipSync(rootfs, { level: 1 });
  const config: ImageConfig = {
    created: '2024-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'tsbuild test fixture: busybox-static rootfs' }],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const cfg = await store.blobs.put(configBytes);
  const lyr = await store.blobs.put(layer);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: lyr.digest, size: lyr.size }],
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const m = await store.blobs.put(manifestBytes);
  await store.images.set(parseNormalized(name), m.digest, MediaType.ociManifest);
  return { digest: m.digest, manifest, manifestBytes, config, layer, diffId };
}
