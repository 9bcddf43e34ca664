import { createReadStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import {
  digestAlgorithm,
  digestHex,
  digestOf,
  ImageDocumentError,
  isIndexMediaType,
  isManifestMediaType,
  MediaType,
  parseDigest,
  parseImageDocument,
  type Descriptor,
  type Digest,
  type ImageIndex as OciIndex,
} from '../oci/index.js';
import type { BlobStore } from './blobs.js';
import { makeDirs } from './make-dirs.js';
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
  await makeDirs(join(dir, 'blobs', digestAlgorithm(d)));
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
export async function exportOciLayout(blobs: BlobStore, dir: string, images: LayoutImage[], localBlobPath?: (d: Digest) => string): Promise<void> {
  await makeDirs(join(dir, 'blobs'));
  await fs.writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  let index: OciIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  let existing: Buffer | undefined;
  try {
    existing = await fs.readFile(join(dir, 'index.json'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (existing) index = parseLayoutIndex(dir, existing);
  for (const image of images) {
    for (const d of [{ digest: image.digest } as Descriptor, ...(await referencedBlobs(blobs, image.digest, image.mediaType))]) {
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

/** index.json is an OCI image index (image-layout.md), read as Go clients (skopeo, containerd) read it. */
function parseLayoutIndex(dir: string, bytes: Buffer): OciIndex {
  try {
    const doc = parseImageDocument(bytes, { mediaType: MediaType.ociIndex });
    if (doc.kind !== 'index') throw new ImageDocumentError('', 'not an image index');
    return doc.index;
  } catch (e) {
    if (e instanceof ImageDocumentError) throw new Error(`${dir}/index.json is invalid: ${e.message}`);
    throw e;
  }
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
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(join(dir, 'index.json'));
  } catch (e) {
    throw new Error(`${dir}/index.json is unreadable: ${(e as Error).message}`);
  }
  return parseLayoutIndex(dir, bytes);
}

async function importBlob(blobs: BlobStore, dir: string, desc: Descriptor): Promise<void> {
  const digest = parseDigest(desc.digest);
  if (await blobs.has(digest)) return;
  const path = layoutBlobPath(dir, digest);
  if (!(await exists(path))) throw new Error(`OCI layout ${dir} lacks blob ${digest}`);
  await blobs.write(createReadStream(path, { highWaterMark: 1 << 20 }), { digest, size: desc.size });
}

/** Larger than any manifest a registry accepts (distribution: 4 MiB). */
const MAX_DOCUMENT = 4 * 1024 * 1024;

/**
 * A layout's manifest or index, verified against its descriptor and parsed before anything of it is
 * stored, so an ambiguous document is refused rather than imported.
 */
async function readLayoutDocument(dir: string, desc: Descriptor) {
  const digest = parseDigest(desc.digest);
  const path = layoutBlobPath(dir, digest);
  if (!(await exists(path))) throw new Error(`OCI layout ${dir} lacks blob ${digest}`);
  if (desc.size > MAX_DOCUMENT) throw new Error(`OCI layout ${dir}: ${digest} is described as ${desc.size} bytes, more than a manifest may have`);
  const bytes = await fs.readFile(path);
  const actual = digestOf(bytes, digestAlgorithm(digest));
  if (actual !== digest) throw new Error(`OCI layout ${dir}: digest mismatch for ${digest}: its file has ${actual}`);
  if (bytes.length !== desc.size) throw new Error(`OCI layout ${dir}: ${digest} is ${bytes.length} bytes, its descriptor says ${desc.size}`);
  try {
    return { bytes, doc: parseImageDocument(bytes, { mediaType: desc.mediaType }) };
  } catch (e) {
    if (e instanceof ImageDocumentError) throw new Error(`OCI layout ${dir}: ${digest} is invalid: ${e.message}`);
    throw e;
  }
}

/** Imports a manifest or index and what it references; the document itself last, as a pull does. */
async function importTree(blobs: BlobStore, dir: string, desc: Descriptor): Promise<void> {
  if (!isManifestMediaType(desc.mediaType) && !isIndexMediaType(desc.mediaType)) {
    await importBlob(blobs, dir, desc);
    return;
  }
  const { bytes, doc } = await readLayoutDocument(dir, desc);
  if (doc.kind === 'index') {
    for (const m of doc.index.manifests) {
      const p = layoutBlobPath(dir, parseDigest(m.digest));
      if (await exists(p)) await importTree(blobs, dir, m);
    }
  } else {
    await importBlob(blobs, dir, doc.manifest.config);
    for (const l of doc.manifest.layers) await importBlob(blobs, dir, l);
  }
  await blobs.put(bytes, { digest: parseDigest(desc.digest), size: desc.size });
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
