import {
  defaultPlatform,
  isIndexMediaType,
  isManifestMediaType,
  formatPlatform,
  type Descriptor,
  type Digest,
  type ImageConfig,
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

/** Reads a manifest or index from the store and resolves it to one platform's image. */
export async function resolveImage(blobs: BlobStore, digest: Digest, platform?: Platform): Promise<ResolvedImage> {
  const doc = await blobs.readJson<ImageManifest & ImageIndex & { mediaType?: string }>(digest);
  if (Array.isArray(doc.manifests)) {
    const chosen = selectPlatform(doc, platform);
    const inner = await resolveImage(blobs, chosen.digest, platform);
    return { ...inner, indexDigest: digest };
  }
  if (!doc.config) throw new Error(`blob ${digest} is not an image manifest`);
  const config = await blobs.readJson<ImageConfig>(doc.config.digest);
  return { manifestDigest: digest, manifestMediaType: doc.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', manifest: doc, config };
}

/** Every blob digest an image document references, recursively (indexes, manifests, configs, layers). */
export async function referencedBlobs(blobs: BlobStore, digest: Digest): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const doc = await blobs.readJson<ImageManifest & ImageIndex>(digest);
  if (Array.isArray(doc.manifests)) {
    for (const m of doc.manifests) {
      if (!(await blobs.has(m.digest))) continue; // an index may list platforms that were not pulled
      out.push(m, ...(await referencedBlobs(blobs, m.digest)));
    }
  } else {
    if (doc.config) out.push(doc.config);
    out.push(...(doc.layers ?? []));
  }
  return out;
}
