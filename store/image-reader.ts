import {
  defaultPlatform,
  ImageDocumentError,
  parseImageDocument,
  isIndexMediaType,
  isManifestMediaType,
  formatPlatform,
  type Descriptor,
  type Digest,
  type ImageConfig,
  type ImageDocument,
  type ImageIndex,
  type ImageManifest,
  type Platform,
} from '../oci/index.js';
import type { BlobStore } from './blobs.js';

/** An image resolved to one platform: its manifest and config. */
export interface ResolvedImage {
  /** Digest of the platform manifest. */
  manifestDigest: Digest;
  manifestMediaType: string;
  manifest: ImageManifest;
  config: ImageConfig;
  /** When the name pointed at an index, its digest. */
  indexDigest?: Digest;
}

export function platformMatches(candidate: Platform | undefined, wanted: Platform): boolean {
  if (!candidate) return false;
  if (candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return false;
  return !wanted.variant || !candidate.variant || candidate.variant === wanted.variant;
}

/** Picks the manifest for a platform from an index (docker's default: linux on this machine's architecture). */
export function selectPlatform(index: ImageIndex, wanted: Platform = defaultPlatform()): Descriptor {
  const manifests = index.manifests.filter((m) => isManifestMediaType(m.mediaType) || isIndexMediaType(m.mediaType));
  const hit = manifests.find((m) => platformMatches(m.platform, wanted));
  if (hit) return hit;
  const available = manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ');
  throw new Error(`no image for platform ${formatPlatform(wanted)} in the index (it has: ${available || 'none'})`);
}

/**
 * Reads a manifest or index from the store with the image document parser (oci/image-document.ts), so
 * that what tsbuild builds on or exports is what Go clients read. `mediaType` is what pointed at it
 * (an index entry, an image record); without one the type is inferred from the document.
 */
export async function readImageDocument(blobs: BlobStore, digest: Digest, mediaType?: string): Promise<ImageDocument> {
  const bytes = await blobs.readBuffer(digest);
  try {
    return parseImageDocument(bytes, { mediaType });
  } catch (e) {
    if (e instanceof ImageDocumentError) throw new Error(`image document ${digest} is invalid: ${e.message}`);
    throw e;
  }
}

/** Reads a manifest or index from the store and resolves it to one platform's image. */
export async function resolveImage(blobs: BlobStore, digest: Digest, platform?: Platform, mediaType?: string): Promise<ResolvedImage> {
  const doc = await readImageDocument(blobs, digest, mediaType);
  if (doc.kind === 'index') {
    const chosen = selectPlatform(doc.index, platform);
    const inner = await resolveImage(blobs, chosen.digest, platform, chosen.mediaType);
    return { ...inner, indexDigest: digest };
  }
  const config = await blobs.readJson<ImageConfig>(doc.manifest.config.digest);
  return { manifestDigest: digest, manifestMediaType: doc.mediaType, manifest: doc.manifest, config };
}

/** Every blob digest an image document references, recursively (indexes, manifests, configs, layers). */
export async function referencedBlobs(blobs: BlobStore, digest: Digest, mediaType?: string): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const doc = await readImageDocument(blobs, digest, mediaType);
  if (doc.kind === 'index') {
    for (const m of doc.index.manifests) {
      if (!(await blobs.has(m.digest))) continue; // an index may list platforms that were not pulled
      // An entry that is not an image document (index entries should be, some tools list other blobs) is
      // carried along without being read as one.
      if (!isManifestMediaType(m.mediaType) && !isIndexMediaType(m.mediaType)) out.push(m);
      else out.push(m, ...(await referencedBlobs(blobs, m.digest, m.mediaType)));
    }
  } else {
    out.push(doc.manifest.config, ...doc.manifest.layers);
  }
  return out;
}
