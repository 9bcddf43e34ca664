import { createReadStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import {
  digestAlgorithm,
  digestHex,
  isIndexMediaType,
  MediaType,
  parseDigest,
  type Descriptor,
  type Digest,
  type ImageIndex as OciIndex,
} from '../oci/index.js';
import type { BlobStore } from './blobs.js';
import { referencedBlobs } from './image-reader.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const IMAGE_NAME = 'io.containerd.image.name';

export interface LayoutImage {
  /** Manifest or index digest. */
  digest: Digest;
  mediaType: string;
  size: number;
  /** Full reference name (io.containerd.image.name). */
  name?: string;
  /** What skopeo's `oci:DIR:TAG` and umoci look up (org.opencontainers.image.ref.name). */
  tag?: string;
}

function layoutBlobPath(dir: string, d: Digest): string {
  return join(dir, 'blobs', digestAlgorithm(d), digestHex(d));
}

async function exists(path: string): Promise<boolean> {
  return fs.access(path).then(
    () => true,
    () => false,
  );
}

/** Copies one blob from the store into a layout dir, by hard link when the store is on the same filesystem. */
async function copyBlobOut(blobs: BlobStore, localPath: ((d: Digest) => string) | undefined, dir: string, d: Digest): Promise<void> {
  const target = layoutBlobPath(dir, d);
  if (await exists(target)) return;
  await fs.mkdir(join(dir, 'blobs', digestAlgorithm(d)), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}`;
  if (localPath) {
    try {
      await fs.link(localPath(d), tmp);
      await fs.rename(tmp, target);
      return;
    } catch {
      await fs.rm(tmp, { force: true });
    }
  }
  await pipeline(await blobs.read(d), createWriteStream(tmp));
  await fs.rename(tmp, target);
}

/**
 * Writes images into an OCI image layout directory (creating or extending it): `oci-layout`,
 * `index.json` and `blobs/`. Existing entries with the same tag are replaced.
 */
export async function exportOciLayout(
  blobs: BlobStore,
  dir: string,
  images: LayoutImage[],
  localBlobPath?: (d: Digest) => string,
): Promise<void> {
  await fs.mkdir(join(dir, 'blobs'), { recursive: true });
  await fs.writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  let index: OciIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  try {
    index = JSON.parse(await fs.readFile(join(dir, 'index.json'), 'utf8')) as OciIndex;
  } catch {
    // new layout
  }
  for (const image of images) {
    for (const d of [{ digest: image.digest } as Descriptor, ...(await referencedBlobs(blobs, image.digest))]) {
      await copyBlobOut(blobs, localBlobPath, dir, d.digest);
    }
    const annotations: Record<string, string> = {};
    if (image.name) annotations[IMAGE_NAME] = image.name;
    if (image.tag) annotations[REF_NAME] = image.tag;
    index.manifests = index.manifests.filter((m) => !(image.tag && m.annotations?.[REF_NAME] === image.tag));
    index.manifests.push({
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.size,
      ...(Object.keys(annotations).length ? { annotations } : {}),
    });
  }
  const tmp = join(dir, `index.json.tmp-${process.pid}`);
  await fs.writeFile(tmp, JSON.stringify(index));
  await fs.rename(tmp, join(dir, 'index.json'));
}

/** Reads an OCI layout's index.json. */
export async function readLayoutIndex(dir: string): Promise<OciIndex> {
  let layout: { imageLayoutVersion?: string };
  try {
    layout = JSON.parse(await fs.readFile(join(dir, 'oci-layout'), 'utf8')) as { imageLayoutVersion?: string };
  } catch {
    throw new Error(`${dir} is not an OCI image layout (no readable oci-layout file)`);
  }
  if (layout.imageLayoutVersion !== '1.0.0') throw new Error(`${dir}: unsupported imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}`);
  try {
    return JSON.parse(await fs.readFile(join(dir, 'index.json'), 'utf8')) as OciIndex;
  } catch (e) {
    throw new Error(`${dir}/index.json is unreadable: ${(e as Error).message}`);
  }
}

async function importBlob(blobs: BlobStore, dir: string, desc: Descriptor): Promise<void> {
  const digest = parseDigest(desc.digest);
  if (await blobs.has(digest)) return;
  const path = layoutBlobPath(dir, digest);
  if (!(await exists(path))) throw new Error(`OCI layout ${dir} lacks blob ${digest}`);
  await blobs.write(createReadStream(path, { highWaterMark: 1 << 20 }), { digest, size: desc.size });
}

async function importTree(blobs: BlobStore, dir: string, desc: Descriptor): Promise<void> {
  await importBlob(blobs, dir, desc);
  const doc = await blobs.readJson<{ manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }>(parseDigest(desc.digest));
  if (isIndexMediaType(desc.mediaType) || Array.isArray(doc.manifests)) {
    for (const m of doc.manifests ?? []) {
      const p = layoutBlobPath(dir, parseDigest(m.digest));
      if (await exists(p)) await importTree(blobs, dir, m);
    }
    return;
  }
  if (doc.config) await importBlob(blobs, dir, doc.config);
  for (const l of doc.layers ?? []) await importBlob(blobs, dir, l);
}

/** Copies every image of a layout into the store, verifying each blob's digest and size. */
export async function importOciLayout(blobs: BlobStore, dir: string): Promise<LayoutImage[]> {
  const index = await readLayoutIndex(dir);
  const out: LayoutImage[] = [];
  for (const m of index.manifests ?? []) {
    await importTree(blobs, dir, m);
    out.push({
      digest: parseDigest(m.digest),
      mediaType: m.mediaType,
      size: m.size,
      ...(m.annotations?.[IMAGE_NAME] ? { name: m.annotations[IMAGE_NAME] } : {}),
      ...(m.annotations?.[REF_NAME] ? { tag: m.annotations[REF_NAME] } : {}),
    });
  }
  return out;
}
